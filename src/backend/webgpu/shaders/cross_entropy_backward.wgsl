// cross_entropy_backward: out[r, v] = scale · (softmax(x[r])_v − [v = target[r]]); a row with target < 0
// (ignored) is 0. x: the logits [rows, V]; targets i32 [rows] (checked < V on the host). One workgroup per row
// (includes row_lse.wgsl, reduce.wgsl).

const WG: u32 = 256u;
struct Params { rows: u32, V: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let r = wid.x + wid.y * nwg.x;
  let valid = r < p.rows;
  let o = r * p.V;
  let lse = row_max_lse(o, p.V, valid, li).y;
  if (!valid) { return; }
  let t = targets[r];
  for (var c = li; c < p.V; c += WG) {
    if (t < 0) {
      out[o + c] = 0.0;
    } else {
      let hit = select(0.0, 1.0, i32(c) == t);
      out[o + c] = p.scale * (exp(x[o + c] - lse) - hit);
    }
  }
}

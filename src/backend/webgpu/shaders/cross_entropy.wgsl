// cross_entropy (reduction none): out[r] = logsumexp(x[r, :]) − x[r, target[r]]; target < 0 → 0 (ignored
// position). x: the logits [rows, V]; targets i32 [rows] (checked < V on the host). One workgroup per row
// (includes row_lse.wgsl, reduce.wgsl).

const WG: u32 = 256u;
struct Params { rows: u32, V: u32 }
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
  if (valid && li == 0u) {
    let t = targets[r];
    if (t < 0) { out[r] = 0.0; } else { out[r] = lse - x[o + u32(t)]; }
  }
}

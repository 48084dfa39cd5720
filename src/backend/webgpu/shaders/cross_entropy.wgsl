// cross_entropy (reduction none): out[r] = logsumexp(logits[r, :]) − logits[r, target[r]]; target < 0 → 0
// (ignored position). logits [rows, V], targets i32 [rows] (checked < V on the host). One workgroup per row
// (includes reduce.wgsl).

const WG: u32 = 256u;
struct Params { rows: u32, V: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let r = wid.x + wid.y * nwg.x;
  let valid = r < p.rows;
  let o = r * p.V;
  var mx = -0x1.fffffep+127f;
  if (valid) { for (var c = li; c < p.V; c += WG) { mx = max(mx, logits[o + c]); } }
  mx = reduce_max(mx, li);
  var s = 0.0;
  if (valid) { for (var c = li; c < p.V; c += WG) { s += exp(logits[o + c] - mx); } }
  let lse = mx + log(reduce_sum(s, li));
  if (valid && li == 0u) {
    let t = targets[r];
    if (t < 0) { out[r] = 0.0; } else { out[r] = lse - logits[o + u32(t)]; }
  }
}

// kl_div: distillation at temperature τ, per row of student s and teacher t logits [rows, V]:
//   p = softmax(t/τ), q = softmax(s/τ);  loss[r] = Σ_v p_v (log p_v − log q_v);  grad[r, v] = scale · (q_v − p_v).
// With has_mask, a row whose mask is < 0 (an ignored position) has loss 0 and gradient 0.
// One workgroup per row (includes reduce.wgsl).

const WG: u32 = 256u;
struct Params { rows: u32, V: u32, inv_tau: f32, scale: f32, has_mask: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;
@group(0) @binding(5) var<storage, read> mask: array<i32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let r = wid.x + wid.y * nwg.x;
  let inside = r < p.rows;
  var ignored = false;
  if (inside && p.has_mask == 1u) { ignored = mask[r] < 0; }
  let valid = inside && !ignored;
  let o = r * p.V;
  if (inside && ignored) {
    for (var c = li; c < p.V; c += WG) { grad[o + c] = 0.0; }
    if (li == 0u) { loss[r] = 0.0; }
  }
  var ms = -0x1.fffffep+127f;
  var mt = -0x1.fffffep+127f;
  if (valid) {
    for (var c = li; c < p.V; c += WG) {
      ms = max(ms, s[o + c] * p.inv_tau);
      mt = max(mt, t[o + c] * p.inv_tau);
    }
  }
  ms = reduce_max(ms, li);
  mt = reduce_max(mt, li);
  var es = 0.0;
  var et = 0.0;
  if (valid) {
    for (var c = li; c < p.V; c += WG) {
      es += exp(s[o + c] * p.inv_tau - ms);
      et += exp(t[o + c] * p.inv_tau - mt);
    }
  }
  let lse_s = ms + log(reduce_sum(es, li));
  let lse_t = mt + log(reduce_sum(et, li));
  var kl = 0.0;
  if (valid) {
    for (var c = li; c < p.V; c += WG) {
      let logq = s[o + c] * p.inv_tau - lse_s;
      let logp = t[o + c] * p.inv_tau - lse_t;
      let pv = exp(logp);
      if (pv > 0.0) { kl += pv * (logp - logq); }
      grad[o + c] = p.scale * (exp(logq) - pv);
    }
  }
  kl = reduce_sum(kl, li);
  if (valid && li == 0u) { loss[r] = kl; }
}

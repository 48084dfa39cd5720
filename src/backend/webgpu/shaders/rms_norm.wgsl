// rms_norm: y = x / sqrt(mean(x²) + eps) · weight over rows of C. One workgroup per row (includes reduce.wgsl).

const WG: u32 = 256u;
struct Params { rows: u32, C: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let r = wid.x + wid.y * nwg.x;
  let valid = r < p.rows;
  let o = r * p.C;
  var ss = 0.0;
  if (valid) { for (var c = li; c < p.C; c += WG) { ss += x[o + c] * x[o + c]; } }
  let inv = 1.0 / sqrt(reduce_sum(ss, li) / f32(p.C) + p.eps);
  if (valid) { for (var c = li; c < p.C; c += WG) { out[o + c] = x[o + c] * inv * weight[c]; } }
}

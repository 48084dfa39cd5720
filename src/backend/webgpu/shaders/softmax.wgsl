// softmax over the last dim of [rows, C]: e^(x − lse), lse = log Σ e^x (computed as max + log Σ e^(x − max)).
// One workgroup per row (includes row_lse.wgsl, reduce.wgsl).

const WG: u32 = 256u;
struct Params { rows: u32, C: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let r = wid.x + wid.y * nwg.x;
  let valid = r < p.rows;
  let o = r * p.C;
  let lse = row_max_lse(o, p.C, valid, li).y;
  if (valid) { for (var c = li; c < p.C; c += WG) { out[o + c] = exp(x[o + c] - lse); } }
}

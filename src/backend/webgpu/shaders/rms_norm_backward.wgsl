// rms_norm_backward: for y = x·r·w with r = (mean(x²) + eps)^(-1/2), per row of C (includes reduce.wgsl):
//   dx_c = r·w_c·dy_c − r³·x_c·(Σ_k w_k·dy_k·x_k)/C        dw_c = Σ_rows dy_c·x_c·r
// `rows`: one workgroup per row writes dx and r (scratch inv [rows]); `columns`: one thread per column sums dw.

const WG: u32 = 256u;
struct Params { rows: u32, C: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read_write> inv: array<f32>;
@group(0) @binding(6) var<storage, read> invIn: array<f32>;
@group(0) @binding(7) var<storage, read_write> dweight: array<f32>;

@compute @workgroup_size(WG)
fn rows(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let r = wid.x + wid.y * nwg.x;
  let valid = r < p.rows;
  let o = r * p.C;
  var ss = 0.0;
  var dot = 0.0;
  if (valid) {
    for (var c = li; c < p.C; c += WG) {
      ss += x[o + c] * x[o + c];
      dot += weight[c] * dy[o + c] * x[o + c];
    }
  }
  let rs = 1.0 / sqrt(reduce_sum(ss, li) / f32(p.C) + p.eps);
  let k = rs * rs * rs * reduce_sum(dot, li) / f32(p.C);
  if (valid) {
    for (var c = li; c < p.C; c += WG) { dx[o + c] = rs * weight[c] * dy[o + c] - k * x[o + c]; }
    if (li == 0u) { inv[r] = rs; }
  }
}

@compute @workgroup_size(WG)
fn columns(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.C) { return; }
  var s = 0.0;
  for (var r = 0u; r < p.rows; r++) { s += dy[r * p.C + c] * x[r * p.C + c] * invIn[r]; }
  dweight[c] = s;
}

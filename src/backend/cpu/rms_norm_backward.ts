// rms_norm_backward: gradients of y = x·r·w with r = (mean(x²) + eps)^(-1/2), per row of C.
//   dx_c = r·w_c·dy_c − r³·x_c·(Σ_k w_k·dy_k·x_k)/C        dw_c = Σ_rows dy_c·x_c·r

export function rms_norm_backward_forward(
  dx: Float32Array,
  dweight: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  dy: Float32Array,
  rows: number,
  C: number,
  eps: number,
): void {
  const dw = new Float64Array(C);
  for (let r = 0; r < rows; r++) {
    const o = r * C;
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[o + c] * x[o + c];
    const inv = 1 / Math.sqrt(ss / C + eps);
    let dot = 0;
    for (let c = 0; c < C; c++) {
      dot += weight[c] * dy[o + c] * x[o + c];
      dw[c] += dy[o + c] * x[o + c] * inv;
    }
    const k = (inv * inv * inv * dot) / C;
    for (let c = 0; c < C; c++) dx[o + c] = inv * weight[c] * dy[o + c] - k * x[o + c];
  }
  for (let c = 0; c < C; c++) dweight[c] = dw[c];
}

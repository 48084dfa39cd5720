// rms_norm: out = x / sqrt(mean(x²) + eps) · weight, per row of C (HF LlamaRMSNorm).

export function rms_norm_forward(
  out: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  rows: number,
  C: number,
  eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * C;
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[o + c] * x[o + c];
    const inv = 1 / Math.sqrt(ss / C + eps);
    for (let c = 0; c < C; c++) out[o + c] = weight[c] * Math.fround(x[o + c] * inv);
  }
}

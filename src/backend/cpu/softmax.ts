// softmax over the last dim of [rows, C], max-subtracted, float64 sums.

export function softmax_forward(out: Float32Array, x: Float32Array, rows: number, C: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * C;
    let max = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < C; c++) if (x[o + c] > max) max = x[o + c];
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(x[o + c] - max);
    for (let c = 0; c < C; c++) out[o + c] = Math.exp(x[o + c] - max) / sum;
  }
}

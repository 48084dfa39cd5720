// log_softmax over the last dim of [rows, C]: x − max − log Σ e^(x − max), float64 sums.

export function logsumexp_row(x: Float32Array, o: number, C: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let c = 0; c < C; c++) if (x[o + c] > max) max = x[o + c];
  let sum = 0;
  for (let c = 0; c < C; c++) sum += Math.exp(x[o + c] - max);
  return max + Math.log(sum);
}

export function log_softmax_forward(out: Float32Array, x: Float32Array, rows: number, C: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * C;
    const lse = logsumexp_row(x, o, C);
    for (let c = 0; c < C; c++) out[o + c] = x[o + c] - lse;
  }
}

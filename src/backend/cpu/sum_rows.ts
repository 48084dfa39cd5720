// sum_rows: out[c] = Σ_r x[r, c] over every leading row of x [..., C] (a bias gradient).

export function sum_rows_forward(out: Float32Array, x: Float32Array, rows: number, C: number): void {
  const acc = new Float64Array(C);
  for (let r = 0; r < rows; r++) for (let c = 0; c < C; c++) acc[c] += x[r * C + c];
  for (let c = 0; c < C; c++) out[c] = acc[c];
}

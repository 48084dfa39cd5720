// mse: loss = Σ (p − t)² / n over all n elements, and its gradient d loss / d p = 2·(p − t) / n.

export function mse_forward(grad: Float32Array, pred: Float32Array, target: Float32Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) {
    const e = pred[i] - target[i];
    s += e * e;
    grad[i] = (2 * e) / n;
  }
  return s / n;
}

// embedding_backward: the adjoint of embedding, grad[v, :] = Σ_{i : ids[i] = v} dy[i, :] (ids [N], dy [N, C],
// grad [V, C]); float64 accumulation.

export function embedding_backward_forward(
  grad: Float32Array,
  ids: Int32Array,
  dy: Float32Array,
  N: number,
  V: number,
  C: number,
): void {
  const acc = new Float64Array(V * C);
  for (let i = 0; i < N; i++) {
    const o = ids[i] * C;
    for (let c = 0; c < C; c++) acc[o + c] += dy[i * C + c];
  }
  grad.set(acc);
}

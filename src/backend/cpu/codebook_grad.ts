// codebook_grad: the adjoint of codebook_decode. Each weight gradient dW[j·d + k, i] (output rows < out; padding
// contributes nothing) is added into centroid codes[i, j] of codebook part ⌊j / partCols⌋, element k.
// dW [out, in], codes [in, nb] → grad [m, K, d].

export function codebook_grad_forward(
  grad: Float32Array,
  dW: Float32Array,
  codes: Int32Array,
  out: number,
  inp: number,
  d: number,
  nb: number,
  K: number,
  partCols: number,
): void {
  const acc = new Float64Array(grad.length);
  for (let i = 0; i < inp; i++) {
    for (let j = 0; j < nb; j++) {
      const c = (Math.floor(j / partCols) * K + codes[i * nb + j]) * d;
      const rows = Math.min(d, out - j * d);
      for (let k = 0; k < rows; k++) acc[c + k] += dW[(j * d + k) * inp + i];
    }
  }
  for (let i = 0; i < grad.length; i++) grad[i] = acc[i];
}

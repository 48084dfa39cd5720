// codebook_decode: W[j·d + k, i] = codebooks[part(j), codes[i, j], k] for output rows < out (padding dropped);
// part(j) = ⌊j / partCols⌋. codes [in, nb], codebooks [m, K, d] → W [out, in].

export function codebook_decode_forward(
  w: Float32Array,
  codes: Int32Array,
  codebooks: Float32Array,
  out: number,
  inp: number,
  d: number,
  nb: number,
  K: number,
  partCols: number,
): void {
  for (let i = 0; i < inp; i++) {
    for (let j = 0; j < nb; j++) {
      const c = (Math.floor(j / partCols) * K + codes[i * nb + j]) * d;
      const rows = Math.min(d, out - j * d);
      for (let k = 0; k < rows; k++) w[(j * d + k) * inp + i] = codebooks[c + k];
    }
  }
}

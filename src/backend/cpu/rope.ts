// rope: rotary position embedding in HF's rotate-half layout. For each head vector x = [x1 | x2] (halves of D/2):
// out = [x1·cos − x2·sin | x2·cos + x1·sin], cos/sin taken at row (startPos + t) of the [P, D/2] tables.
// x is [B, T, heads·D]. With inverse, the rotation runs backwards (sin negated): the rotation is orthogonal, so
// this is both its inverse and its transpose, i.e. rope's backward.

export function rope_forward(
  out: Float32Array,
  x: Float32Array,
  cos: Float32Array,
  sin: Float32Array,
  B: number,
  T: number,
  heads: number,
  D: number,
  startPos: number,
  inverse = false,
): void {
  const sign = inverse ? -1 : 1;
  const half = D / 2;
  const rowLen = heads * D;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const ro = (b * T + t) * rowLen;
      const to = (startPos + t) * half;
      for (let h = 0; h < heads; h++) {
        const o = ro + h * D;
        for (let i = 0; i < half; i++) {
          const c = cos[to + i];
          const s = sign * sin[to + i];
          const x1 = x[o + i];
          const x2 = x[o + half + i];
          out[o + i] = x1 * c - x2 * s;
          out[o + half + i] = x2 * c + x1 * s;
        }
      }
    }
  }
}

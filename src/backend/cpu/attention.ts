// attention: causal grouped-query scaled dot-product attention (HF eager attention, one pass per query).
// q [B, T, H·D]; k, v [B, S, Hkv·D] (first kvLength rows used); out [B, T, H·D].
// Query t (absolute position p = queryOffset + t) attends keys j with j ≤ p, j < kvLength and, with a sliding
// window W, j > p − W. Query head h reads key/value head ⌊h / (H / Hkv)⌋.

/** Geometry and masks of one attention call (validated by the backend). */
export interface AttentionShape {
  B: number;
  T: number;
  S: number;
  H: number;
  Hkv: number;
  D: number;
  kvLength: number;
  queryOffset: number;
  slidingWindow: number | null;
}

export function attention_forward(
  out: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  shape: AttentionShape,
): void {
  const { B, T, S, H, Hkv, D, kvLength, queryOffset, slidingWindow } = shape;
  const group = H / Hkv;
  const scale = 1 / Math.sqrt(D);
  const qRow = H * D;
  const kvRow = Hkv * D;
  const scores = new Float64Array(kvLength);
  const acc = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const p = queryOffset + t;
      const jEnd = Math.min(p + 1, kvLength);
      const jStart = slidingWindow === null ? 0 : Math.max(0, p - slidingWindow + 1);
      for (let h = 0; h < H; h++) {
        const qo = (b * T + t) * qRow + h * D;
        const kvh = Math.floor(h / group);
        let max = Number.NEGATIVE_INFINITY;
        for (let j = jStart; j < jEnd; j++) {
          const ko = (b * S + j) * kvRow + kvh * D;
          let s = 0;
          for (let d = 0; d < D; d++) s += q[qo + d] * k[ko + d];
          s *= scale;
          scores[j] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let j = jStart; j < jEnd; j++) {
          const e = Math.exp(scores[j] - max);
          scores[j] = e;
          sum += e;
        }
        acc.fill(0);
        for (let j = jStart; j < jEnd; j++) {
          const pj = scores[j] / sum;
          const vo = (b * S + j) * kvRow + kvh * D;
          for (let d = 0; d < D; d++) acc[d] += pj * v[vo + d];
        }
        for (let d = 0; d < D; d++) out[qo + d] = acc[d];
      }
    }
  }
}

// The ClusComp vector layout and codebook decoding.
// A weight W [out, in] is read as Wᵀ [in, out]; the out axis is zero-padded to a multiple of d and each row of
// Wᵀ is cut into ⌈out/d⌉ vectors of d consecutive output channels. Vector (i, j) = W[j·d .. j·d+d−1, i].
// With m codebooks, the ⌈out/d⌉ vector columns are split into m contiguous parts (part p holds columns
// p·P .. min((p+1)·P, nb) − 1, P = ⌈nb/m⌉), each clustered on its own.
//
// Shapes: N = in·nb vectors of length d; nb = ⌈out/d⌉ vectors per row of Wᵀ; K centroids; m codebooks.

export interface VectorLayout {
  out: number;
  in: number;
  d: number;
  /** Vectors per row of Wᵀ: ⌈out/d⌉. */
  nb: number;
  m: number;
  /** Vector columns per part: ⌈nb/m⌉ (the last part may be shorter). */
  partCols: number;
}

export function vectorLayout(out: number, inp: number, d: number, m = 1): VectorLayout {
  const nb = Math.ceil(out / d);
  return { out, in: inp, d, nb, m, partCols: Math.ceil(nb / m) };
}

/** Columns [start, end) of part p. */
export function partRange(l: VectorLayout, p: number): [number, number] {
  const start = Math.min(p * l.partCols, l.nb);
  return [start, Math.min(start + l.partCols, l.nb)];
}

/**
 * The vectors of part p of W (row-major [out, in]) as [in·cols, d], ordered by (i, j): vector index
 * = i·cols + (j − start). Padded output channels are 0.
 */
export function extractVectors(w: Float32Array, l: VectorLayout, p = 0): Float32Array {
  const [start, end] = partRange(l, p);
  const cols = end - start;
  const { d, out } = l;
  const inp = l.in;
  const v = new Float32Array(inp * cols * d);
  for (let i = 0; i < inp; i++) {
    for (let j = start; j < end; j++) {
      const o = (i * cols + (j - start)) * d;
      for (let k = 0; k < d; k++) {
        const row = j * d + k;
        v[o + k] = row < out ? w[row * inp + i] : 0;
      }
    }
  }
  return v;
}

/**
 * W [out, in] from codes [in, nb] (code of vector (i, j) at i·nb + j) and codebooks [m, K, d]:
 * W[j·d + k, i] = codebook[part(j), codes[i·nb + j], k]; padded channels are dropped.
 */
export function decodeWeight(
  codes: ArrayLike<number>,
  codebooks: Float32Array,
  l: VectorLayout,
  K: number,
): Float32Array {
  const { d, out, nb } = l;
  const inp = l.in;
  const w = new Float32Array(out * inp);
  for (let j = 0; j < nb; j++) {
    const cb = Math.floor(j / l.partCols) * K * d;
    for (let i = 0; i < inp; i++) {
      const c = cb + codes[i * nb + j] * d;
      for (let k = 0; k < d; k++) {
        const row = j * d + k;
        if (row < out) w[row * inp + i] = codebooks[c + k];
      }
    }
  }
  return w;
}

/** Scatters the codes of part p (ordered as extractVectors) into the full [in, nb] code matrix. */
export function placeCodes(all: Uint16Array, partCodes: ArrayLike<number>, l: VectorLayout, p: number): void {
  const [start, end] = partRange(l, p);
  const cols = end - start;
  for (let i = 0; i < l.in; i++) {
    for (let j = start; j < end; j++) all[i * l.nb + j] = partCodes[i * cols + (j - start)];
  }
}

// Channel scales (AQLM's per-output-channel scales): every output row o of a matrix W [out, in] gets one stored
// scale s[o] = max_i |W[o, i]| (rounded to the centroid dtype as stored; 1 for a row that is all zero), the
// codebook fits the normalised rows W[o, :] / s[o] (all in [−1, 1], so one codebook serves rows of any size), and
// the decoded weight is Ŵ[o, :] = s[o] · decode(codes)[o, :]. Each scale costs 16 bits per row (bits.ts).
// GPTQ's error feedback runs unchanged on the normalised rows: its objective is a sum over rows, each row's term
// multiplied by s[o]², so every row's updates are the same with or without the scale.

import { channelScaleBits } from "./bits.js";
import { type CentroidDtype, roundCentroids } from "./kmeans.js";
import type { MatrixSpec } from "./plan.js";

/** The bits per weight channel scales take over the matrices (16 per output row). */
export function channelScaleBpw(mats: MatrixSpec[]): number {
  const params = mats.reduce((n, x) => n + x.out * x.in, 0);
  return mats.reduce((n, x) => n + channelScaleBits(x.out), 0) / params;
}

/** s [out]: the largest |W[o, i]| of each row over the channels not `ignored`, rounded to `dtype` (0 → 1). */
export function channelScales(
  w: Float32Array,
  out: number,
  inp: number,
  dtype: CentroidDtype,
  ignored?: ArrayLike<number>,
): Float32Array {
  const skip = new Uint8Array(inp);
  for (const i of Array.from(ignored ?? [])) skip[i] = 1;
  const s = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    let m = 0;
    for (let i = 0; i < inp; i++) if (!skip[i]) m = Math.max(m, Math.abs(w[o * inp + i]));
    s[o] = m;
  }
  const rounded = roundCentroids(s, dtype);
  for (let o = 0; o < out; o++) if (!(rounded[o] > 0)) rounded[o] = 1;
  return rounded;
}

/** W with row o multiplied by s[o] (or divided by it, `divide`): a new array. */
export function scaleRows(w: Float32Array, s: Float32Array, inp: number, divide = false): Float32Array {
  const r = new Float32Array(w.length);
  for (let o = 0; o < s.length; o++) {
    const f = s[o];
    for (let i = 0; i < inp; i++) r[o * inp + i] = divide ? w[o * inp + i] / f : w[o * inp + i] * f;
  }
  return r;
}

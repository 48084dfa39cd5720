// The side parts a codebook model may store beside its codes, each matrix's weight being Ŵ = VQ + side:
//   lowrank (ReALLM):      B·A, B [out, r] and A [r, in] fp16 from a truncated SVD; the codebook quantizes W − B·A.
//   salient (LLM-Codebook): the k input channels of largest Hessian-weighted energy hᵢ·Σₒ W[o, i]² kept in fp16:
//                          B [out, k] = W[:, S] − VQ[:, S] (exact up to fp16), stored with the channel indices S;
//                          the k-means ignores those channels' vectors (weight 0).
// Both run as B·(A·x) on the thin-matmul path (for salient channels A is the one-hot selection of S). The bits a
// side part takes are counted in bpw; how much of each matrix's bits it gets is a share, probed by compress.

import { lowRankPartBits, salientPartBits } from "./bits.js";
import type { MatrixSpec } from "./plan.js";

export type SideKind = "lowrank" | "salient";

/** The shares of each matrix's bits a side part may take; compress measures each (see compress.ts). */
export const SIDE_SHARES: Record<SideKind, readonly number[]> = {
  lowrank: [0, 1 / 16, 1 / 8, 1 / 4],
  salient: [0, 1 / 32, 1 / 16, 1 / 8],
};

/** Bits of one matrix's side part of size n (rank, or salient channels; bits.ts counts them). */
export function sidePartBits(kind: SideKind, n: number, out: number, inp: number): number {
  return kind === "lowrank" ? lowRankPartBits(n, out, inp) : salientPartBits(n, out);
}

/** The largest size a matrix's side part can have: the smaller side (a rank), or every input channel. */
function maxSize(kind: SideKind, x: MatrixSpec): number {
  return kind === "lowrank" ? Math.min(x.out, x.in) : x.in;
}

/** Every matrix's side-part size when each spends `share` of its bits at `bits` bpw on it. */
export function shareSizes(kind: SideKind, mats: MatrixSpec[], bits: number, share: number): Map<string, number> {
  return new Map(
    mats.map((x) => [
      x.name,
      Math.min(Math.floor((share * bits * x.in * x.out) / sidePartBits(kind, 1, x.out, x.in)), maxSize(kind, x)),
    ]),
  );
}

/** Size n for every matrix (capped at what it can hold). */
export function fixedSizes(kind: SideKind, mats: MatrixSpec[], n: number): Map<string, number> {
  return new Map(mats.map((x) => [x.name, Math.min(n, maxSize(kind, x))]));
}

/** What the side parts of a plan take: their sizes (distinct, ascending) and bits per weight. */
export interface SideSummary {
  kind: SideKind;
  sizes: number[];
  bpw: number;
}

export function sideSummary(kind: SideKind, mats: MatrixSpec[], sizes: Map<string, number>): SideSummary {
  const params = mats.reduce((s, x) => s + x.in * x.out, 0);
  const bits = mats.reduce((s, x) => s + sidePartBits(kind, sizes.get(x.name) ?? 0, x.out, x.in), 0);
  return { kind, sizes: [...new Set(sizes.values())].sort((a, b) => a - b), bpw: bits / params };
}

/** "low-rank parts of rank 8 (fp16)" / "5/13 salient input channels per matrix (fp16)". */
export function describeSide(s: SideSummary): string {
  return s.kind === "lowrank"
    ? `low-rank parts of rank ${s.sizes.join("/")} (fp16)`
    : `${s.sizes.join("/")} salient input channels per matrix (fp16)`;
}

/**
 * LLM-Codebook's salient input channels of W [out, in]: the k of largest hᵢ·Σₒ W[o, i]² (h the input Hessian's
 * diagonal), in ascending channel order.
 */
export function salientChannels(
  w: Float32Array,
  out: number,
  inp: number,
  h: ArrayLike<number>,
  k: number,
): Int32Array {
  const energy = new Float64Array(inp);
  for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) energy[i] += w[o * inp + i] ** 2;
  for (let i = 0; i < inp; i++) energy[i] *= h[i];
  const order = Array.from({ length: inp }, (_, i) => i).sort((a, b) => energy[b] - energy[a] || a - b);
  return Int32Array.from(order.slice(0, k)).sort();
}

/** The one-hot selection A [k, in] of channels S (A·x = x[S]). */
export function channelSelection(channels: ArrayLike<number>, inp: number): Float32Array {
  const a = new Float32Array(channels.length * inp);
  for (let c = 0; c < channels.length; c++) a[c * inp + channels[c]] = 1;
  return a;
}

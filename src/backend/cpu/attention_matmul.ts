// attention and attention_backward for the CPU fast tier: the same maths as attention.ts / attention_backward.ts,
// but per (batch, head) as whole-matrix products through a matmul kernel (the WebAssembly one), which is where a
// multi-row attention spends its time:
//   S = Q·Kᵀ/√D (masked),  P = softmax(S),  O = P·V
//   dP = dO·Vᵀ,  dS = P∘(dP − rowsum(dO∘O))/√D,  dQ = dS·K,  dK += dSᵀ·Q,  dV += Pᵀ·dO
// Masks as attention.ts (causal from queryOffset, keys < kvLength, optional sliding window).

import type { AttentionShape } from "./attention.js";
import type { matmul_forward } from "./matmul.js";

/** A matmul with matmul_forward's signature (the fast tier passes its WebAssembly one). */
export type MatmulKernel = typeof matmul_forward;

/** Copies head h of rows [B=b, 0..rows) of x [B, rowsTotal, heads·D] into a contiguous [rows, D]. */
function gather(
  dst: Float32Array,
  x: Float32Array,
  b: number,
  rowsTotal: number,
  rows: number,
  heads: number,
  h: number,
  D: number,
) {
  for (let r = 0; r < rows; r++) {
    const o = ((b * rowsTotal + r) * heads + h) * D;
    dst.set(x.subarray(o, o + D), r * D);
  }
}

function scatterAdd(
  x: Float32Array,
  src: Float32Array,
  b: number,
  rowsTotal: number,
  rows: number,
  heads: number,
  h: number,
  D: number,
) {
  for (let r = 0; r < rows; r++) {
    const o = ((b * rowsTotal + r) * heads + h) * D;
    for (let d = 0; d < D; d++) x[o + d] += src[r * D + d];
  }
}

/** P = softmax(masked S·scale) in place over [T, L] (L = kvLength). */
function softmaxMasked(s: Float32Array, p: AttentionShape, scale: number): void {
  const L = p.kvLength;
  for (let t = 0; t < p.T; t++) {
    const pos = p.queryOffset + t;
    const jEnd = Math.min(pos + 1, L);
    const jStart = p.slidingWindow === null ? 0 : Math.max(0, pos - p.slidingWindow + 1);
    const row = t * L;
    let max = Number.NEGATIVE_INFINITY;
    for (let j = jStart; j < jEnd; j++) if (s[row + j] * scale > max) max = s[row + j] * scale;
    let sum = 0;
    for (let j = 0; j < L; j++) {
      if (j < jStart || j >= jEnd) {
        s[row + j] = 0;
        continue;
      }
      const e = Math.exp(s[row + j] * scale - max);
      s[row + j] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let j = jStart; j < jEnd; j++) s[row + j] *= inv;
  }
}

/**
 * Runs `body(b, g, h)` for every query head h of every batch row b, after loading the rows 0..kvLength of its
 * key/value head g into kh, vh [kvLength, D] (once per key/value head).
 */
function forEachHead(
  k: Float32Array,
  v: Float32Array,
  p: AttentionShape,
  kh: Float32Array,
  vh: Float32Array,
  body: (b: number, g: number, h: number) => void,
): void {
  const { B, S, H, Hkv, D, kvLength: L } = p;
  for (let b = 0; b < B; b++) {
    for (let g = 0; g < Hkv; g++) {
      gather(kh, k, b, S, L, Hkv, g, D);
      gather(vh, v, b, S, L, Hkv, g, D);
      for (let h = g * (H / Hkv); h < (g + 1) * (H / Hkv); h++) body(b, g, h);
    }
  }
}

/** One head: probabilities P [T, kvLength] into pm and its output O = P·V [T, D] into oh. */
function headOutput(
  pm: Float32Array,
  oh: Float32Array,
  qh: Float32Array,
  kh: Float32Array,
  vh: Float32Array,
  p: AttentionShape,
  mm: MatmulKernel,
): void {
  const { T, D, kvLength: L } = p;
  mm(pm, qh, kh, T, D, L, false, true);
  softmaxMasked(pm, p, 1 / Math.sqrt(D));
  mm(oh, pm, vh, T, L, D, false, false);
}

export function attention_matmul_forward(
  out: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  p: AttentionShape,
  mm: MatmulKernel,
): void {
  const { T, H, D, kvLength: L } = p;
  const qh = new Float32Array(T * D);
  const kh = new Float32Array(L * D);
  const vh = new Float32Array(L * D);
  const pm = new Float32Array(T * L);
  const oh = new Float32Array(T * D);
  out.fill(0);
  forEachHead(k, v, p, kh, vh, (b, _g, h) => {
    gather(qh, q, b, T, T, H, h, D);
    headOutput(pm, oh, qh, kh, vh, p, mm);
    scatterAdd(out, oh, b, T, T, H, h, D);
  });
}

export function attention_matmul_backward(
  dq: Float32Array,
  dk: Float32Array,
  dv: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  dout: Float32Array,
  p: AttentionShape,
  mm: MatmulKernel,
): void {
  const { T, S, H, Hkv, D, kvLength: L } = p;
  const scale = 1 / Math.sqrt(D);
  const qh = new Float32Array(T * D);
  const kh = new Float32Array(L * D);
  const vh = new Float32Array(L * D);
  const doh = new Float32Array(T * D);
  const oh = new Float32Array(T * D);
  const pm = new Float32Array(T * L);
  const dp = new Float32Array(T * L);
  const dqh = new Float32Array(T * D);
  const dkh = new Float32Array(L * D);
  const dvh = new Float32Array(L * D);
  dq.fill(0);
  dk.fill(0);
  dv.fill(0);
  forEachHead(k, v, p, kh, vh, (b, g, h) => {
    gather(qh, q, b, T, T, H, h, D);
    gather(doh, dout, b, T, T, H, h, D);
    headOutput(pm, oh, qh, kh, vh, p, mm);
    mm(dp, doh, vh, T, D, L, false, true);
    for (let t = 0; t < T; t++) {
      let delta = 0;
      for (let d = 0; d < D; d++) delta += doh[t * D + d] * oh[t * D + d];
      const row = t * L;
      for (let j = 0; j < L; j++) dp[row + j] = pm[row + j] * (dp[row + j] - delta) * scale; // dS
    }
    mm(dqh, dp, kh, T, L, D, false, false);
    scatterAdd(dq, dqh, b, T, T, H, h, D);
    mm(dkh, dp, qh, L, T, D, true, false);
    scatterAdd(dk, dkh, b, S, L, Hkv, g, D);
    mm(dvh, pm, doh, L, T, D, true, false);
    scatterAdd(dv, dvh, b, S, L, Hkv, g, D);
  });
}

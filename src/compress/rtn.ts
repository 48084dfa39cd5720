// Round-to-nearest baseline: asymmetric, per group of G consecutive input channels of each output row, scale and
// zero stored in fp16 (counted in bpw): q = clamp(round((w − zero)/scale), 0, 2^b − 1), ŵ = q·scale + zero with
// zero = min(group), scale = (max − min)/(2^b − 1), both rounded to fp16 before quantizing.
// W [out, in]; scales, zeros [out, ⌈in/G⌉]; codes packed b bits each, LSB first, row-major.

import { CompressionError } from "../errors.js";
import { f16ToF32, f32ToF16 } from "../tensor/dtype.js";

export interface RtnWeight {
  q: Int32Array;
  /** fp16 bit patterns. */
  scales: Uint16Array;
  zeros: Uint16Array;
}

export function validateRtn(bits: number, group: number): void {
  if (!Number.isInteger(bits) || bits < 1 || bits > 8)
    throw new CompressionError("compress.bits", `RTN --bits must be an integer in 1..8, got ${bits}`);
  if (!Number.isInteger(group) || group < 1)
    throw new CompressionError("compress.group_size", `--group-size must be an integer ≥ 1, got ${group}`);
}

/** The asymmetric grid of a group spanning [lo, hi]: zero = lo, scale = (hi − lo)/qmax, both rounded to fp16. */
export function rtnGrid(lo: number, hi: number, qmax: number): { zBits: number; sBits: number; z: number; s: number } {
  const zBits = f32ToF16(lo);
  const sBits = f32ToF16((hi - lo) / qmax);
  return { zBits, sBits, z: f16ToF32(zBits), s: f16ToF32(sBits) };
}

/** The code of w on a grid: clamp(round((w − z)/s), 0, qmax); 0 when the grid has no width. */
export function rtnCode(w: number, s: number, z: number, qmax: number): number {
  return s === 0 ? 0 : Math.min(qmax, Math.max(0, Math.round((w - z) / s)));
}

export function rtnQuantize(w: Float32Array, out: number, inp: number, bits: number, group: number): RtnWeight {
  const ng = Math.ceil(inp / group);
  const qmax = 2 ** bits - 1;
  const q = new Int32Array(out * inp);
  const scales = new Uint16Array(out * ng);
  const zeros = new Uint16Array(out * ng);
  for (let o = 0; o < out; o++) {
    for (let g = 0; g < ng; g++) {
      const i0 = g * group;
      const i1 = Math.min(inp, i0 + group);
      let lo = Number.POSITIVE_INFINITY;
      let hi = Number.NEGATIVE_INFINITY;
      for (let i = i0; i < i1; i++) {
        const v = w[o * inp + i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const { zBits, sBits, z, s } = rtnGrid(lo, hi, qmax);
      scales[o * ng + g] = sBits;
      zeros[o * ng + g] = zBits;
      for (let i = i0; i < i1; i++) q[o * inp + i] = rtnCode(w[o * inp + i], s, z, qmax);
    }
  }
  return { q, scales, zeros };
}

export function packBits(q: Int32Array, bits: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((q.length * bits) / 8));
  let bit = 0;
  for (let i = 0; i < q.length; i++) {
    for (let b = 0; b < bits; b++, bit++) if ((q[i] >> b) & 1) out[bit >> 3] |= 1 << (bit & 7);
  }
  return out;
}

export function unpackBits(packed: Uint8Array, count: number, bits: number): Int32Array {
  const q = new Int32Array(count);
  let bit = 0;
  for (let i = 0; i < count; i++) {
    let v = 0;
    for (let b = 0; b < bits; b++, bit++) if ((packed[bit >> 3] >> (bit & 7)) & 1) v |= 1 << b;
    q[i] = v;
  }
  return q;
}

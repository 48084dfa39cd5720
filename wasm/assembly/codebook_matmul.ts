// codebook_matmul, WebAssembly SIMD (AssemblyScript): y = x · Wᵀ with W never stored. W [out, in] is made of
// d-long vectors down each column: W[v·d + t, i] = cb[part(v)][codes[i, v]][t], part(v) = ⌊v / partCols⌋
// (codebook_decode's layout). Output columns are taken 8 vectors (8·d columns) at a time: a panel of W is
// decoded from codes + centroids into a per-thread scratch that stays in cache, then multiplied, accumulating
// over the panels along `in`. Two shapes:
//   matrix (prefill, many rows): the panel as W's rows (8·d × KB) and the NT kernel;
//   vector (decoding, a row or a few): the panel as Wᵀ's rows (KB × 8·d, each centroid copied whole) and
//     one row at a time against it, 8 output columns per step.
//   x [M, in] f32 · codes i32 [in, nb] · cb f32 [m, K, d] · y [M, out] f32.

import { madd } from "./simd";
import { ntBlock } from "./matmul";

/**
 * y[i0..i1, columns of vectors v0..v1] (v1 − v0 ≤ 8) in the matrix shape (scratch: 8·d × (KB + 4) floats) or,
 * with `vector`, the vector shape (scratch: KB × 8·d floats).
 */
export function codebookBlock(
  x: usize,
  inF: i32,
  codes: usize,
  nb: i32,
  cb: usize,
  K: i32,
  d: i32,
  partCols: i32,
  y: usize,
  outF: i32,
  i0: i32,
  i1: i32,
  v0: i32,
  v1: i32,
  scratch: usize,
  KB: i32,
  vector: bool,
): void {
  if (vector) {
    codebookBlockVector(x, inF, codes, nb, cb, K, d, partCols, y, outF, i0, i1, v0, v1, scratch, KB);
    return;
  }
  const P = min(v1 * d, outF) - v0 * d; // output columns of this panel (the last vector may be cut)
  // scratch rows are KB + 4 floats apart: a power-of-two stride would put every row in the same few L1 sets
  const ld = KB + 4;
  const row = <usize>ld << 2;
  const vecBytes = <usize>d << 2;
  const yp = y + (<usize>(v0 * d) << 2);
  for (let k0 = 0; k0 < inF; k0 += KB) {
    const kb = min(KB, inF - k0);
    for (let kk = 0; kk < kb; kk++) {
      const cp = codes + (<usize>((k0 + kk) * nb) << 2);
      let dst = scratch + (<usize>kk << 2);
      for (let v = v0; v < v1; v++) {
        const src = cb + <usize>((v / partCols) * K + load<i32>(cp + (<usize>v << 2))) * vecBytes;
        const rows = min(d, P - (v - v0) * d);
        for (let t = 0; t < rows; t++) {
          store<f32>(dst, load<f32>(src + (<usize>t << 2)));
          dst += row;
        }
      }
    }
    ntBlock(x + (<usize>k0 << 2), inF, scratch, ld, yp, outF, kb, i0, i1, 0, P, k0 > 0);
  }
}

/** codebookBlock's vector shape, for a few rows. */
function codebookBlockVector(
  x: usize,
  inF: i32,
  codes: usize,
  nb: i32,
  cb: usize,
  K: i32,
  d: i32,
  partCols: i32,
  y: usize,
  outF: i32,
  i0: i32,
  i1: i32,
  v0: i32,
  v1: i32,
  scratch: usize,
  KB: i32,
): void {
  const P = min(v1 * d, outF) - v0 * d;
  const Pp = (P + 7) & ~7; // columns walked 8 at a time; the padding columns of the panel are zero
  const row = <usize>Pp << 2;
  const vecBytes = <usize>d << 2;
  for (let i = i0; i < i1; i++) {
    const yi = y + (<usize>(i * outF + v0 * d) << 2);
    for (let t = 0; t < P; t++) store<f32>(yi + (<usize>t << 2), 0);
  }
  for (let k0 = 0; k0 < inF; k0 += KB) {
    const kb = min(KB, inF - k0);
    for (let kk = 0; kk < kb; kk++) {
      const cp = codes + (<usize>((k0 + kk) * nb) << 2);
      const dst = scratch + <usize>kk * row;
      for (let v = v0; v < v1; v++) {
        const src = cb + <usize>((v / partCols) * K + load<i32>(cp + (<usize>v << 2))) * vecBytes;
        const o = dst + <usize>(v - v0) * vecBytes;
        if (d == 8) {
          v128.store(o, v128.load(src));
          v128.store(o, v128.load(src, 16), 16);
        } else if (d == 4) {
          v128.store(o, v128.load(src));
        } else {
          for (let t = 0; t < d; t++) store<f32>(o + (<usize>t << 2), load<f32>(src + (<usize>t << 2)));
        }
      }
      for (let t = (v1 - v0) * d; t < Pp; t++) store<f32>(dst + (<usize>t << 2), 0);
    }
    for (let i = i0; i < i1; i++) {
      const xi = x + (<usize>(i * inF + k0) << 2);
      const yi = y + (<usize>(i * outF + v0 * d) << 2);
      let j = 0;
      for (; j + 8 <= P; j += 8) {
        let s0 = v128.load(yi + (<usize>j << 2));
        let s1 = v128.load(yi + (<usize>j << 2), 16);
        let bp = scratch + (<usize>j << 2);
        for (let kk = 0; kk < kb; kk++) {
          const xv = v128.load32_splat(xi + (<usize>kk << 2));
          s0 = madd(xv, v128.load(bp), s0);
          s1 = madd(xv, v128.load(bp, 16), s1);
          bp += row;
        }
        v128.store(yi + (<usize>j << 2), s0);
        v128.store(yi + (<usize>j << 2), s1, 16);
      }
      for (; j < P; j++) {
        let s: f32 = 0;
        for (let kk = 0; kk < kb; kk++) {
          s += load<f32>(xi + (<usize>kk << 2)) * load<f32>(scratch + <usize>kk * row + (<usize>j << 2));
        }
        store<f32>(yi + (<usize>j << 2), load<f32>(yi + (<usize>j << 2)) + s);
      }
    }
  }
}

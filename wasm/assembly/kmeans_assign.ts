// kmeans_assign, WebAssembly SIMD (AssemblyScript): for each vector x_n [d], the centroid k minimizing
// ‖c_k‖² − 2·x_n·c_k (then + ‖x_n‖² for the distance), ties to the lowest k, as the CPU reference.
// Layout in linear memory (f32 unless noted):
//   x [N·d] · cT [d·Kp]: centroids transposed, padding columns zero ·
//   cn [Kp]: ‖c_k‖², +∞ for padding (Kp: K rounded up to 8) · codes i32 [N] · dist [N] · scratch [16·d·4] bytes.
// SIMD runs across centroids (8 per step in two lane sets); 4 vectors share each load of the centroids.

import { madd } from "./simd";

@inline function lanesMin(best: v128, idx: v128, bestD: f32, bestK: i32): i64 {
  // folds the 4 lanes (distance, index) into (bestD, bestK): smaller distance wins, ties to the lower index
  let d: f32 = bestD;
  let k: i32 = bestK;
  let ld = f32x4.extract_lane(best, 0);
  let lk = i32x4.extract_lane(idx, 0);
  if (ld < d || (ld == d && lk < k)) { d = ld; k = lk; }
  ld = f32x4.extract_lane(best, 1);
  lk = i32x4.extract_lane(idx, 1);
  if (ld < d || (ld == d && lk < k)) { d = ld; k = lk; }
  ld = f32x4.extract_lane(best, 2);
  lk = i32x4.extract_lane(idx, 2);
  if (ld < d || (ld == d && lk < k)) { d = ld; k = lk; }
  ld = f32x4.extract_lane(best, 3);
  lk = i32x4.extract_lane(idx, 3);
  if (ld < d || (ld == d && lk < k)) { d = ld; k = lk; }
  return (i64(reinterpret<u32>(d)) << 32) | i64(u32(k));
}

@inline function foldD(best: v128, idx: v128): f32 {
  return reinterpret<f32>(u32(lanesMin(best, idx, Infinity, 0x7fffffff) >>> 32));
}

@inline function foldK(best: v128, idx: v128): i32 {
  return i32(lanesMin(best, idx, Infinity, 0x7fffffff) & 0xffffffff);
}

@inline function finish(n: i32, packed: i64, x: usize, d: i32, codes: usize, dist: usize): void {
  const best = reinterpret<f32>(u32(packed >>> 32));
  const k = i32(packed & 0xffffffff);
  let xn: f32 = 0;
  for (let j = 0; j < d; j++) {
    const v = load<f32>(x + (<usize>(n * d + j) << 2));
    xn += v * v;
  }
  let s = xn + best;
  if (s < 0) s = 0;
  store<i32>(codes + (<usize>n << 2), k);
  store<f32>(dist + (<usize>n << 2), s);
}

export function kmeansAssign(
  x: usize,
  N: i32,
  cT: usize,
  cn: usize,
  Kp: i32,
  d: i32,
  codes: usize,
  dist: usize,
  scratch: usize,
): void {
  const four = i32x4.splat(4);
  const eight = i32x4.splat(8);
  const inf = f32x4.splat(Infinity);
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    // scratch[j][v] = splat(−2·x[n+v][j])
    for (let j = 0; j < d; j++) {
      for (let v = 0; v < 4; v++) {
        const xv = load<f32>(x + (<usize>((n + v) * d + j) << 2));
        v128.store(scratch + (<usize>(j * 4 + v) << 4), f32x4.splat(-2 * xv));
      }
    }
    // two independent lane sets: centroids k..k+3 (b*, i*) and k+4..k+7 (e*, j*)
    let b0 = inf, b1 = inf, b2 = inf, b3 = inf;
    let e0 = inf, e1 = inf, e2 = inf, e3 = inf;
    let i0 = i32x4.splat(0), i1 = i0, i2 = i0, i3 = i0;
    let j0 = i0, j1 = i0, j2 = i0, j3 = i0;
    let kk = i32x4(0, 1, 2, 3);
    let kh = i32x4(4, 5, 6, 7);
    for (let k = 0; k < Kp; k += 8) {
      const base = v128.load(cn + (<usize>k << 2));
      const baseH = v128.load(cn + (<usize>k << 2), 16);
      let a0 = base, a1 = base, a2 = base, a3 = base;
      let h0 = baseH, h1 = baseH, h2 = baseH, h3 = baseH;
      for (let j = 0; j < d; j++) {
        const cp = cT + (<usize>(j * Kp + k) << 2);
        const c = v128.load(cp);
        const ch = v128.load(cp, 16);
        const s = scratch + (<usize>(j * 4) << 4);
        const s0 = v128.load(s);
        const s1 = v128.load(s, 16);
        const s2 = v128.load(s, 32);
        const s3 = v128.load(s, 48);
        a0 = madd(s0, c, a0);
        a1 = madd(s1, c, a1);
        a2 = madd(s2, c, a2);
        a3 = madd(s3, c, a3);
        h0 = madd(s0, ch, h0);
        h1 = madd(s1, ch, h1);
        h2 = madd(s2, ch, h2);
        h3 = madd(s3, ch, h3);
      }
      let m = f32x4.lt(a0, b0);
      b0 = v128.bitselect(a0, b0, m);
      i0 = v128.bitselect(kk, i0, m);
      m = f32x4.lt(a1, b1);
      b1 = v128.bitselect(a1, b1, m);
      i1 = v128.bitselect(kk, i1, m);
      m = f32x4.lt(a2, b2);
      b2 = v128.bitselect(a2, b2, m);
      i2 = v128.bitselect(kk, i2, m);
      m = f32x4.lt(a3, b3);
      b3 = v128.bitselect(a3, b3, m);
      i3 = v128.bitselect(kk, i3, m);
      m = f32x4.lt(h0, e0);
      e0 = v128.bitselect(h0, e0, m);
      j0 = v128.bitselect(kh, j0, m);
      m = f32x4.lt(h1, e1);
      e1 = v128.bitselect(h1, e1, m);
      j1 = v128.bitselect(kh, j1, m);
      m = f32x4.lt(h2, e2);
      e2 = v128.bitselect(h2, e2, m);
      j2 = v128.bitselect(kh, j2, m);
      m = f32x4.lt(h3, e3);
      e3 = v128.bitselect(h3, e3, m);
      j3 = v128.bitselect(kh, j3, m);
      kk = i32x4.add(kk, eight);
      kh = i32x4.add(kh, eight);
    }
    // fold the second lane set into the first: its indices are higher within a sweep, yet may be lower than a
    // later match of the first set, so compare (distance, index) exactly
    finish(n, lanesMin(e0, j0, foldD(b0, i0), foldK(b0, i0)), x, d, codes, dist);
    finish(n + 1, lanesMin(e1, j1, foldD(b1, i1), foldK(b1, i1)), x, d, codes, dist);
    finish(n + 2, lanesMin(e2, j2, foldD(b2, i2), foldK(b2, i2)), x, d, codes, dist);
    finish(n + 3, lanesMin(e3, j3, foldD(b3, i3), foldK(b3, i3)), x, d, codes, dist);
  }
  for (; n < N; n++) {
    for (let j = 0; j < d; j++) {
      const xv = load<f32>(x + (<usize>(n * d + j) << 2));
      v128.store(scratch + (<usize>(j * 4) << 4), f32x4.splat(-2 * xv));
    }
    let b0 = inf;
    let i0 = i32x4.splat(0);
    let kk = i32x4(0, 1, 2, 3);
    for (let k = 0; k < Kp; k += 4) {
      let a0 = v128.load(cn + (<usize>k << 2));
      for (let j = 0; j < d; j++) {
        const c = v128.load(cT + (<usize>(j * Kp + k) << 2));
        a0 = madd(v128.load(scratch + (<usize>(j * 4) << 4)), c, a0);
      }
      const m = f32x4.lt(a0, b0);
      b0 = v128.bitselect(a0, b0, m);
      i0 = v128.bitselect(kk, i0, m);
      kk = i32x4.add(kk, four);
    }
    finish(n, lanesMin(b0, i0, Infinity, 0x7fffffff), x, d, codes, dist);
  }
}

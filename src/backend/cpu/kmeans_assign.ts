// kmeans_assign: for each vector x_n [d], the nearest centroid c_k [d] under squared L2, computed as
// ‖x‖² − 2·x·c + ‖c‖² (a matrix product plus an argmin); ties go to the lowest k. Memory: O(K) beyond I/O.
// Four vectors share each sweep over the centroids (each centroid is loaded once for four dot products).
// x [N, d], centroids [K, d] → codes [N], distances [N] (clamped at 0).

export function kmeans_assign_forward(
  codes: Int32Array,
  distances: Float32Array,
  x: Float32Array,
  c: Float32Array,
  N: number,
  K: number,
  d: number,
): void {
  const cnorm = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += c[k * d + j] * c[k * d + j];
    cnorm[k] = s;
  }
  const xnorm = (o: number): number => {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[o + j] * x[o + j];
    return s;
  };
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const o0 = n * d;
    const o1 = o0 + d;
    const o2 = o1 + d;
    const o3 = o2 + d;
    let b0 = 0;
    let b1 = 0;
    let b2 = 0;
    let b3 = 0;
    let s0 = Number.POSITIVE_INFINITY;
    let s1 = Number.POSITIVE_INFINITY;
    let s2 = Number.POSITIVE_INFINITY;
    let s3 = Number.POSITIVE_INFINITY;
    for (let k = 0; k < K; k++) {
      const co = k * d;
      let d0 = 0;
      let d1 = 0;
      let d2 = 0;
      let d3 = 0;
      for (let j = 0; j < d; j++) {
        const cv = c[co + j];
        d0 += x[o0 + j] * cv;
        d1 += x[o1 + j] * cv;
        d2 += x[o2 + j] * cv;
        d3 += x[o3 + j] * cv;
      }
      const cn = cnorm[k];
      const t0 = cn - 2 * d0;
      const t1 = cn - 2 * d1;
      const t2 = cn - 2 * d2;
      const t3 = cn - 2 * d3;
      if (t0 < s0) {
        s0 = t0;
        b0 = k;
      }
      if (t1 < s1) {
        s1 = t1;
        b1 = k;
      }
      if (t2 < s2) {
        s2 = t2;
        b2 = k;
      }
      if (t3 < s3) {
        s3 = t3;
        b3 = k;
      }
    }
    codes[n] = b0;
    codes[n + 1] = b1;
    codes[n + 2] = b2;
    codes[n + 3] = b3;
    distances[n] = Math.max(0, xnorm(o0) + s0);
    distances[n + 1] = Math.max(0, xnorm(o1) + s1);
    distances[n + 2] = Math.max(0, xnorm(o2) + s2);
    distances[n + 3] = Math.max(0, xnorm(o3) + s3);
  }
  for (; n < N; n++) {
    const xo = n * d;
    let best = 0;
    let bestScore = Number.POSITIVE_INFINITY;
    for (let k = 0; k < K; k++) {
      const co = k * d;
      let dot = 0;
      for (let j = 0; j < d; j++) dot += x[xo + j] * c[co + j];
      const score = cnorm[k] - 2 * dot;
      if (score < bestScore) {
        bestScore = score;
        best = k;
      }
    }
    codes[n] = best;
    distances[n] = Math.max(0, xnorm(xo) + bestScore);
  }
}

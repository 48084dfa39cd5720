// kmeans_assign: for each vector x_n [d], the nearest centroid c_k [d] under squared L2, computed as
// ‖x‖² − 2·x·c + ‖c‖² (a matrix product plus an argmin); ties go to the lowest k. Memory: O(K) beyond I/O.
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
  for (let n = 0; n < N; n++) {
    const xo = n * d;
    let xnorm = 0;
    for (let j = 0; j < d; j++) xnorm += x[xo + j] * x[xo + j];
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
    distances[n] = Math.max(0, xnorm + bestScore);
  }
}

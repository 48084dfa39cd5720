// kmeans_update: per-cluster sums and counts (the centroid update's segmented reduction).
// x [N, d], codes [N] → sums [K, d], counts [K]; float64 accumulation.

export function kmeans_update_forward(
  sums: Float32Array,
  counts: Float32Array,
  x: Float32Array,
  codes: Int32Array,
  N: number,
  K: number,
  d: number,
): void {
  const acc = new Float64Array(K * d);
  const cnt = new Float64Array(K);
  for (let n = 0; n < N; n++) {
    const k = codes[n];
    cnt[k]++;
    for (let j = 0; j < d; j++) acc[k * d + j] += x[n * d + j];
  }
  sums.set(acc);
  counts.set(cnt);
}

// matmul: out[M, N] = op(A) · op(B), plain loops, float64 accumulation (JS numbers).
// A is [M, K] (or [K, M] stored, transposeA); B is [K, N] (or [N, K] stored, transposeB).

export function matmul_forward(
  out: Float32Array,
  a: Float32Array,
  b: Float32Array,
  M: number,
  K: number,
  N: number,
  transposeA: boolean,
  transposeB: boolean,
): void {
  if (transposeB && !transposeA) {
    linear_forward(out, a, b, null, M, K, N);
    return;
  }
  const acc = new Float64Array(N);
  for (let i = 0; i < M; i++) {
    acc.fill(0);
    for (let k = 0; k < K; k++) {
      const av = transposeA ? a[k * M + i] : a[i * K + k];
      if (av === 0) continue;
      if (transposeB) {
        for (let j = 0; j < N; j++) acc[j] += av * b[j * K + k];
      } else {
        const bo = k * N;
        for (let j = 0; j < N; j++) acc[j] += av * b[bo + j];
      }
    }
    const oo = i * N;
    for (let j = 0; j < N; j++) out[oo + j] = acc[j];
  }
}

/**
 * F.linear: out[M, N] = x[M, K] · W[N, K]ᵀ + bias[N]. Both operands are read along contiguous K; four rows of x
 * share each loaded row of W.
 */
export function linear_forward(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  M: number,
  K: number,
  N: number,
): void {
  let i = 0;
  for (; i + 4 <= M; i += 4) {
    const x0 = i * K;
    const x1 = x0 + K;
    const x2 = x1 + K;
    const x3 = x2 + K;
    for (let j = 0; j < N; j++) {
      const wo = j * K;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let k = 0; k < K; k++) {
        const wv = w[wo + k];
        s0 += x[x0 + k] * wv;
        s1 += x[x1 + k] * wv;
        s2 += x[x2 + k] * wv;
        s3 += x[x3 + k] * wv;
      }
      const bv = bias === null ? 0 : bias[j];
      out[i * N + j] = s0 + bv;
      out[(i + 1) * N + j] = s1 + bv;
      out[(i + 2) * N + j] = s2 + bv;
      out[(i + 3) * N + j] = s3 + bv;
    }
  }
  for (; i < M; i++) {
    const xo = i * K;
    for (let j = 0; j < N; j++) {
      const wo = j * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += x[xo + k] * w[wo + k];
      out[i * N + j] = s + (bias === null ? 0 : bias[j]);
    }
  }
}

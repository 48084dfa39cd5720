// Float64 oracles for backend ops, written as plainly as possible (full matrices, explicit masks), and the
// NMSE metric of ggml's test-backend-ops: mse(a, b) / mse(b, 0).

export function nmse(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    num += (actual[i] - expected[i]) ** 2;
    den += expected[i] ** 2;
  }
  return den === 0 ? num : num / den;
}

export function oracleMatmul(
  a: Float32Array,
  b: Float32Array,
  M: number,
  K: number,
  N: number,
  tA: boolean,
  tB: boolean,
): Float64Array {
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (tA ? a[k * M + i] : a[i * K + k]) * (tB ? b[j * K + k] : b[k * N + j]);
      out[i * N + j] = s;
    }
  return out;
}

export function oracleAttention(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  B: number,
  T: number,
  S: number,
  H: number,
  Hkv: number,
  D: number,
  kvLength: number,
  queryOffset: number,
  window: number | null,
): Float64Array {
  const out = new Float64Array(B * T * H * D);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / (H / Hkv));
      for (let t = 0; t < T; t++) {
        const pos = queryOffset + t;
        const w: number[] = [];
        for (let j = 0; j < kvLength; j++) {
          const visible = j <= pos && (window === null || pos - j < window);
          let s = 0;
          for (let d = 0; d < D; d++) s += q[((b * T + t) * H + h) * D + d] * k[((b * S + j) * Hkv + g) * D + d];
          w.push(visible ? s / Math.sqrt(D) : Number.NEGATIVE_INFINITY);
        }
        const m = Math.max(...w);
        const e = w.map((x) => Math.exp(x - m));
        const z = e.reduce((x, y) => x + y, 0);
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j < kvLength; j++) acc += (e[j] / z) * v[((b * S + j) * Hkv + g) * D + d];
          out[((b * T + t) * H + h) * D + d] = acc;
        }
      }
    }
  return out;
}

/**
 * The vector-Jacobian product dyᵀ·∂f/∂inputs[i] of a float64 function by central differences: the independent
 * oracle for every backward op. Returns one gradient per input.
 */
export function finiteDifferenceVjp(
  f: (inputs: Float64Array[]) => ArrayLike<number>,
  inputs: ArrayLike<number>[],
  dy: ArrayLike<number>,
  h = 1e-5,
): Float64Array[] {
  const xs = inputs.map((x) => Float64Array.from(x));
  const dot = () => {
    const y = f(xs);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * dy[i];
    return s;
  };
  return xs.map((x) => {
    const g = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const keep = x[i];
      x[i] = keep + h;
      const plus = dot();
      x[i] = keep - h;
      const minus = dot();
      x[i] = keep;
      g[i] = (plus - minus) / (2 * h);
    }
    return g;
  });
}

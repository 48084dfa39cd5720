// silu_mul_backward: for y = silu(g)·u with silu(g) = g·σ(g):
//   dg = dy·u·σ(g)·(1 + g·(1 − σ(g)))        du = dy·g·σ(g)

export function silu_mul_backward_forward(
  dgate: Float32Array,
  dup: Float32Array,
  gate: Float32Array,
  up: Float32Array,
  dy: Float32Array,
  n: number,
): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    const s = 1 / (1 + Math.exp(-g));
    dgate[i] = dy[i] * up[i] * s * (1 + g * (1 - s));
    dup[i] = dy[i] * g * s;
  }
}

// scale: out = s · x, elementwise.

export function scale_forward(out: Float32Array, x: Float32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) out[i] = s * x[i];
}

// mul: out[i] = a[i] · b[⌊i / div⌋ mod modulus], elementwise with b broadcast (checks.ts checkMul: same shape, one
// factor per column, or one per row).

export function mul_forward(
  out: Float32Array,
  a: Float32Array,
  b: Float32Array,
  n: number,
  div: number,
  modulus: number,
): void {
  for (let i = 0; i < n; i++) out[i] = a[i] * b[Math.floor(i / div) % modulus];
}

// add and mul: out[i] = a[i] + b[j] / a[i] · b[j], j = ⌊i / div⌋ mod modulus — b broadcast over a (checks.ts
// checkBroadcast: b of a's shape, one value per column, or one per row).

export function add_forward(
  out: Float32Array,
  a: Float32Array,
  b: Float32Array,
  n: number,
  div: number,
  modulus: number,
): void {
  for (let i = 0; i < n; i++) out[i] = a[i] + b[Math.floor(i / div) % modulus];
}

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

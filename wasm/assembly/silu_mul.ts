// silu_mul, WebAssembly (AssemblyScript): out = silu(gate) · up = gate / (1 + e^(−gate)) · up, f32, for elements
// i0..i1 (the SwiGLU MLP's activation). The exponential is computed here without lookup tables: the kernels'
// module must own no static data, because the host lays its regions out from address 0 and every worker
// instantiates the module on the same shared memory (a data segment would be rewritten under running jobs).

/** e^x in f32: x = n·ln2 + r, |r| ≤ ln2/2 (ln2 split in two for an exact n·ln2_hi), e^r by its degree-6 Taylor
 * polynomial (relative error < 2·10⁻⁷), times 2^n built in the exponent bits. */
@inline function expf(x: f32): f32 {
  if (x > 88.5) return Infinity;
  if (x < -87.0) return 0;
  const n = nearest<f32>(x * 1.4426950408889634);
  const r = x - n * 0.693145751953125 - n * 1.4286068203094172e-6;
  const p: f32 = 1 + r * (1 + r * (0.5 + r * (0.16666667 + r * (0.041666668 + r * (0.008333334 + r * 0.0013888889)))));
  return p * reinterpret<f32>((<i32>n + 127) << 23);
}

export function siluMul(gate: usize, up: usize, out: usize, i0: i32, i1: i32): void {
  for (let i = i0; i < i1; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(gate + o);
    store<f32>(out + o, (g / (1 + expf(-g))) * load<f32>(up + o));
  }
}

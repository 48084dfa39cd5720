// matmul, WebAssembly SIMD (AssemblyScript): C [Mp, Np] = A [Mp, K] · B [K, Np], all row-major f32 in linear
// memory, Mp a multiple of 4 and Np of 8 (the caller zero-pads and transposes operands into this layout).
// Register block: 4 rows × 8 columns (8 f32x4 accumulators); B is walked in panels of 64 columns so a panel
// stays in cache while all rows stream past it. f32 accumulation in k order.

const PANEL = 64;

export function matmul(a: usize, b: usize, c: usize, Mp: i32, K: i32, Np: i32): void {
  for (let j0 = 0; j0 < Np; j0 += PANEL) {
    const j1 = min(j0 + PANEL, Np);
    for (let i = 0; i < Mp; i += 4) {
      const a0 = a + (<usize>(i * K) << 2);
      const a1 = a0 + (<usize>K << 2);
      const a2 = a1 + (<usize>K << 2);
      const a3 = a2 + (<usize>K << 2);
      for (let j = j0; j < j1; j += 8) {
        let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00;
        let c20 = c00, c21 = c00, c30 = c00, c31 = c00;
        let bp = b + (<usize>j << 2);
        const bStep = <usize>Np << 2;
        for (let k = 0; k < K; k++) {
          const b0 = v128.load(bp);
          const b1 = v128.load(bp, 16);
          const ko = <usize>k << 2;
          const x0 = f32x4.splat(load<f32>(a0 + ko));
          const x1 = f32x4.splat(load<f32>(a1 + ko));
          const x2 = f32x4.splat(load<f32>(a2 + ko));
          const x3 = f32x4.splat(load<f32>(a3 + ko));
          c00 = f32x4.add(c00, f32x4.mul(x0, b0));
          c01 = f32x4.add(c01, f32x4.mul(x0, b1));
          c10 = f32x4.add(c10, f32x4.mul(x1, b0));
          c11 = f32x4.add(c11, f32x4.mul(x1, b1));
          c20 = f32x4.add(c20, f32x4.mul(x2, b0));
          c21 = f32x4.add(c21, f32x4.mul(x2, b1));
          c30 = f32x4.add(c30, f32x4.mul(x3, b0));
          c31 = f32x4.add(c31, f32x4.mul(x3, b1));
          bp += bStep;
        }
        const cp = c + (<usize>(i * Np + j) << 2);
        const cStep = <usize>Np << 2;
        v128.store(cp, c00);
        v128.store(cp, c01, 16);
        v128.store(cp + cStep, c10);
        v128.store(cp + cStep, c11, 16);
        v128.store(cp + 2 * cStep, c20);
        v128.store(cp + 2 * cStep, c21, 16);
        v128.store(cp + 3 * cStep, c30);
        v128.store(cp + 3 * cStep, c31, 16);
      }
    }
  }
}

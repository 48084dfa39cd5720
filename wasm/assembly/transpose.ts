// transpose, WebAssembly (AssemblyScript): dst [C, R] = src [R, C]ᵀ, f32 row-major, in 8 × 8 tiles so both
// sides are touched a cache line at a time. Used to bring an operand into the NT matmul's layout.

const TILE = 8;

/** dst[c, r] = src[r, c] for source rows r0..r1 (all columns). */
export function transposeRows(src: usize, dst: usize, R: i32, C: i32, r0: i32, r1: i32): void {
  for (let rt = r0; rt < r1; rt += TILE) {
    const re = min(rt + TILE, r1);
    for (let ct = 0; ct < C; ct += TILE) {
      const ce = min(ct + TILE, C);
      for (let r = rt; r < re; r++) {
        const s = src + (<usize>(r * C) << 2);
        for (let c = ct; c < ce; c++) store<f32>(dst + (<usize>(c * R + r) << 2), load<f32>(s + (<usize>c << 2)));
      }
    }
  }
}

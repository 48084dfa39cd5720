// Shared SIMD helpers. `madd` is one fused multiply-add where the module is built with relaxed SIMD
// (ASC_FEATURE_RELAXED_SIMD, the "relaxed" variants) and a multiply then an add otherwise.

@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** The sum of the four lanes, as ((l0 + l1) + (l2 + l3)). */
@inline export function hsum(v: v128): f32 {
  const s = f32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

// f16/bf16 conversions agree with IEEE 754 and with torch's round-to-nearest-even.

import { describe, expect, it } from "vitest";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../src/index.js";

describe("f16", () => {
  it("decodes known bit patterns", () => {
    expect(f16ToF32(0x3c00)).toBe(1);
    expect(f16ToF32(0xc000)).toBe(-2);
    expect(f16ToF32(0x7bff)).toBe(65504);
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(f16ToF32(0x7c00)).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(f16ToF32(0x7e00))).toBe(true);
  });
  it("round-trips every finite half exactly", () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00) continue;
      const back = f32ToF16(f16ToF32(h));
      expect(back === h || (h === 0x8000 && back === 0x8000)).toBe(true);
    }
  });
  it("rounds half to even and overflows to infinity", () => {
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie → even (down)
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(f32ToF16(70000)).toBe(0x7c00);
    expect(f32ToF16(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal → 0
  });
});

describe("bf16", () => {
  it("decodes and rounds to nearest even", () => {
    expect(bf16ToF32(0x3f80)).toBe(1);
    expect(f32ToBf16(1)).toBe(0x3f80);
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(Number.isNaN(bf16ToF32(f32ToBf16(Number.NaN)))).toBe(true);
  });
});

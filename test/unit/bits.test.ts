// bits.ts reproduces the reference's bpw labels for Llama-2-7B shapes and the RTN baselines' 3.25 / 2.5 bpw.

import { describe, expect, it } from "vitest";
import { budgetBpw, codebookMatrixBpw, rtnBpw } from "../../src/index.js";

const ATTN = { out: 4096, in: 4096 };
const MLP = { out: 11008, in: 4096 };

// label, d, attention m×K, MLP m×K (the reference's presets)
const PRESETS: [number, number, [number, number], [number, number]][] = [
  [4.14, 4, [1, 38000], [2, 51000]],
  [3, 6, [1, 57000], [3, 51000]],
  [2.28, 8, [1, 38000], [2, 50000]],
  [2.14, 8, [1, 19000], [1, 50000]],
  [2, 9, [1, 27000], [2, 35000]],
];

describe("codebook bpw", () => {
  // The labels use 16/d for the codes; 4096 and 11008 are not multiples of 6 or 9, and we also count the codes
  // of the zero-padded vectors (+0.0013 bpw at d=6, +0.0035 at d=9), hence 0.015 rather than 0.01 there.
  it.each(PRESETS)("%s bpw preset: each matrix and the block mix land on the label", (label, d, [ma, Ka], [mm, Km]) => {
    const a = codebookMatrixBpw({ ...ATTN, d }, Ka, ma);
    const m = codebookMatrixBpw({ ...MLP, d }, Km, mm);
    const tol = 4096 % d === 0 && 11008 % d === 0 ? 0.01 : 0.015;
    expect(Math.abs(a - label)).toBeLessThan(tol);
    expect(Math.abs(m - label)).toBeLessThan(tol);
    // one decoder block: q, k, v, o (4096²) and gate, up (11008×4096), down (4096×11008)
    const params = 4 * ATTN.out * ATTN.in + 3 * MLP.out * MLP.in;
    const bits = 4 * a * ATTN.out * ATTN.in + 3 * m * MLP.out * MLP.in;
    expect(Math.abs(budgetBpw({ params, bits }) - label)).toBeLessThan(tol);
    // without the padding codes it is the reference's own formula, within label rounding
    const ref = (s: { out: number; in: number }, K: number, mm: number) => 16 / d + (16 * K * d * mm) / (s.in * s.out);
    expect(Math.abs(ref(ATTN, Ka, ma) - label)).toBeLessThan(0.01);
    expect(Math.abs(ref(MLP, Km, mm) - label)).toBeLessThan(0.01);
  });

  it("equals 16/d + 16·K·d·m/(in·out) exactly when d divides out", () => {
    expect(codebookMatrixBpw({ out: 4096, in: 4096, d: 8 }, 19000, 1)).toBe(16 / 8 + (16 * 19000 * 8) / (4096 * 4096));
    expect(codebookMatrixBpw({ out: 11008, in: 4096, d: 4 }, 51000, 2)).toBe(
      16 / 4 + (16 * 51000 * 4 * 2) / (4096 * 11008),
    );
  });

  it("counts padding codes when d does not divide out", () => {
    // out = 10, d = 4 → 3 codes per input column, not 2.5
    expect(codebookMatrixBpw({ out: 10, in: 7, d: 4 }, 1, 1)).toBe((16 * 7 * 3 + 16 * 4) / 70);
  });
});

describe("rtn bpw", () => {
  it("b + 32/G for fp16 scale and zero per group", () => {
    expect(rtnBpw(3, 128)).toBe(3.25);
    expect(rtnBpw(2, 64)).toBe(2.5);
    expect(rtnBpw(4, 128, 4096)).toBe(4.25);
    // a 100-wide row holds 2 groups of 64
    expect(rtnBpw(2, 64, 100)).toBe(2 + 64 / 100);
  });
});

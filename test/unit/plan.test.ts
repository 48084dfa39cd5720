// The planner: `--bits B` alone must give a feasible plan for every B from 1 to 8 on every supported shape (k/v
// narrower than q, MLP widths not divisible by 8, tiny and 7B-sized matrices), within the budget and close to it,
// and reproduce the reference's presets on Llama-2-7B shapes (4.14 → d 4, 3 → 6, 2.28 → 8, 2 → 9).

import { describe, expect, it } from "vitest";
import {
  type CodebookGroup,
  CompressionError,
  channelScaleBpw,
  codeBits,
  codebookBits,
  listLinears,
  MAX_CLUSTERS,
  type ModelConfig,
  parseModelConfig,
  planBpw,
  planCodebooks,
  planScore,
  Rng,
  readModelConfig,
  resolvePlan,
  type ShareMode,
} from "../../src/index.js";
import { EXAMPLE } from "../helpers/cli.js";
import { MODELS } from "../helpers/golden.js";

function config(o: Record<string, number>): ModelConfig {
  return parseModelConfig({ architectures: ["LlamaForCausalLM"], vocab_size: 64, ...o });
}

const SWEEP = [1, 1.5, 2, 2.2, 2.5, 3, 3.25, 4, 6, 8];

/** Random Llama configs with narrow k/v (GQA), odd MLP widths and head dims. */
function randomConfigs(n: number, seed: number): { name: string; cfg: ModelConfig }[] {
  const rng = new Rng(seed);
  const out: { name: string; cfg: ModelConfig }[] = [];
  for (let i = 0; i < n; i++) {
    const headDim = 2 * (2 + rng.int(31)); // 4..64, even
    const kv = 1 + rng.int(4);
    const heads = kv * (1 + rng.int(4));
    const hidden = 8 + rng.int(700);
    const inter = 9 + rng.int(2000); // rarely a multiple of 8
    const o = {
      hidden_size: hidden,
      intermediate_size: inter,
      num_hidden_layers: 2,
      num_attention_heads: heads,
      num_key_value_heads: kv,
      head_dim: headDim,
    };
    out.push({ name: `random ${JSON.stringify(o)}`, cfg: config(o) });
  }
  return out;
}

const SHAPES: { name: string; cfg: ModelConfig }[] = [
  { name: "stories260K", cfg: readModelConfig(EXAMPLE) },
  { name: "llama-en-26m", cfg: readModelConfig(MODELS["llama-en-26m"]) },
  {
    name: "Llama-2-7B (2 layers)",
    cfg: config({ hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 2, num_attention_heads: 32 }),
  },
  {
    name: "k/v 8× narrower than q, MLP 172",
    cfg: config({
      hidden_size: 64,
      intermediate_size: 172,
      num_hidden_layers: 1,
      num_attention_heads: 8,
      num_key_value_heads: 1,
    }),
  },
  ...randomConfigs(12, 7),
];

/** Bits the plan stores for a group (codes + its codebooks once) over the group's weights. */
function groupBpw(g: CodebookGroup): number {
  const params = g.members.reduce((s, x) => s + x.in * x.out, 0);
  const bits = g.members.reduce((s, x) => s + codeBits({ out: x.out, in: x.in, d: g.d }, g.codeBits), 0);
  return (bits + g.m * codebookBits(g.K, g.d)) / params;
}

describe("the planner, --bits B alone", () => {
  for (const { name, cfg } of SHAPES) {
    for (const share of ["block", "none"] as ShareMode[]) {
      it(`${name}, --share ${share}: every B in ${SWEEP.join(", ")} gives a plan within the budget`, () => {
        for (const B of SWEEP) {
          const plan = resolvePlan(cfg, { method: "cluscomp", channelScales: false, bits: B, share, codeBits: "16" });
          expect(plan.length).toBeGreaterThan(0);
          for (const g of plan) {
            expect(g.K, `${g.codebook} at ${B}`).toBeGreaterThanOrEqual(2);
            expect(g.K).toBeLessThanOrEqual(MAX_CLUSTERS);
            expect(Number.isInteger(g.d) && g.d >= 1).toBe(true);
            // within the group's target; close to it unless K hit a cap (vectors or 16-bit codes)
            const target = g.targetBits!;
            const bpw = groupBpw(g);
            expect(bpw, `${g.codebook} d ${g.d} K ${g.K} at ${B}`).toBeLessThanOrEqual(target + 1e-9);
            const capped =
              g.K === MAX_CLUSTERS || g.K === g.members.reduce((s, x) => s + x.in * Math.ceil(x.out / g.d), 0);
            if (!capped && target <= B) {
              const oneMore = bpw + (codebookBits(1, g.d) * g.m) / g.members.reduce((s, x) => s + x.in * x.out, 0);
              expect(oneMore, `${g.codebook}: one more centroid would still fit in ${target}`).toBeGreaterThan(target);
            }
          }
          // the model averages at most B
          expect(planBpw(plan)).toBeLessThanOrEqual(B + 1e-9);
        }
      });
    }
  }

  for (const { name, cfg } of SHAPES) {
    it(`${name}, --code-bits min: within the budget, ⌈log₂K⌉-bit codes, one more centroid would not fit, never a worse score`, () => {
      for (const share of ["block", "none"] as ShareMode[]) {
        for (const B of SWEEP) {
          const plan = resolvePlan(cfg, { method: "cluscomp", channelScales: false, bits: B, share, codeBits: "min" });
          const fixed = resolvePlan(cfg, { method: "cluscomp", channelScales: false, bits: B, share, codeBits: "16" });
          for (const g of plan) {
            expect(g.K).toBeGreaterThanOrEqual(2);
            expect(g.codeBits).toBe(Math.max(1, Math.ceil(Math.log2(g.K))));
            const params = g.members.reduce((s, x) => s + x.in * x.out, 0);
            const bpw = groupBpw(g);
            expect(bpw, `${g.codebook} d ${g.d} K ${g.K} at ${B}`).toBeLessThanOrEqual(g.targetBits! + 1e-9);
            const N = g.members.reduce((s, x) => s + x.in * Math.ceil(x.out / g.d), 0);
            if (g.K < MAX_CLUSTERS && g.K < N && g.targetBits! <= B) {
              // K + 1 centroids, with the code width K + 1 needs
              const w = Math.max(1, Math.ceil(Math.log2(g.K + 1)));
              const codes = g.members.reduce((s, x) => s + codeBits({ out: x.out, in: x.in, d: g.d }, w), 0);
              const oneMore = (codes + g.m * codebookBits(g.K + 1, g.d)) / params;
              expect(oneMore, `${g.codebook}: one more centroid would still fit`).toBeGreaterThan(g.targetBits!);
            }
          }
          expect(planBpw(plan)).toBeLessThanOrEqual(B + 1e-9);
          // a group planned for the same target: packed codes never predict a worse quantizer than 16-bit ones
          plan.forEach((g, i) => {
            const f = fixed[i];
            expect(f.codebook).toBe(g.codebook);
            if (Math.abs(f.targetBits! - g.targetBits!) > 1e-12) return;
            const N = (x: CodebookGroup) => x.members.reduce((s, m) => s + m.in * Math.ceil(m.out / x.d), 0);
            expect(planScore(g.d, g.K, N(g))).toBeGreaterThanOrEqual(planScore(f.d, f.K, N(f)) - 1e-9);
          });
        }
      }
    });
  }

  it("--code-bits min spends the budget its code widths leave (llama-en-26m, block): within 1 % of B", () => {
    const cfg = SHAPES[1].cfg;
    for (const B of [1.2, 2, 2.5, 3.25, 4.1]) {
      const plan = resolvePlan(cfg, {
        method: "cluscomp",
        channelScales: false,
        bits: B,
        share: "block",
        codeBits: "min",
      });
      expect(planBpw(plan), `at ${B}`).toBeLessThanOrEqual(B + 1e-9);
      expect(planBpw(plan), `at ${B}`).toBeGreaterThan(0.99 * B);
    }
  });

  it("reproduces the reference presets on Llama-2-7B matrices (per matrix)", () => {
    const cfg = SHAPES[2].cfg;
    const d = (B: number) =>
      new Set(
        resolvePlan(cfg, { method: "cluscomp", channelScales: false, bits: B, share: "none", codeBits: "16" }).map(
          (g) => g.d,
        ),
      );
    expect(d(4.14)).toEqual(new Set([4]));
    expect(d(3)).toEqual(new Set([6]));
    expect(d(2.28)).toEqual(new Set([8]));
    expect(d(2)).toEqual(new Set([9]));
  });

  it("plans matrices too narrow for the target at their minimum and takes their excess from the others", () => {
    // k_proj / v_proj have 8 outputs: a 16-bit code covers at most 8 weights, 2 bpw before any codebook
    const cfg = SHAPES[3].cfg;
    const plan = resolvePlan(cfg, { method: "cluscomp", channelScales: false, bits: 1, share: "none", codeBits: "16" });
    const narrow = plan.filter((g) => /[kv]_proj/.test(g.codebook));
    expect(narrow.length).toBe(2);
    for (const g of narrow) {
      expect(g.targetBits!).toBeGreaterThan(2);
      expect(g.K).toBe(2);
    }
    for (const g of plan.filter((g) => !narrow.includes(g))) expect(g.targetBits!).toBeLessThan(1);
    expect(planBpw(plan)).toBeLessThanOrEqual(1);
    expect(planBpw(plan)).toBeGreaterThan(0.95);
  });

  it("goes below 1 bit per weight with long vectors, and says why when even that cannot fit", () => {
    const cfg = SHAPES[1].cfg;
    const plan = resolvePlan(cfg, {
      method: "cluscomp",
      channelScales: false,
      bits: 0.8,
      share: "block",
      codeBits: "16",
    });
    for (const g of plan) expect(g.d).toBeGreaterThan(20);
    expect(planBpw(plan)).toBeLessThanOrEqual(0.8);
    expect(() =>
      resolvePlan(readModelConfig(EXAMPLE), { method: "cluscomp", channelScales: false, bits: 0.1, share: "none" }),
    ).toThrow(/below what this model can reach at any vector length: 0\.\d+ bpw at best/);
  });

  it("channel scales (the default) take their 16 bits per output row off the codebooks' budget", () => {
    for (const { cfg } of SHAPES) {
      const mats = listLinears(cfg);
      const scaleBpw = channelScaleBpw(mats);
      const params = mats.reduce((n, x) => n + x.out * x.in, 0);
      expect(scaleBpw).toBeCloseTo((16 * mats.reduce((n, x) => n + x.out, 0)) / params, 12);
      for (const B of [2, 2.5, 3.25, 4]) {
        const plan = resolvePlan(cfg, { method: "cluscomp", bits: B, share: "block" });
        const bare = resolvePlan(cfg, { method: "cluscomp", bits: B - scaleBpw, share: "block", channelScales: false });
        expect(plan).toEqual(bare);
        expect(planBpw(plan) + scaleBpw).toBeLessThanOrEqual(B + 1e-9);
      }
    }
    expect(() => resolvePlan(readModelConfig(EXAMPLE), { method: "cluscomp", bits: 0.2 })).toThrow(
      /channel scales take 0\.\d+ bits per weight, leaving none of --bits 0\.2.*--channel-scales off/,
    );
  });

  it("an explicit --vector-dim keeps the old contract, with a message that names the padding", () => {
    const cfg = readModelConfig(EXAMPLE);
    let err: unknown;
    try {
      planCodebooks(listLinears(cfg), { share: "none", d: 6, m: 1, bits: 3 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CompressionError);
    expect(String(err)).toMatch(
      /unreachable with --vector-dim 6.*k_proj's 32 outputs pad to 36.*leave out --vector-dim/,
    );
    const plan = planCodebooks(listLinears(cfg), { share: "block", d: 8, m: 1, bits: 3 });
    expect(new Set(plan.map((g) => g.d))).toEqual(new Set([8]));
  });

  it("refuses --bits at or above 16 and not above 0", () => {
    const cfg = readModelConfig(EXAMPLE);
    for (const B of [0, -1, 16, 17]) {
      expect(() => resolvePlan(cfg, { method: "cluscomp", bits: B }), `--bits ${B}`).toThrow(/above 0 and below 16/);
    }
  });

  it("defaults to block sharing and packed codes, and to per-matrix codebooks when several per matrix are asked for", () => {
    const cfg = readModelConfig(EXAMPLE);
    const plan = resolvePlan(cfg, { method: "cluscomp", bits: 3 });
    expect(plan.map((g) => g.codebook)).toContain("model.layers.0.self_attn.codebook");
    for (const g of plan) expect(g.codeBits).toBe(Math.ceil(Math.log2(g.K)));
    const m2 = resolvePlan(cfg, { method: "cluscomp", bits: 3, codebooks: 2 });
    expect(m2.every((g) => g.members.length === 1 && g.m === 2)).toBe(true);
  });
});

// Perplexity under the protocol of ../shared/README.md reproduces the goldens to relative 1e-4: the first-4096-id
// figures for both models, and stories260K's whole tinystories_excerpt.

import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import { CpuBackend, loadModel, loadTokenizer, perplexity } from "../../src/index.js";
import { goldenBackends, reportWebGpuSkip } from "../helpers/backends.js";
import { Golden, MODELS, type SharedModel, TEXTS } from "../helpers/golden.js";

function relDiff(a: number, b: number): number {
  return Math.abs(a - b) / Math.abs(b);
}

reportWebGpuSkip("perplexity goldens");

describe.each(goldenBackends().flatMap((be) => (Object.keys(MODELS) as SharedModel[]).map((model) => ({ model, be }))))(
  "perplexity $model on $be.name",
  ({ model, be }) => {
    const golden = new Golden(model);
    const { model: m } = loadModel(MODELS[model], be);
    const tok = loadTokenizer(MODELS[model]);
    for (const [textName, ref] of Object.entries(golden.meta.ppl)) {
      it(`${textName} first4096: ppl within 1e-4 of ${ref.first4096.ppl.toFixed(4)}`, async () => {
        const ids = tok.encode(fs.readFileSync(TEXTS[textName], "utf8"));
        const r = await perplexity(m, ids.slice(0, ref.first4096.first_tokens), {
          seqlen: ref.first4096.seqlen,
          batchSize: 4,
        });
        expect(r.windows).toBe(ref.first4096.windows);
        expect(relDiff(r.ppl, ref.first4096.ppl)).toBeLessThan(1e-4);
        expect(Math.abs(r.meanNll - ref.first4096.mean_nll)).toBeLessThan(1e-4);
      });
    }
  },
);

describe("perplexity stories260K whole text", () => {
  it("tinystories_excerpt: all 196 windows, ppl within 1e-4 of 6.2714", async () => {
    const golden = new Golden("stories260K");
    const ref = golden.meta.ppl.tinystories_excerpt;
    const { model: m } = loadModel(MODELS.stories260K, new CpuBackend());
    const ids = loadTokenizer(MODELS.stories260K).encode(fs.readFileSync(TEXTS.tinystories_excerpt, "utf8"));
    const r = await perplexity(m, ids, { seqlen: golden.meta.seqlen, batchSize: 4 });
    expect(r.windows).toBe(ref.windows);
    expect(r.tokens).toBe(ref.tokens);
    expect(relDiff(r.ppl, ref.ppl)).toBeLessThan(1e-4);
  });

  it("--max-windows bounds the work to the first windows", async () => {
    const { model: m } = loadModel(MODELS.stories260K, new CpuBackend());
    const ids = loadTokenizer(MODELS.stories260K).encode(fs.readFileSync(TEXTS.tinystories_excerpt, "utf8"));
    const r = await perplexity(m, ids, { seqlen: 512, maxWindows: 8 });
    const ref = new Golden("stories260K").meta.ppl.tinystories_excerpt.first4096;
    expect(r.windows).toBe(8);
    expect(relDiff(r.ppl, ref.ppl)).toBeLessThan(1e-4);
  });
});

// Greedy generation from stories260K reproduces the model's documented output and is deterministic; sampling
// is deterministic for a seed.

import { describe, expect, it } from "vitest";
import { CpuBackend, generate, loadModel, loadTokenizer } from "../../src/index.js";
import { MODELS } from "../helpers/golden.js";

describe("generate stories260K", () => {
  const { model } = loadModel(MODELS.stories260K, new CpuBackend());
  const tok = loadTokenizer(MODELS.stories260K);
  const greedy = { maxNewTokens: 40, temperature: 0, topK: 0, topP: 1, seed: 0 };

  it('greedy "Once upon a time" starts with the documented sentence, twice the same', async () => {
    let streamed = "";
    const a = await generate(model, tok, "Once upon a time", { ...greedy, onText: (t) => (streamed += t) });
    const b = await generate(model, tok, "Once upon a time", greedy);
    expect(a.text.startsWith("Once upon a time, there was a little girl named Lily.")).toBe(true);
    expect(b.ids).toEqual(a.ids);
    expect(streamed).toBe(a.text);
    expect(a.newTokens).toBe(40);
  });

  it("sampling is reproducible for a seed and varies with it", async () => {
    const opts = { maxNewTokens: 30, temperature: 1, topK: 0, topP: 0.95 };
    const a = await generate(model, tok, "Once upon a time", { ...opts, seed: 1 });
    const b = await generate(model, tok, "Once upon a time", { ...opts, seed: 1 });
    const c = await generate(model, tok, "Once upon a time", { ...opts, seed: 2 });
    expect(b.ids).toEqual(a.ids);
    expect(c.ids).not.toEqual(a.ids);
  });
});

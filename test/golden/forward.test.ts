// Logits and every hidden state of the full forward equal transformers' (float64 goldens), for stories260K
// (f32 weights, tied head) and llama-en-26m (bf16 weights in 3 shards, untied head).

import { describe, expect, it } from "vitest";
import { loadModel } from "../../src/index.js";
import { goldenBackends, reportWebGpuSkip } from "../helpers/backends.js";
import { expectClose, Golden, MODELS, type SharedModel } from "../helpers/golden.js";

reportWebGpuSkip("forward goldens");

describe.each(goldenBackends().flatMap((be) => (Object.keys(MODELS) as SharedModel[]).map((model) => ({ model, be }))))(
  "forward $model on $be.name",
  ({ model, be }) => {
    it("logits (max |Δ| ≤ 1e-3) and hidden_states match the golden", async () => {
      const golden = new Golden(model);
      const { model: m, config } = loadModel(MODELS[model], be);
      const ids = golden.i32("input_ids");
      const [B, T] = [2, ids.length / 2];
      const { logits, hiddenStates } = m.forward(ids, B, T, { outputHiddenStates: true });
      const ref = golden.f32("logits");
      expect(logits.shape).toEqual(ref.shape);
      expectClose(`${model} logits`, await be.read(logits), ref.data, 1e-3);

      const hs = golden.f32("hidden_states");
      expect(hiddenStates!.length).toBe(config.numHiddenLayers + 1);
      const per = B * T * config.hiddenSize;
      for (let i = 0; i < hiddenStates!.length; i++) {
        const expected = hs.data.subarray(i * per, (i + 1) * per);
        expectClose(`${model} hidden_states[${i}]`, await be.read(hiddenStates![i]), expected, 1e-3);
      }
    });
  },
);

// The model-level backward against the PyTorch goldens `lmgrad.*`: the gradient of the mean next-token
// cross-entropy over the fixtures' input_ids (labels = inputs, transformers' shift), for every parameter of
// stories260K (tied embeddings: both sides) and llama-en-26m's subset, to max|Δ|/max|ref| ≤ 1e-4, on every golden
// backend; recomputing the layers' activations gives the gradients that keeping them gives.

import { describe, expect, it } from "vitest";
import { CpuBackend, loadModel } from "../../src/index.js";
import { batchGradients } from "../../src/train/gradients.js";
import { GradAccumulator, modelTrainableParams, paramSet } from "../../src/train/trainable.js";
import { goldenBackends, reportWebGpuSkip } from "../helpers/backends.js";
import { expectRelClose, Golden, hasShared, MODELS, type SharedModel } from "../helpers/golden.js";

reportWebGpuSkip("model backward goldens");

describe.runIf(hasShared())("model backward vs PyTorch (lmgrad)", () => {
  for (const be of [new CpuBackend({ tier: "reference" }), ...goldenBackends()]) {
    for (const name of ["stories260K", "llama-en-26m"] as SharedModel[]) {
      it(`${name} on ${be.name} (${be.describe()}): the loss and every lmgrad.* parameter gradient`, async () => {
        const golden = new Golden(name);
        const { model } = loadModel(MODELS[name], be);
        const ids = golden.i32("input_ids");
        const [B, T] = [2, ids.length / 2];
        const params = modelTrainableParams(model, ["all"]);
        const acc = new GradAccumulator(be);
        const r = await batchGradients(model, { ids, labels: ids, B, T }, { kind: "ce" }, paramSet(params), acc, {
          chunk: 7,
        });
        expect(Math.abs(r.loss - golden.meta.lm_loss) / golden.meta.lm_loss).toBeLessThan(1e-5);
        let checked = 0;
        for (const p of params) {
          const key = `lmgrad.${p.name}`;
          if (!golden.names().includes(key)) continue;
          const ref = golden.f32(key);
          const g = acc.get(p.tensor)!;
          expect(g.shape, key).toEqual(ref.shape);
          expectRelClose(key, await be.read(g), ref.data, 1e-4);
          checked++;
        }
        const expected = golden.names().filter((n) => n.startsWith("lmgrad.")).length;
        expect(checked).toBe(expected);
        // stories260K: the embedding (input and tied head sides), 5 × 9 layer tensors, the final norm
        expect(checked).toBeGreaterThanOrEqual(name === "stories260K" ? 47 : 3);
        acc.dispose();
      });
    }
  }

  it("recomputing each layer's activations gives the gradients of keeping them (stories260K, CPU)", async () => {
    const be = goldenBackends()[0];
    const golden = new Golden("stories260K");
    const { model } = loadModel(MODELS.stories260K, be);
    const ids = golden.i32("input_ids");
    const params = modelTrainableParams(model, ["all"]);
    const grads = async (keepActivations: boolean) => {
      const acc = new GradAccumulator(be);
      await batchGradients(model, { ids, labels: ids, B: 2, T: 32 }, { kind: "ce" }, paramSet(params), acc, {
        keepActivations,
      });
      const out = await Promise.all(params.map(async (p) => Array.from(await be.read(acc.get(p.tensor)!))));
      acc.dispose();
      return out;
    };
    expect(await grads(false)).toEqual(await grads(true));
  });
});

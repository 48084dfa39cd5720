// Layer-0 backward against the PyTorch goldens: loss = mean((layer0(x) − target)²), d loss / d x and d loss / d
// every layer-0 parameter that the fixture holds (stories260K: all; llama-en-26m: a subset), to the shared
// README's tolerance max |Δ| / max |ref| ≤ 1e-4.

import { describe, expect, it } from "vitest";
import { decoderLayerBackward, decoderLayerForward, LAYER_LINEARS, loadModel } from "../../src/index.js";
import { goldenBackends, reportWebGpuSkip } from "../helpers/backends.js";
import { expectRelClose, Golden, hasShared, MODELS, type SharedModel } from "../helpers/golden.js";

const MODELS_UNDER_TEST: SharedModel[] = ["stories260K", "llama-en-26m"];

reportWebGpuSkip("backward goldens");

describe.runIf(hasShared())("decoder layer 0 backward vs PyTorch", () => {
  for (const be of goldenBackends()) {
    for (const name of MODELS_UNDER_TEST) {
      it(`${name} on ${be.name}: block0 loss, grad x and parameter grads`, async () => {
        const golden = new Golden(name);
        const { config, model } = loadModel(MODELS[name], be);
        const layer = model.weights.layers[0];
        const x = golden.f32("block0.x");
        const target = golden.f32("block0.target");
        const T = x.shape[1];
        const { cos, sin } = model.ropeFor(T);
        const ctx = { cos, sin, past: 0 };
        const xt = be.upload(x.data, x.shape);
        const { y, saved } = decoderLayerForward(be, config, layer, xt, ctx, true);
        const { loss, grad } = be.mse(y, be.upload(target.data, target.shape));
        const lossValue = (await be.read(loss))[0];
        expect(Math.abs(lossValue - golden.meta.block0_loss) / golden.meta.block0_loss).toBeLessThan(1e-5);
        const g = decoderLayerBackward(be, config, layer, saved!, grad, ctx);

        const checked: string[] = [];
        const compare = async (param: string, t: { shape: readonly number[] }, data: Float32Array) => {
          const key = `block0.grad.${param}`;
          if (!golden.names().includes(key)) return;
          const ref = golden.f32(key);
          expect(t.shape).toEqual(ref.shape);
          expectRelClose(key, data, ref.data, 1e-4);
          checked.push(param);
        };
        await compare("x", g.dx, await be.read(g.dx));
        await compare("input_layernorm.weight", g.inputLayernorm!, await be.read(g.inputLayernorm!));
        await compare(
          "post_attention_layernorm.weight",
          g.postAttentionLayernorm!,
          await be.read(g.postAttentionLayernorm!),
        );
        for (const [module, key] of LAYER_LINEARS) {
          const w = g.linears[key].weight!;
          await compare(`${module}.weight`, w, await be.read(w));
        }
        const expected = golden.names().filter((n) => n.startsWith("block0.grad.")).length;
        expect(checked.length).toBe(expected);
        expect(checked.length).toBeGreaterThanOrEqual(name === "stories260K" ? 10 : 5);
      });
    }
  }
});

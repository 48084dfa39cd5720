// The model is built from the config alone: random checkpoints with shapes the shared models never show agree
// with an independent float64 forward, and incremental decoding through the KV cache equals the full forward.

import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { CpuBackend, loadModel, ModelError, Rng } from "../../src/index.js";
import { expectClose } from "../helpers/golden.js";
import { naiveForward } from "../helpers/naive_llama.js";
import { type SyntheticSpec, writeSyntheticModel } from "../helpers/synthetic.js";
import { tmpDir } from "../helpers/tmp.js";

const CASES: [string, SyntheticSpec][] = [
  ["llama MHA (GQA ratio 1), untied", { heads: 4, kvHeads: 4 }],
  ["llama GQA ratio 4, tied", { heads: 8, kvHeads: 2, hidden: 32, tied: true }],
  ["llama MQA (1 KV head), head_dim ≠ hidden/heads", { heads: 6, kvHeads: 1, hidden: 24, headDim: 6 }],
  ["llama attention_bias + mlp_bias", { attentionBias: true, mlpBias: true }],
  ["qwen2 q/k/v biases, GQA ratio 3", { architecture: "Qwen2ForCausalLM", heads: 6, kvHeads: 2, hidden: 36 }],
  ["mistral sliding window 5", { architecture: "MistralForCausalLM", slidingWindow: 5 }],
  ["bf16 storage", { dtype: "BF16", seed: 3 }],
  ["f16 storage", { dtype: "F16", seed: 4 }],
];

function randomIds(n: number, vocab: number, seed: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => rng.int(vocab));
}

describe.each(CASES)("synthetic %s", (_name, spec) => {
  const m = writeSyntheticModel(path.join(tmpDir(), "model"), spec);
  const cfg = m.config as Record<string, number & boolean & null>;
  const naiveCfg = {
    hidden: cfg.hidden_size,
    layers: cfg.num_hidden_layers,
    heads: cfg.num_attention_heads,
    kvHeads: cfg.num_key_value_heads,
    headDim: cfg.head_dim,
    vocab: cfg.vocab_size,
    eps: cfg.rms_norm_eps,
    theta: cfg.rope_theta,
    tied: cfg.tie_word_embeddings,
    slidingWindow: (m.config.sliding_window as number | null | undefined) ?? null,
  };

  it("batched forward matches the float64 reference", async () => {
    const be = new CpuBackend();
    const { model } = loadModel(m.dir, be);
    const T = 11;
    const rows = [randomIds(T, naiveCfg.vocab, 1), randomIds(T, naiveCfg.vocab, 2)];
    const { logits } = model.forward(Int32Array.from(rows.flat()), 2, T);
    const got = await be.read(logits);
    const want = rows.flatMap((ids) => naiveForward(m.tensors, naiveCfg, ids).flat());
    expectClose("logits", got, want, 2e-4);
  });

  it("prefill + token-by-token decoding with the KV cache equals the full forward", async () => {
    const be = new CpuBackend();
    const { model } = loadModel(m.dir, be);
    const ids = randomIds(9, naiveCfg.vocab, 5);
    const full = await be.read(model.forward(Int32Array.from(ids), 1, ids.length).logits);
    const cache = model.createCache(1, ids.length);
    const V = naiveCfg.vocab;
    const prefill = await be.read(model.forward(Int32Array.from(ids.slice(0, 4)), 1, 4, { cache }).logits);
    expectClose("prefill", prefill, full.subarray(0, 4 * V), 1e-5);
    for (let t = 4; t < ids.length; t++) {
      const step = await be.read(model.forward(Int32Array.of(ids[t]), 1, 1, { cache, lastOnly: true }).logits);
      // the full forward's 9 rows take the fast tier's f32-accumulating kernel, single decode rows the f64 loops
      expectClose(`decode step ${t}`, step, full.subarray(t * V, (t + 1) * V), 1e-4);
    }
    expect(cache.length).toBe(ids.length);
    expect(() => model.forward(Int32Array.of(0), 1, 1, { cache })).toThrow(ModelError);
  });
});

describe("checkpoints that do not match their config", () => {
  it("a missing tensor is named", () => {
    const m = writeSyntheticModel(path.join(tmpDir(), "m"), { extraConfig: { num_hidden_layers: 3 } });
    expect(() => loadModel(m.dir, new CpuBackend())).toThrow(/no tensor "model.layers.2.input_layernorm.weight"/);
  });
  it("a wrong shape is named", () => {
    const m = writeSyntheticModel(path.join(tmpDir(), "m"), { extraConfig: { intermediate_size: 41 } });
    expect(() => loadModel(m.dir, new CpuBackend())).toThrow(
      /"model.layers.0.mlp.gate_proj.weight" is \[40, 24\], config implies \[41, 24\]/,
    );
  });
});

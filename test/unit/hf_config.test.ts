// config.json parsing: the knobs of Llama/Mistral/Qwen2 configs old and new, and typed errors naming the field.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, parseModelConfig, readModelConfig, ropeInvFreq, UnsupportedError } from "../../src/index.js";
import { MODELS } from "../helpers/golden.js";
import { tmpDir } from "../helpers/tmp.js";

const base = {
  architectures: ["LlamaForCausalLM"],
  vocab_size: 100,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 8,
};

describe("parseModelConfig", () => {
  it("reads both shared models", () => {
    const s = readModelConfig(MODELS.stories260K);
    expect([s.headDim, s.numKeyValueHeads, s.tieWordEmbeddings, s.ropeTheta]).toEqual([8, 4, true, 10000]);
    const l = readModelConfig(MODELS["llama-en-26m"]);
    expect([l.headDim, l.numKeyValueHeads, l.tieWordEmbeddings, l.vocabSize]).toEqual([64, 4, false, 8192]);
  });

  it("defaults: MHA when num_key_value_heads is absent, head_dim = hidden/heads", () => {
    const c = parseModelConfig(base);
    expect(c.numKeyValueHeads).toBe(8);
    expect(c.headDim).toBe(8);
    expect(c.ropeScaling).toEqual({ type: "default" });
  });

  it("rope_theta at top level, or inside rope_parameters (transformers ≥ 5)", () => {
    expect(parseModelConfig({ ...base, rope_theta: 500000 }).ropeTheta).toBe(500000);
    expect(parseModelConfig({ ...base, rope_parameters: { rope_type: "default", rope_theta: 1e6 } }).ropeTheta).toBe(
      1e6,
    );
  });

  it("rope_scaling llama3 (Llama 3.1/3.2) and linear", () => {
    const llama3 = {
      factor: 32,
      high_freq_factor: 4,
      low_freq_factor: 1,
      original_max_position_embeddings: 8192,
      rope_type: "llama3",
    };
    const c = parseModelConfig({ ...base, rope_theta: 500000, rope_scaling: llama3 });
    expect(c.ropeScaling).toEqual({
      type: "llama3",
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    });
    const lin = parseModelConfig({ ...base, rope_scaling: { type: "linear", factor: 4 } });
    expect(lin.ropeScaling).toEqual({ type: "linear", factor: 4 });
  });

  it("llama3 scaling keeps high frequencies, divides low ones by factor, blends the middle", () => {
    const scaling = {
      type: "llama3" as const,
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    };
    const plain = ropeInvFreq(128, 500000, { type: "default" });
    const scaled = ropeInvFreq(128, 500000, scaling);
    for (let i = 0; i < plain.length; i++) {
      const wavelen = (2 * Math.PI) / plain[i];
      if (wavelen < 8192 / 4) expect(scaled[i]).toBe(plain[i]);
      else if (wavelen > 8192) expect(scaled[i]).toBeCloseTo(plain[i] / 8, 12);
      else {
        expect(scaled[i]).toBeLessThanOrEqual(plain[i]);
        expect(scaled[i]).toBeGreaterThanOrEqual(plain[i] / 8);
      }
    }
    const lin = ropeInvFreq(16, 10000, { type: "linear", factor: 4 });
    const p16 = ropeInvFreq(16, 10000, { type: "default" });
    for (let i = 0; i < 8; i++) expect(lin[i]).toBeCloseTo(p16[i] / 4, 7);
  });

  it("Qwen2 has q/k/v biases but no o_proj bias; Llama attention_bias covers all four", () => {
    const q = parseModelConfig({ ...base, architectures: ["Qwen2ForCausalLM"] });
    expect([q.qkvBias, q.oBias]).toEqual([true, false]);
    const l = parseModelConfig({ ...base, attention_bias: true });
    expect([l.qkvBias, l.oBias]).toEqual([true, true]);
  });

  it("Mistral sliding_window is honoured", () => {
    const m = parseModelConfig({ ...base, architectures: ["MistralForCausalLM"], sliding_window: 4096 });
    expect(m.slidingWindow).toBe(4096);
  });

  it("unsupported architecture, rope type, activation → UnsupportedError naming it", () => {
    expect(() => parseModelConfig({ ...base, architectures: ["GPT2LMHeadModel"] })).toThrow(UnsupportedError);
    expect(() => parseModelConfig({ ...base, architectures: ["GPT2LMHeadModel"] })).toThrow(/GPT2LMHeadModel/);
    expect(() => parseModelConfig({ ...base, rope_scaling: { type: "yarn", factor: 4 } })).toThrow(
      /rope_scaling.*yarn/,
    );
    expect(() => parseModelConfig({ ...base, hidden_act: "gelu" })).toThrow(/hidden_act/);
    expect(() =>
      parseModelConfig({
        ...base,
        architectures: ["Qwen2ForCausalLM"],
        use_sliding_window: true,
        sliding_window: 4096,
      }),
    ).toThrow(/use_sliding_window/);
  });

  it("bad or missing fields → ConfigError naming the field", () => {
    expect(() => parseModelConfig({ ...base, hidden_size: undefined })).toThrow(/"hidden_size" is missing/);
    expect(() => parseModelConfig({ ...base, hidden_size: "64" })).toThrow(/"hidden_size" must be an integer/);
    expect(() => parseModelConfig({ ...base, num_key_value_heads: 3 })).toThrow(/num_key_value_heads/);
    expect(() => parseModelConfig({ ...base, rope_scaling: { type: "linear" } })).toThrow(/"factor" is missing/);
    expect(() => parseModelConfig([])).toThrow(ConfigError);
  });

  it("missing or garbled config.json → ConfigError", () => {
    const dir = tmpDir();
    expect(() => readModelConfig(dir)).toThrow(/config.json: not found/);
    fs.writeFileSync(path.join(dir, "config.json"), "{ nope");
    expect(() => readModelConfig(dir)).toThrow(/not valid JSON/);
  });
});

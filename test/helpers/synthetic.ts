// Random small Llama-family checkpoints written in Hugging Face layout, for shapes the shared models never show
// (Qwen2 biases, GQA ratios 1/4/…, untied heads, head_dim ≠ hidden/heads, sliding windows, f16/bf16 storage).

import * as fs from "node:fs";
import * as path from "node:path";
import { type DType, fromFloat32, Rng, type TensorToWrite, writeSafetensors } from "../../src/index.js";

export interface SyntheticSpec {
  architecture?: "LlamaForCausalLM" | "MistralForCausalLM" | "Qwen2ForCausalLM";
  vocab?: number;
  hidden?: number;
  intermediate?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  headDim?: number;
  tied?: boolean;
  attentionBias?: boolean;
  mlpBias?: boolean;
  slidingWindow?: number | null;
  dtype?: "F32" | "F16" | "BF16";
  seed?: number;
  extraConfig?: Record<string, unknown>;
}

export interface SyntheticModel {
  dir: string;
  config: Record<string, unknown>;
  /** f32 values of every tensor as stored (after f16/bf16 rounding). */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

function roundTo(dtype: "F32" | "F16" | "BF16", x: Float32Array): { bytes: ArrayBufferView; values: Float32Array } {
  if (dtype === "F32") return { bytes: x, values: x };
  const bits = fromFloat32(dtype, x);
  const values = new Float32Array(x.length);
  const u = new Uint32Array(values.buffer);
  if (dtype === "BF16") for (let i = 0; i < x.length; i++) u[i] = bits[i] << 16;
  else {
    for (let i = 0; i < x.length; i++) {
      const h = bits[i];
      const s = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 0x1f;
      const f = h & 0x3ff;
      values[i] = e === 0 ? s * f * 2 ** -24 : s * (1 + f / 1024) * 2 ** (e - 15);
    }
  }
  return { bytes: bits, values };
}

export function writeSyntheticModel(dir: string, spec: SyntheticSpec = {}): SyntheticModel {
  const arch = spec.architecture ?? "LlamaForCausalLM";
  const V = spec.vocab ?? 48;
  const C = spec.hidden ?? 24;
  const I = spec.intermediate ?? 40;
  const L = spec.layers ?? 2;
  const H = spec.heads ?? 4;
  const Hkv = spec.kvHeads ?? 2;
  const D = spec.headDim ?? C / H;
  const dtype = spec.dtype ?? "F32";
  const rng = new Rng(spec.seed ?? 1);
  const qkvBias = arch === "Qwen2ForCausalLM" || (spec.attentionBias ?? false);
  const oBias = arch !== "Qwen2ForCausalLM" && (spec.attentionBias ?? false);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const toWrite: TensorToWrite[] = [];
  const add = (name: string, shape: number[], scale: number, offset = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = offset + scale * rng.normal();
    const { bytes, values } = roundTo(dtype, x);
    tensors.set(name, { shape, data: values });
    toWrite.push({ name, dtype: dtype as DType, shape, data: bytes });
  };
  add("model.embed_tokens.weight", [V, C], 1);
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.input_layernorm.weight`, [C], 0.1, 1);
    add(`${p}.self_attn.q_proj.weight`, [H * D, C], 0.3);
    add(`${p}.self_attn.k_proj.weight`, [Hkv * D, C], 0.3);
    add(`${p}.self_attn.v_proj.weight`, [Hkv * D, C], 0.3);
    add(`${p}.self_attn.o_proj.weight`, [C, H * D], 0.3);
    if (qkvBias) {
      add(`${p}.self_attn.q_proj.bias`, [H * D], 0.2);
      add(`${p}.self_attn.k_proj.bias`, [Hkv * D], 0.2);
      add(`${p}.self_attn.v_proj.bias`, [Hkv * D], 0.2);
    }
    if (oBias) add(`${p}.self_attn.o_proj.bias`, [C], 0.2);
    add(`${p}.post_attention_layernorm.weight`, [C], 0.1, 1);
    add(`${p}.mlp.gate_proj.weight`, [I, C], 0.3);
    add(`${p}.mlp.up_proj.weight`, [I, C], 0.3);
    add(`${p}.mlp.down_proj.weight`, [C, I], 0.3);
    if (spec.mlpBias) {
      add(`${p}.mlp.gate_proj.bias`, [I], 0.2);
      add(`${p}.mlp.up_proj.bias`, [I], 0.2);
      add(`${p}.mlp.down_proj.bias`, [C], 0.2);
    }
  }
  add("model.norm.weight", [C], 0.1, 1);
  if (!spec.tied) add("lm_head.weight", [V, C], 0.3);
  const config: Record<string, unknown> = {
    architectures: [arch],
    model_type: arch === "Qwen2ForCausalLM" ? "qwen2" : arch === "MistralForCausalLM" ? "mistral" : "llama",
    vocab_size: V,
    hidden_size: C,
    intermediate_size: I,
    num_hidden_layers: L,
    num_attention_heads: H,
    num_key_value_heads: Hkv,
    head_dim: D,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    max_position_embeddings: 128,
    tie_word_embeddings: spec.tied ?? false,
    hidden_act: "silu",
    bos_token_id: 1,
    eos_token_id: 2,
    ...(arch === "LlamaForCausalLM"
      ? { attention_bias: spec.attentionBias ?? false, mlp_bias: spec.mlpBias ?? false }
      : {}),
    ...(arch === "MistralForCausalLM" ? { sliding_window: spec.slidingWindow ?? null } : {}),
    ...spec.extraConfig,
  };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config, null, 2));
  writeSafetensors(path.join(dir, "model.safetensors"), toWrite);
  return { dir, config, tensors };
}

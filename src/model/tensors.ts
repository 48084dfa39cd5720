// Which tensors a checkpoint must hold for its config, with their shapes and the dtypes each role allows
// (docs/format.md): float weights F32/F16/BF16/F64; ClusComp codes U16 and codebooks F16/BF16; RTN packed codes
// U8 and scales/zeros F16. `checkCheckpoint` compares a checkpoint's headers with that list before anything is
// loaded: a missing tensor, a wrong shape or dtype, and a tensor the config does not use are errors naming the
// tensor (unused ones can be allowed, with a warning, for checkpoints that carry extras on purpose). Buffers that
// Hugging Face checkpoints are known to carry and transformers ignores (rotary `inv_freq`, a tied `lm_head`) are
// not counted as unused.

import { unpackBits } from "../compress/rtn.js";
import { ConfigError, ModelError } from "../errors.js";
import {
  type CodebookModule,
  channelScaleName,
  moduleCodeBits,
  parseQuantizationConfig,
  type QuantizationConfig,
} from "../io/cluscomp_format.js";
import type { ModelConfig } from "../io/hf_config.js";
import type { TensorSource } from "../io/safetensors.js";
import type { DType } from "../tensor/dtype.js";
import { formatShape, shapeEquals } from "../tensor/shape.js";
import { ropeInvFreq } from "./rope.js";

export const FLOAT_WEIGHT_DTYPES: readonly DType[] = ["F32", "F16", "BF16", "F64"];
export const CODEBOOK_DTYPES: readonly DType[] = ["F16", "BF16"];

export interface ExpectedTensor {
  shape: readonly number[];
  dtypes: readonly DType[];
  /** What the tensor is, for messages: "weight", "ClusComp codes", … */
  role: string;
}

/** Tensors a checkpoint may carry that transformers ignores. */
export function isIgnoredBuffer(name: string, cfg: ModelConfig): boolean {
  return /\.rotary_emb\.inv_freq$/.test(name) || (cfg.tieWordEmbeddings && name === "lm_head.weight");
}

/** Every linear of the model: its module name and [out, in] shape; whether it has a bias. */
export function modelLinears(cfg: ModelConfig): { module: string; out: number; in: number; bias: boolean }[] {
  const C = cfg.hiddenSize;
  const q = cfg.numAttentionHeads * cfg.headDim;
  const kv = cfg.numKeyValueHeads * cfg.headDim;
  const I = cfg.intermediateSize;
  const out: { module: string; out: number; in: number; bias: boolean }[] = [];
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const p = `model.layers.${l}`;
    out.push(
      { module: `${p}.self_attn.q_proj`, out: q, in: C, bias: cfg.qkvBias },
      { module: `${p}.self_attn.k_proj`, out: kv, in: C, bias: cfg.qkvBias },
      { module: `${p}.self_attn.v_proj`, out: kv, in: C, bias: cfg.qkvBias },
      { module: `${p}.self_attn.o_proj`, out: C, in: q, bias: cfg.oBias },
      { module: `${p}.mlp.gate_proj`, out: I, in: C, bias: cfg.mlpBias },
      { module: `${p}.mlp.up_proj`, out: I, in: C, bias: cfg.mlpBias },
      { module: `${p}.mlp.down_proj`, out: C, in: I, bias: cfg.mlpBias },
    );
  }
  if (!cfg.tieWordEmbeddings) out.push({ module: "lm_head", out: cfg.vocabSize, in: C, bias: false });
  return out;
}

/** The tensors the config (and its quantization_config) needs, by name. */
export function expectedTensors(
  cfg: ModelConfig,
  quant = parseQuantizationConfig(cfg.raw),
): Map<string, ExpectedTensor> {
  const C = cfg.hiddenSize;
  const want = new Map<string, ExpectedTensor>();
  const float = (name: string, shape: number[], role = "weight") =>
    want.set(name, { shape, dtypes: FLOAT_WEIGHT_DTYPES, role });
  float("model.embed_tokens.weight", [cfg.vocabSize, C], "embedding");
  float("model.norm.weight", [C], "norm weight");
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    float(`model.layers.${l}.input_layernorm.weight`, [C], "norm weight");
    float(`model.layers.${l}.post_attention_layernorm.weight`, [C], "norm weight");
  }
  const linears = modelLinears(cfg);
  const known = new Set(linears.map((x) => x.module));
  if (quant) {
    for (const module of Object.keys(quant.modules)) {
      if (!known.has(module)) {
        throw new ModelError(
          "model.quant_module",
          `quantization_config.modules names "${module}", which this config does not have (${cfg.numHiddenLayers} layers${cfg.tieWordEmbeddings ? ", tied lm_head" : ""})`,
        );
      }
    }
  }
  for (const x of linears) {
    if (x.bias) float(`${x.module}.bias`, [x.out], "bias");
    const m = quant?.modules[x.module];
    if (!m) {
      float(`${x.module}.weight`, [x.out, x.in]);
    } else if (m.method === "cluscomp") {
      want.set(`${x.module}.codes`, codesTensor(m, x.in, Math.ceil(x.out / m.d)));
      const prev = want.get(m.codebook);
      const shape = [m.m, m.K, m.d];
      if (prev && !shapeEquals(prev.shape, shape)) {
        throw new ModelError(
          "model.quant_module",
          `quantization_config: codebook "${m.codebook}" is ${formatShape(prev.shape)} for one module and ${formatShape(shape)} for ${x.module}`,
        );
      }
      want.set(m.codebook, { shape, dtypes: CODEBOOK_DTYPES, role: "codebook" });
      if (m.channel_scale) want.set(...channelScaleTensor(x.module, x.out));
      if (m.rank !== undefined) {
        for (const [name, e] of lowRankTensors(x.module, m.rank, x.out, x.in)) want.set(name, e);
      }
      if (m.salient !== undefined) {
        for (const [name, e] of salientTensors(x.module, m.salient, x.out)) want.set(name, e);
      }
    } else {
      const ng = Math.ceil(x.in / m.group_size);
      want.set(`${x.module}.qweight`, {
        shape: [Math.ceil((x.out * x.in * m.bits) / 8)],
        dtypes: ["U8"],
        role: "RTN codes",
      });
      want.set(`${x.module}.scales`, { shape: [x.out, ng], dtypes: ["F16"], role: "RTN scales" });
      want.set(`${x.module}.zeros`, { shape: [x.out, ng], dtypes: ["F16"], role: "RTN zeros" });
    }
  }
  return want;
}

/**
 * Config values that parse but cannot give finite results: a rope_theta so small or large (1e-300) that the
 * rotary frequencies are infinite or zero.
 */
export function checkConfigMath(cfg: ModelConfig): void {
  const inv = ropeInvFreq(cfg.headDim, cfg.ropeTheta, cfg.ropeScaling);
  if (!inv.every((x) => Number.isFinite(x) && x > 0)) {
    throw new ConfigError(
      "config.bad_field",
      `config.json: "rope_theta" = ${cfg.ropeTheta} gives rotary frequencies that are not finite positive numbers (typical values are 1e4 … 1e7)`,
    );
  }
}

export interface CheckpointCheck {
  /** Tensors present that the config does not use (and that are not known ignorable buffers). */
  unused: string[];
}

/**
 * Checks a checkpoint's headers against its config: every needed tensor present with its shape and an allowed
 * dtype; tensors the config does not use are an error unless `allowUnused` (then they are returned to warn about).
 */
export function checkCheckpoint(
  cfg: ModelConfig,
  source: TensorSource,
  opts: { allowUnused?: boolean; quant?: QuantizationConfig } = {},
): CheckpointCheck {
  checkConfigMath(cfg);
  const want = expectedTensors(cfg, opts.quant ?? parseQuantizationConfig(cfg.raw));
  for (const [name, e] of want) {
    const info = source.info(name);
    if (!info) {
      throw new ModelError(
        "model.missing_tensor",
        `checkpoint has no tensor "${name}" (config expects ${formatShape(e.shape)})`,
      );
    }
    if (!shapeEquals(info.shape, e.shape)) {
      throw new ModelError(
        "model.tensor_shape",
        `tensor "${name}" is ${formatShape(info.shape)}, config implies ${formatShape(e.shape)}`,
      );
    }
    if (!e.dtypes.includes(info.dtype)) {
      throw new ModelError(
        "model.tensor_dtype",
        `tensor "${name}" is ${info.dtype}; a ${e.role} must be ${e.dtypes.join(" or ")} (in ${info.file})`,
      );
    }
  }
  const unused = source
    .names()
    .filter((n) => !want.has(n) && !isIgnoredBuffer(n, cfg))
    .sort();
  if (unused.length > 0 && !opts.allowUnused) {
    const layers = unused.map((n) => /^model\.layers\.(\d+)\./.exec(n)?.[1]).filter((x) => x !== undefined);
    const hint =
      layers.length > 0 && Math.max(...layers.map(Number)) >= cfg.numHiddenLayers
        ? ` (layers up to ${Math.max(...layers.map(Number))}, but config.json says num_hidden_layers = ${cfg.numHiddenLayers})`
        : "";
    throw new ModelError(
      "model.unused_tensors",
      `the checkpoint has ${unused.length} tensor${unused.length > 1 ? "s" : ""} its config does not use${hint}: ${unused.slice(0, 5).join(", ")}${unused.length > 5 ? ", …" : ""}; fix config.json, or pass --allow-unused-tensors to load it anyway`,
    );
  }
  return { unused };
}

/** The channel scales of a codebook module: `<module>.channel_scale` [out], F16 or BF16. */
export function channelScaleTensor(module: string, out: number): [string, ExpectedTensor] {
  return [channelScaleName(module), { shape: [out], dtypes: CODEBOOK_DTYPES, role: "channel scale" }];
}

/** ReALLM's low-rank factors of a module: `<module>.lowrank_A` [r, in] and `lowrank_B` [out, r], F16 or BF16. */
export function lowRankTensors(module: string, r: number, out: number, inp: number): [string, ExpectedTensor][] {
  return [
    [`${module}.lowrank_A`, { shape: [r, inp], dtypes: CODEBOOK_DTYPES, role: "ReALLM low-rank factor" }],
    [`${module}.lowrank_B`, { shape: [out, r], dtypes: CODEBOOK_DTYPES, role: "ReALLM low-rank factor" }],
  ];
}

/** LLM-Codebook's salient channels: `<module>.salient_index` I32 [k] and `salient_weight` F16|BF16 [out, k]. */
export function salientTensors(module: string, k: number, out: number): [string, ExpectedTensor][] {
  return [
    [`${module}.salient_index`, { shape: [k], dtypes: ["I32"], role: "LLM-Codebook salient channel index" }],
    [`${module}.salient_weight`, { shape: [out, k], dtypes: CODEBOOK_DTYPES, role: "LLM-Codebook salient channels" }],
  ];
}

/** Salient channel indices: distinct, ascending, each < in; otherwise an error naming the tensor. */
export function readSalientIndex(source: TensorSource, module: string, k: number, inp: number): Int32Array {
  const name = `${module}.salient_index`;
  const idx = Int32Array.from(source.readRaw(name) as Int32Array);
  for (let c = 0; c < k; c++) {
    if (!(idx[c] >= 0 && idx[c] < inp) || (c > 0 && idx[c] <= idx[c - 1])) {
      throw new ModelError(
        "model.salient_index",
        `tensor "${name}" holds ${idx[c]} at [${c}]; salient channels must be distinct input channels in 0..${inp - 1}, ascending`,
      );
    }
  }
  return idx;
}

/** The codes tensor of a ClusComp module: U16 [in, nb], or with code_bits b < 16 a U8 bit stream of in·nb·b bits. */
export function codesTensor(m: CodebookModule, inp: number, nb: number): ExpectedTensor {
  const b = moduleCodeBits(m);
  return b === 16
    ? { shape: [inp, nb], dtypes: ["U16"], role: "ClusComp codes" }
    : { shape: [Math.ceil((inp * nb * b) / 8)], dtypes: ["U8"], role: `ClusComp ${b}-bit packed codes` };
}

/**
 * The codes [in, nb] of a ClusComp module as int32, unpacked when the module stores them in fewer than 16 bits;
 * a code ≥ K is an error naming the tensor and position.
 */
export function readCodebookCodes(
  source: TensorSource,
  module: string,
  m: CodebookModule,
  inp: number,
  nb: number,
  where = "",
): Int32Array {
  const name = `${module}.codes`;
  const b = moduleCodeBits(m);
  const raw = source.readRaw(name);
  const codes = b === 16 ? Int32Array.from(raw as Uint16Array) : unpackBits(raw as Uint8Array, inp * nb, b);
  for (let i = 0; i < codes.length; i++) {
    if (codes[i] >= m.K) {
      throw new ModelError(
        "model.code_range",
        `tensor "${name}" holds code ${codes[i]} at [${Math.floor(i / nb)}, ${i % nb}], but its codebook ${m.codebook} has K = ${m.K} centroids${where}`,
      );
    }
  }
  return codes;
}

// config.json of a Hugging Face causal LM (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) parsed
// into a typed ModelConfig. Every knob that changes the maths is either honoured or refused with a typed error
// naming the field; nothing is silently ignored.

import * as path from "node:path";
import { ConfigError, UnsupportedError } from "../errors.js";
import { JSON_LIMITS, readJsonFile } from "./files.js";

export type Architecture = "LlamaForCausalLM" | "MistralForCausalLM" | "Qwen2ForCausalLM";
export const ARCHITECTURES: readonly Architecture[] = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"];

export type RopeScaling =
  | { type: "default" }
  | { type: "linear"; factor: number }
  | {
      type: "llama3";
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

export interface ModelConfig {
  architecture: Architecture;
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (Qwen2 always; Llama with attention_bias). */
  qkvBias: boolean;
  /** o_proj carries a bias (Llama with attention_bias). */
  oBias: boolean;
  mlpBias: boolean;
  /** Sliding-window attention span in tokens, or null for full causal attention. */
  slidingWindow: number | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** The parsed JSON object, kept to write it back unchanged (e.g. into a compressed checkpoint). */
  raw: Record<string, unknown>;
}

type Json = Record<string, unknown>;

function field(file: string, key: string, msg: string): never {
  throw new ConfigError("config.bad_field", `${file}: "${key}" ${msg}`);
}

/**
 * Upper bounds far above any real model (the largest public ones: ~200 layers, hidden 25,600, vocab 262k), so a
 * corrupt value fails here instead of making a loop or an allocation of its size.
 */
export const CONFIG_LIMITS = {
  hidden_size: 2 ** 20,
  intermediate_size: 2 ** 22,
  num_hidden_layers: 4096,
  num_attention_heads: 2 ** 14,
  num_key_value_heads: 2 ** 14,
  head_dim: 2 ** 14,
  vocab_size: 2 ** 24,
  max_position_embeddings: 2 ** 30,
} as const;

function int(file: string, o: Json, key: string, opts: { min?: number; optional?: number } = {}): number {
  const v = o[key];
  if (v === undefined || v === null) {
    if (opts.optional !== undefined) return opts.optional;
    throw new ConfigError("config.missing_field", `${file}: required field "${key}" is missing`);
  }
  if (typeof v !== "number" || !Number.isSafeInteger(v))
    field(file, key, `must be an integer, got ${JSON.stringify(v)}`);
  if (v < (opts.min ?? 1)) field(file, key, `must be ≥ ${opts.min ?? 1}, got ${v}`);
  const max = (CONFIG_LIMITS as Record<string, number>)[key];
  if (max !== undefined && v > max)
    field(file, key, `= ${v} is beyond any real model (at most ${max}): the config is corrupt`);
  return v;
}

function num(file: string, o: Json, key: string, fallback?: number): number {
  const v = o[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ConfigError("config.missing_field", `${file}: required field "${key}" is missing`);
  }
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) field(file, key, `must be a positive number`);
  return v;
}

function bool(file: string, o: Json, key: string, fallback: boolean): boolean {
  const v = o[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") field(file, key, `must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function tokenIds(file: string, o: Json, key: string): number[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  const arr = Array.isArray(v) ? v : [v];
  for (const x of arr) if (!Number.isSafeInteger(x) || x < 0) field(file, key, "must be a token id or list of ids");
  return arr as number[];
}

/** Reads and parses `<dir>/config.json` (a regular file of at most 16 MiB). */
export function readModelConfig(dir: string): ModelConfig {
  const file = path.join(dir, "config.json");
  const json = readJsonFile(file, JSON_LIMITS.config, (code, msg) => {
    if (code === "missing") {
      throw new ConfigError(
        "config.missing",
        `${file}: not found; a model directory needs config.json (Hugging Face layout)`,
      );
    }
    throw new ConfigError(`config.${code}`, msg);
  });
  return parseModelConfig(json, file);
}

export function parseModelConfig(json: unknown, file = "config.json"): ModelConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError("config.bad_json", `${file}: must be a JSON object`);
  }
  const o = json as Json;
  const archs = o.architectures;
  if (!Array.isArray(archs) || archs.length !== 1 || typeof archs[0] !== "string") {
    field(file, "architectures", `must list exactly one architecture, got ${JSON.stringify(archs)}`);
  }
  const arch = archs[0] as string;
  if (!(ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new UnsupportedError(
      "config.unsupported_architecture",
      `${file}: architecture "${arch}" is not supported (supported: ${ARCHITECTURES.join(", ")})`,
    );
  }
  const architecture = arch as Architecture;
  const act = o.hidden_act ?? "silu";
  if (act !== "silu") {
    throw new UnsupportedError("config.unsupported", `${file}: "hidden_act" = ${JSON.stringify(act)}; only "silu"`);
  }
  if (o.partial_rotary_factor !== undefined && o.partial_rotary_factor !== 1) {
    throw new UnsupportedError("config.unsupported", `${file}: "partial_rotary_factor" other than 1 is not supported`);
  }

  const hiddenSize = int(file, o, "hidden_size");
  const numAttentionHeads = int(file, o, "num_attention_heads");
  const numKeyValueHeads = int(file, o, "num_key_value_heads", { optional: numAttentionHeads });
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    field(file, "num_key_value_heads", `(${numKeyValueHeads}) must divide num_attention_heads (${numAttentionHeads})`);
  }
  const defaultHeadDim = hiddenSize / numAttentionHeads;
  const headDim = int(file, o, "head_dim", { optional: Number.isInteger(defaultHeadDim) ? defaultHeadDim : -1 });
  if (headDim < 1) field(file, "head_dim", "is missing and hidden_size is not divisible by num_attention_heads");
  if (headDim % 2 !== 0) field(file, "head_dim", `must be even for rotary embeddings, got ${headDim}`);

  const { ropeTheta, ropeScaling } = parseRope(file, o);

  const attentionBias = bool(file, o, "attention_bias", false);
  const isQwen2 = architecture === "Qwen2ForCausalLM";
  const slidingWindow = parseSlidingWindow(file, o, architecture);

  return {
    architecture,
    modelType: typeof o.model_type === "string" ? o.model_type : "",
    vocabSize: int(file, o, "vocab_size"),
    hiddenSize,
    intermediateSize: int(file, o, "intermediate_size"),
    numHiddenLayers: int(file, o, "num_hidden_layers"),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    rmsNormEps: num(file, o, "rms_norm_eps", 1e-6),
    ropeTheta,
    ropeScaling,
    maxPositionEmbeddings: int(file, o, "max_position_embeddings", { optional: 2048, min: 2 }),
    tieWordEmbeddings: bool(file, o, "tie_word_embeddings", false),
    qkvBias: isQwen2 || attentionBias,
    oBias: !isQwen2 && attentionBias,
    mlpBias: bool(file, o, "mlp_bias", false),
    slidingWindow,
    bosTokenId: tokenIds(file, o, "bos_token_id")[0] ?? null,
    eosTokenIds: tokenIds(file, o, "eos_token_id"),
    raw: o,
  };
}

function parseRope(file: string, o: Json): { ropeTheta: number; ropeScaling: RopeScaling } {
  // transformers ≥ 5 writes `rope_parameters` {rope_type, rope_theta, …}; older configs have top-level
  // `rope_theta` and an optional `rope_scaling` {type|rope_type, factor, …}.
  const params = o.rope_parameters;
  let scalingKey = "rope_scaling";
  let scaling: unknown = o.rope_scaling;
  let ropeTheta = num(file, o, "rope_theta", 10000);
  if (params !== undefined && params !== null) {
    if (typeof params !== "object" || Array.isArray(params)) field(file, "rope_parameters", "must be an object");
    const p = params as Json;
    ropeTheta = num(file, p, "rope_theta", ropeTheta);
    scaling = p;
    scalingKey = "rope_parameters";
  }
  if (scaling === undefined || scaling === null) return { ropeTheta, ropeScaling: { type: "default" } };
  if (typeof scaling !== "object" || Array.isArray(scaling)) field(file, scalingKey, "must be an object");
  const s = scaling as Json;
  const type = s.rope_type ?? s.type ?? "default";
  const k = `${scalingKey}`;
  switch (type) {
    case "default":
      return { ropeTheta, ropeScaling: { type: "default" } };
    case "linear":
      return { ropeTheta, ropeScaling: { type: "linear", factor: num(`${file} ${k}`, s, "factor") } };
    case "llama3":
      return {
        ropeTheta,
        ropeScaling: {
          type: "llama3",
          factor: num(`${file} ${k}`, s, "factor"),
          lowFreqFactor: num(`${file} ${k}`, s, "low_freq_factor"),
          highFreqFactor: num(`${file} ${k}`, s, "high_freq_factor"),
          originalMaxPositionEmbeddings: num(`${file} ${k}`, s, "original_max_position_embeddings"),
        },
      };
    default:
      throw new UnsupportedError(
        "config.unsupported_rope",
        `${file}: "${k}" type ${JSON.stringify(type)} is not supported (supported: default, linear, llama3)`,
      );
  }
}

function parseSlidingWindow(file: string, o: Json, arch: Architecture): number | null {
  const sw = o.sliding_window;
  if (sw === undefined || sw === null) return null;
  if (typeof sw !== "number" || !Number.isSafeInteger(sw) || sw < 1)
    field(file, "sliding_window", "must be a positive integer or null");
  if (arch === "MistralForCausalLM") return sw;
  if (arch === "Qwen2ForCausalLM") {
    if (!bool(file, o, "use_sliding_window", false)) return null;
    // Qwen2 applies the window only to layers ≥ max_window_layers; we do not implement per-layer windows.
    throw new UnsupportedError(
      "config.unsupported",
      `${file}: "use_sliding_window": true (per-layer sliding windows) is not supported`,
    );
  }
  // Llama has no sliding window; a stray key would be ignored by transformers too.
  return null;
}

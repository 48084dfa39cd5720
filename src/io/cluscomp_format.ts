// The cluscomp checkpoint format, version 1: a Hugging Face model directory whose config.json carries a
// `quantization_config` and whose safetensors hold, beside the untouched tensors (embeddings, norms, lm_head,
// biases, in their original dtype):
//   method "cluscomp": `<module>.codes` U16 [in, ⌈out/d⌉] — or, when the module entry has code_bits b < 16,
//                      U8 [⌈in·⌈out/d⌉·b/8⌉] (b-bit codes, LSB-first, row-major [in, ⌈out/d⌉]) — and a codebook
//                      F16|BF16 [m, K, d] named by the module entry (`<module>.codebook`, or a shared name such
//                      as `model.layers.3.mlp.codebook`);
//                      with `rank: r` (ReALLM), also `<module>.lowrank_A` F16|BF16 [r, in] and `<module>.lowrank_B`
//                      F16|BF16 [out, r]: W = B·A + the decoded codes (the codebook quantizes the residual);
//                      with `salient: k` (LLM-Codebook), `<module>.salient_index` I32 [k] (distinct input channels,
//                      ascending) and `<module>.salient_weight` F16|BF16 [out, k]: W[:, S] += salient_weight;
//                      with `channel_scale: true`, `<module>.channel_scale` F16|BF16 [out]: the decoded codes'
//                      row o is multiplied by channel_scale[o] (before the low-rank part or salient channels add);
//   method "rtn":      `<module>.qweight` U8 (b-bit codes, LSB-first, row-major [out, in]),
//                      `<module>.scales`, `<module>.zeros` F16 [out, ⌈in/G⌉].
// docs/format.md describes it for users. This file parses and validates it; compress/ writes it.

import { ConfigError, UnsupportedError } from "../errors.js";

export const FORMAT_VERSION = 1;
export const QUANT_METHOD = "cluscomp";

export interface CodebookModule {
  method: "cluscomp";
  d: number;
  K: number;
  m: number;
  codebook: string;
  /** Bits per stored code, ⌈log₂K⌉ ≤ code_bits ≤ 16; absent means 16 (U16 codes). */
  code_bits?: number;
  /** ReALLM: rank of the stored low-rank part B·A added to the decoded weight; absent means none. */
  rank?: number;
  /** LLM-Codebook: input channels stored in fp16 beside the codes (salient_index, salient_weight); absent: none. */
  salient?: number;
  /** Channel scales: `<module>.channel_scale` [out] multiplies each output row of the decoded codes; absent: none. */
  channel_scale?: true;
}

/** The code width of a module (16 when the entry does not say). */
export function moduleCodeBits(m: CodebookModule): number {
  return m.code_bits ?? 16;
}

/** The tensor of a codebook module's channel scales. */
export function channelScaleName(module: string): string {
  return `${module}.channel_scale`;
}

/**
 * The tensors a codebook module stores beside its codes and codebook: channel scales, ReALLM's low-rank factors,
 * LLM-Codebook's salient channels.
 */
export function sideTensorNames(module: string, m: CodebookModule): string[] {
  return [
    ...(m.channel_scale ? [channelScaleName(module)] : []),
    ...(m.rank !== undefined ? [`${module}.lowrank_A`, `${module}.lowrank_B`] : []),
    ...(m.salient !== undefined ? [`${module}.salient_index`, `${module}.salient_weight`] : []),
  ];
}

export interface RtnModule {
  method: "rtn";
  bits: number;
  group_size: number;
}

export type QuantModule = CodebookModule | RtnModule;

export const QUANT_METHODS = ["cluscomp", "reallm", "llm-codebook", "rtn", "gptq"] as const;
export type QuantMethodName = (typeof QUANT_METHODS)[number];

export interface QuantizationConfig {
  quant_method: typeof QUANT_METHOD;
  format_version: number;
  /** The method that made it: cluscomp, reallm, llm-codebook hold codebook modules, rtn and gptq RTN modules. */
  method: QuantMethodName;
  /** Parameter-weighted bits per weight over the compressed modules. */
  bpw: number;
  modules: Record<string, QuantModule>;
  /** Everything else the writer recorded (share mode, seed, iters…), informational. */
  [extra: string]: unknown;
}

function bad(file: string, msg: string): never {
  throw new ConfigError("config.quantization", `${file}: quantization_config ${msg}`);
}

function posInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 1;
}

/** Parses config.json's quantization_config; undefined when the model is not compressed. */
export function parseQuantizationConfig(
  raw: Record<string, unknown>,
  file = "config.json",
): QuantizationConfig | undefined {
  const q = raw.quantization_config;
  if (q === undefined || q === null) return undefined;
  if (typeof q !== "object" || Array.isArray(q)) bad(file, "must be an object");
  const o = q as Record<string, unknown>;
  if (o.quant_method !== QUANT_METHOD) {
    throw new UnsupportedError(
      "config.unsupported_quantization",
      `${file}: quant_method ${JSON.stringify(o.quant_method)} is not supported (only "${QUANT_METHOD}" checkpoints)`,
    );
  }
  if (o.format_version !== FORMAT_VERSION) {
    throw new UnsupportedError(
      "config.format_version",
      `${file}: cluscomp format_version ${JSON.stringify(o.format_version)} is not supported by this version (reads ${FORMAT_VERSION})`,
    );
  }
  if (!QUANT_METHODS.includes(o.method as QuantMethodName))
    bad(file, `method must be ${QUANT_METHODS.map((m) => `"${m}"`).join(", ")}`);
  if (typeof o.modules !== "object" || o.modules === null || Array.isArray(o.modules))
    bad(file, "has no modules object");
  const modules: Record<string, QuantModule> = {};
  for (const [name, m] of Object.entries(o.modules as Record<string, unknown>)) {
    if (typeof m !== "object" || m === null) bad(file, `modules["${name}"] must be an object`);
    const e = m as Record<string, unknown>;
    if (e.method === "cluscomp") {
      if (!posInt(e.d) || !posInt(e.K) || !posInt(e.m) || typeof e.codebook !== "string") {
        bad(file, `modules["${name}"] needs integer d, K, m ≥ 1 and a codebook name`);
      }
      if (e.K > 65536) bad(file, `modules["${name}"].K = ${e.K} exceeds 65536`);
      if (e.code_bits !== undefined) {
        if (!posInt(e.code_bits) || e.code_bits > 16 || 2 ** e.code_bits < e.K)
          bad(file, `modules["${name}"].code_bits must be an integer in 1..16 with 2^code_bits ≥ K = ${e.K}`);
      }
      if (e.rank !== undefined && !posInt(e.rank)) bad(file, `modules["${name}"].rank must be an integer ≥ 1`);
      if (e.salient !== undefined && !posInt(e.salient)) bad(file, `modules["${name}"].salient must be an integer ≥ 1`);
      if (e.channel_scale !== undefined && typeof e.channel_scale !== "boolean")
        bad(file, `modules["${name}"].channel_scale must be true or false`);
      if (e.rank !== undefined && e.salient !== undefined)
        bad(file, `modules["${name}"] has both a rank and salient channels (one side part per module)`);
      modules[name] = {
        method: "cluscomp",
        d: e.d,
        K: e.K,
        m: e.m,
        codebook: e.codebook,
        ...(e.code_bits !== undefined && e.code_bits !== 16 ? { code_bits: e.code_bits } : {}),
        ...(e.rank !== undefined ? { rank: e.rank } : {}),
        ...(e.salient !== undefined ? { salient: e.salient } : {}),
        ...(e.channel_scale === true ? { channel_scale: true as const } : {}),
      };
    } else if (e.method === "rtn") {
      if (!posInt(e.bits) || e.bits > 8 || !posInt(e.group_size))
        bad(file, `modules["${name}"] needs bits in 1..8 and group_size ≥ 1`);
      modules[name] = { method: "rtn", bits: e.bits, group_size: e.group_size };
    } else {
      bad(file, `modules["${name}"].method must be "cluscomp" or "rtn"`);
    }
  }
  return {
    ...o,
    quant_method: QUANT_METHOD,
    format_version: FORMAT_VERSION,
    method: o.method as QuantMethodName,
    bpw: Number(o.bpw),
    modules,
  };
}

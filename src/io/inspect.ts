// Summary of a model directory without loading weights: architecture, shape knobs, context length, parameter
// counts and bytes by tensor group and dtype (read from safetensors headers only), and for a cluscomp checkpoint
// its quantization (method, bpw, sharing, codebooks, stage 2). Parameters are counted as the original model's:
// a compressed matrix counts its out·in weights, not its codes, codebooks, scales or zeros, which are storage.

import { DTYPE_BYTES, type DType } from "../tensor/dtype.js";
import { numel } from "../tensor/shape.js";
import { moduleCodeBits, parseQuantizationConfig, type QuantMethodName, sideTensorNames } from "./cluscomp_format.js";
import { type ModelConfig, readModelConfig } from "./hf_config.js";
import { openCheckpoint } from "./safetensors.js";

export type TensorGroup = "embedding" | "attention" | "mlp" | "norm" | "lm_head" | "codebooks" | "other";

export interface GroupSummary {
  tensors: number;
  /** Parameters of the original model this group represents. */
  params: number;
  /** Bytes stored. */
  bytes: number;
  dtypes: Partial<Record<DType, number>>;
}

export interface QuantizationSummary {
  method: QuantMethodName;
  bpw: number;
  /** cluscomp: none | block | model. */
  share?: string;
  compressedModules: number;
  /** cluscomp: codebooks stored (shared ones once), their vector lengths and sizes. */
  codebooks?: number;
  vectorDims?: number[];
  clusters?: { min: number; max: number };
  /** Bits per stored code (16, or packed ⌈log₂K⌉). */
  codeBits?: number[];
  /** Matrices whose decoded codes are multiplied by stored channel scales (one per output row). */
  channelScaled?: number;
  /** reallm: ranks of the stored low-rank parts. */
  ranks?: number[];
  /** llm-codebook: salient input channels per matrix. */
  salient?: number[];
  /** rtn: bit widths and group sizes. */
  bits?: number[];
  groupSizes?: number[];
  centroidDtype?: string;
  /** Stage 2's recorded settings, when the codebooks were tuned. */
  finetune?: Record<string, unknown>;
  /** End-to-end training's record (cluscomp train), when there was any. */
  train?: Record<string, unknown>;
}

export interface ModelSummary {
  dir: string;
  config: Omit<ModelConfig, "raw">;
  /** Context length (max_position_embeddings). */
  contextLength: number;
  /** Parameters of the original model (compressed matrices counted as their dense weights). */
  params: number;
  /** Bytes of tensor data stored. */
  bytes: number;
  groups: Record<TensorGroup, GroupSummary>;
  quantization?: QuantizationSummary;
}

export function tensorGroup(name: string): TensorGroup {
  if (name.endsWith(".codebook")) return "codebooks";
  if (name.includes("embed_tokens")) return "embedding";
  if (name.startsWith("lm_head")) return "lm_head";
  if (name.includes("self_attn.")) return "attention";
  if (name.includes("mlp.")) return "mlp";
  if (name.includes("norm")) return "norm";
  return "other";
}

const sorted = (xs: Iterable<number>) => [...new Set(xs)].sort((a, b) => a - b);

export function inspectModel(dir: string): ModelSummary {
  const { raw, ...config } = readModelConfig(dir);
  const q = parseQuantizationConfig(raw);
  const src = openCheckpoint(dir);
  const empty = (): GroupSummary => ({ tensors: 0, params: 0, bytes: 0, dtypes: {} });
  const groups: Record<TensorGroup, GroupSummary> = {
    embedding: empty(),
    attention: empty(),
    mlp: empty(),
    norm: empty(),
    lm_head: empty(),
    codebooks: empty(),
    other: empty(),
  };
  // tensors that only encode a compressed weight: params 0, except the one that stands for the weight
  const storage = new Set<string>();
  const standsFor = new Map<string, number>();
  if (q) {
    for (const [module, m] of Object.entries(q.modules)) {
      const main = m.method === "cluscomp" ? `${module}.codes` : `${module}.qweight`;
      const info = src.info(main);
      if (m.method === "cluscomp") {
        storage.add(m.codebook);
        for (const name of sideTensorNames(module, m)) storage.add(name);
      } else {
        storage.add(`${module}.scales`);
        storage.add(`${module}.zeros`);
      }
      // the weight's out·in from the config (codes [in, ⌈out/d⌉] lose out when it is padded)
      if (info) standsFor.set(main, moduleParams(config, module));
    }
  }
  let params = 0;
  let bytes = 0;
  try {
    for (const name of src.names()) {
      const info = src.info(name)!;
      const g = groups[tensorGroup(name)];
      const n = numel(info.shape);
      const p = standsFor.get(name) ?? (storage.has(name) ? 0 : n);
      g.tensors++;
      g.params += p;
      g.bytes += n * DTYPE_BYTES[info.dtype];
      g.dtypes[info.dtype] = (g.dtypes[info.dtype] ?? 0) + 1;
      params += p;
      bytes += n * DTYPE_BYTES[info.dtype];
    }
  } finally {
    src.close();
  }
  let quantization: QuantizationSummary | undefined;
  if (q) {
    const mods = Object.values(q.modules);
    const cb = mods.filter((m) => m.method === "cluscomp");
    const rtn = mods.filter((m) => m.method === "rtn");
    quantization = {
      method: q.method,
      bpw: q.bpw,
      compressedModules: mods.length,
      ...(typeof q.share === "string" ? { share: q.share } : {}),
      ...(cb.length > 0
        ? {
            codebooks: new Set(cb.map((m) => m.codebook)).size,
            vectorDims: sorted(cb.map((m) => m.d)),
            clusters: { min: Math.min(...cb.map((m) => m.K)), max: Math.max(...cb.map((m) => m.K)) },
            codeBits: sorted(cb.map((m) => moduleCodeBits(m))),
            ...(cb.some((m) => m.channel_scale) ? { channelScaled: cb.filter((m) => m.channel_scale).length } : {}),
            ...(cb.some((m) => m.rank) ? { ranks: sorted(cb.map((m) => m.rank ?? 0)) } : {}),
            ...(cb.some((m) => m.salient) ? { salient: sorted(cb.map((m) => m.salient ?? 0)) } : {}),
          }
        : {}),
      ...(rtn.length > 0
        ? { bits: sorted(rtn.map((m) => m.bits)), groupSizes: sorted(rtn.map((m) => m.group_size)) }
        : {}),
      ...(typeof q.centroid_dtype === "string" ? { centroidDtype: q.centroid_dtype } : {}),
      ...(typeof q.finetune === "object" && q.finetune !== null
        ? { finetune: q.finetune as Record<string, unknown> }
        : {}),
      ...(typeof q.train === "object" && q.train !== null ? { train: q.train as Record<string, unknown> } : {}),
    };
  }
  return { dir, config, contextLength: config.maxPositionEmbeddings, params, bytes, groups, quantization };
}

/** out·in of a module by its projection name, from the config. */
function moduleParams(c: Omit<ModelConfig, "raw">, module: string): number {
  const C = c.hiddenSize;
  const q = c.numAttentionHeads * c.headDim;
  const kv = c.numKeyValueHeads * c.headDim;
  const I = c.intermediateSize;
  const kind = module.split(".").at(-1);
  const shapes: Record<string, number> = {
    q_proj: q * C,
    k_proj: kv * C,
    v_proj: kv * C,
    o_proj: C * q,
    gate_proj: I * C,
    up_proj: I * C,
    down_proj: C * I,
    lm_head: c.vocabSize * C,
  };
  return shapes[kind ?? ""] ?? 0;
}

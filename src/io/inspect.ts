// Summary of a model directory without loading weights: architecture, shape knobs, parameter counts and bytes
// by tensor group and dtype (read from safetensors headers only).

import { DTYPE_BYTES, type DType } from "../tensor/dtype.js";
import { numel } from "../tensor/shape.js";
import { type ModelConfig, readModelConfig } from "./hf_config.js";
import { openCheckpoint } from "./safetensors.js";

export type TensorGroup = "embedding" | "attention" | "mlp" | "norm" | "lm_head" | "other";

export interface GroupSummary {
  tensors: number;
  params: number;
  bytes: number;
  dtypes: Partial<Record<DType, number>>;
}

export interface ModelSummary {
  dir: string;
  config: Omit<ModelConfig, "raw">;
  params: number;
  bytes: number;
  groups: Record<TensorGroup, GroupSummary>;
}

export function tensorGroup(name: string): TensorGroup {
  if (name.includes("embed_tokens")) return "embedding";
  if (name.startsWith("lm_head")) return "lm_head";
  if (name.includes("self_attn.")) return "attention";
  if (name.includes("mlp.")) return "mlp";
  if (name.includes("norm")) return "norm";
  return "other";
}

export function inspectModel(dir: string): ModelSummary {
  const { raw: _raw, ...config } = readModelConfig(dir);
  const src = openCheckpoint(dir);
  const empty = (): GroupSummary => ({ tensors: 0, params: 0, bytes: 0, dtypes: {} });
  const groups: Record<TensorGroup, GroupSummary> = {
    embedding: empty(),
    attention: empty(),
    mlp: empty(),
    norm: empty(),
    lm_head: empty(),
    other: empty(),
  };
  let params = 0;
  let bytes = 0;
  try {
    for (const name of src.names()) {
      const info = src.info(name)!;
      const g = groups[tensorGroup(name)];
      const n = numel(info.shape);
      g.tensors++;
      g.params += n;
      g.bytes += n * DTYPE_BYTES[info.dtype];
      g.dtypes[info.dtype] = (g.dtypes[info.dtype] ?? 0) + 1;
      params += n;
      bytes += n * DTYPE_BYTES[info.dtype];
    }
  } finally {
    src.close();
  }
  return { dir, config, params, bytes, groups };
}

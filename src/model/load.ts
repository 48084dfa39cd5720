// Builds a LlamaModel from a Hugging Face model directory: config.json + safetensors (single or sharded).
// Tensors are read one at a time, converted to f32 and uploaded, so peak host memory is the f32 model plus
// one tensor's raw bytes.

import type { Backend, Tensor } from "../backend/backend.js";
import { ModelError } from "../errors.js";
import { type ModelConfig, readModelConfig } from "../io/hf_config.js";
import { openCheckpoint, type TensorSource } from "../io/safetensors.js";
import { formatShape, shapeEquals } from "../tensor/shape.js";
import type { Linear } from "./linear.js";
import { type DecoderLayer, LlamaModel } from "./llama.js";

export interface LoadProgress {
  tensorsDone: number;
  tensorsTotal: number;
}

export function loadModel(
  dir: string,
  backend: Backend,
  onProgress?: (p: LoadProgress) => void,
): { config: ModelConfig; model: LlamaModel } {
  const config = readModelConfig(dir);
  const source = openCheckpoint(dir);
  try {
    return { config, model: buildModel(backend, config, source, onProgress) };
  } finally {
    source.close();
  }
}

export function buildModel(
  backend: Backend,
  cfg: ModelConfig,
  source: TensorSource,
  onProgress?: (p: LoadProgress) => void,
): LlamaModel {
  const perLayer = 9 + (cfg.qkvBias ? 3 : 0) + (cfg.oBias ? 1 : 0) + (cfg.mlpBias ? 3 : 0);
  const total = 2 + (cfg.tieWordEmbeddings ? 0 : 1) + perLayer * cfg.numHiddenLayers;
  let done = 0;
  const tensor = (name: string, shape: readonly number[]): Tensor => {
    const info = source.info(name);
    if (!info)
      throw new ModelError(
        "model.missing_tensor",
        `checkpoint has no tensor "${name}" (config expects ${formatShape(shape)})`,
      );
    if (!shapeEquals(info.shape, shape)) {
      throw new ModelError(
        "model.tensor_shape",
        `tensor "${name}" is ${formatShape(info.shape)}, config implies ${formatShape(shape)}`,
      );
    }
    const t = backend.upload(source.readFloat32(name), shape);
    done++;
    onProgress?.({ tensorsDone: done, tensorsTotal: total });
    return t;
  };
  const linear = (prefix: string, out: number, inp: number, bias: boolean): Linear => ({
    kind: "dense",
    weight: tensor(`${prefix}.weight`, [out, inp]),
    bias: bias ? tensor(`${prefix}.bias`, [out]) : null,
    inFeatures: inp,
    outFeatures: out,
  });

  const C = cfg.hiddenSize;
  const qDim = cfg.numAttentionHeads * cfg.headDim;
  const kvDim = cfg.numKeyValueHeads * cfg.headDim;
  const I = cfg.intermediateSize;
  const embedTokens = tensor("model.embed_tokens.weight", [cfg.vocabSize, C]);
  const layers: DecoderLayer[] = [];
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const p = `model.layers.${l}`;
    layers.push({
      inputLayernorm: tensor(`${p}.input_layernorm.weight`, [C]),
      qProj: linear(`${p}.self_attn.q_proj`, qDim, C, cfg.qkvBias),
      kProj: linear(`${p}.self_attn.k_proj`, kvDim, C, cfg.qkvBias),
      vProj: linear(`${p}.self_attn.v_proj`, kvDim, C, cfg.qkvBias),
      oProj: linear(`${p}.self_attn.o_proj`, C, qDim, cfg.oBias),
      postAttentionLayernorm: tensor(`${p}.post_attention_layernorm.weight`, [C]),
      gateProj: linear(`${p}.mlp.gate_proj`, I, C, cfg.mlpBias),
      upProj: linear(`${p}.mlp.up_proj`, I, C, cfg.mlpBias),
      downProj: linear(`${p}.mlp.down_proj`, C, I, cfg.mlpBias),
    });
  }
  const norm = tensor("model.norm.weight", [C]);
  const lmHead = cfg.tieWordEmbeddings ? null : linear("lm_head", cfg.vocabSize, C, false);
  return new LlamaModel(backend, cfg, { embedTokens, layers, norm, lmHead });
}

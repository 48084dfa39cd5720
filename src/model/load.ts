// Builds a LlamaModel from a Hugging Face model directory: config.json + safetensors (single or sharded), plain
// or a cluscomp checkpoint (config.json's quantization_config; compressed linears stay compressed).
// Tensors are read one at a time, converted and uploaded, so peak host memory is the loaded model plus one
// tensor's raw bytes.

import type { Backend, Tensor } from "../backend/backend.js";
import { ModelError } from "../errors.js";
import { parseQuantizationConfig, type QuantModule } from "../io/cluscomp_format.js";
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
  const quant = parseQuantizationConfig(cfg.raw);
  const perLayer = 9 + (cfg.qkvBias ? 3 : 0) + (cfg.oBias ? 1 : 0) + (cfg.mlpBias ? 3 : 0);
  const total = 2 + (cfg.tieWordEmbeddings ? 0 : 1) + perLayer * cfg.numHiddenLayers;
  let done = 0;
  const tick = () => onProgress?.({ tensorsDone: ++done, tensorsTotal: total });
  const check = (name: string, shape: readonly number[]) => {
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
    return info;
  };
  const tensor = (name: string, shape: readonly number[]): Tensor => {
    check(name, shape);
    const t = backend.upload(source.readFloat32(name), shape);
    tick();
    return t;
  };
  const codebooks = new Map<string, Tensor>();
  const compressed = (prefix: string, q: QuantModule, out: number, inp: number, bias: Tensor | null): Linear => {
    if (q.method === "cluscomp") {
      const nb = Math.ceil(out / q.d);
      check(`${prefix}.codes`, [inp, nb]);
      const raw = source.readRaw(`${prefix}.codes`);
      if (!(raw instanceof Uint16Array))
        throw new ModelError("model.tensor_dtype", `tensor "${prefix}.codes" must be U16`);
      const codes = backend.uploadInt(Int32Array.from(raw), [inp, nb]);
      let cb = codebooks.get(q.codebook);
      if (!cb) {
        cb = tensor(q.codebook, [q.m, q.K, q.d]);
        codebooks.set(q.codebook, cb);
      } else {
        check(q.codebook, [q.m, q.K, q.d]);
      }
      tick();
      const layout = { out, in: inp, d: q.d, nb, K: q.K, partCols: Math.ceil(nb / q.m) };
      return { kind: "codebook", codes, codebooks: cb, layout, bias, inFeatures: inp, outFeatures: out };
    }
    const ng = Math.ceil(inp / q.group_size);
    const bytes = Math.ceil((out * inp * q.bits) / 8);
    check(`${prefix}.qweight`, [bytes]);
    const rawQ = source.readRaw(`${prefix}.qweight`);
    if (!(rawQ instanceof Uint8Array))
      throw new ModelError("model.tensor_dtype", `tensor "${prefix}.qweight" must be U8`);
    const words = new Int32Array(Math.ceil(bytes / 4));
    new Uint8Array(words.buffer).set(rawQ);
    const packed = backend.uploadInt(words, [words.length]);
    const scales = tensor(`${prefix}.scales`, [out, ng]);
    const zeros = tensor(`${prefix}.zeros`, [out, ng]);
    const layout = { out, in: inp, bits: q.bits, group: q.group_size };
    return { kind: "rtn", packed, scales, zeros, layout, bias, inFeatures: inp, outFeatures: out };
  };
  const linear = (prefix: string, out: number, inp: number, hasBias: boolean): Linear => {
    const bias = hasBias ? tensor(`${prefix}.bias`, [out]) : null;
    const q = quant?.modules[prefix];
    if (q) return compressed(prefix, q, out, inp, bias);
    return { kind: "dense", weight: tensor(`${prefix}.weight`, [out, inp]), bias, inFeatures: inp, outFeatures: out };
  };

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

// Builds a LlamaModel from a Hugging Face model directory: config.json + safetensors (single or sharded), plain
// or a cluscomp checkpoint (config.json's quantization_config; compressed linears stay compressed).
// Tensors are read one at a time, converted and uploaded, so peak host memory is the loaded model plus one
// tensor's raw bytes.

import type { Backend, Tensor } from "../backend/backend.js";
import { channelSelection } from "../compress/side.js";
import { ModelError } from "../errors.js";
import {
  moduleCodeBits,
  parseQuantizationConfig,
  type QuantizationConfig,
  type QuantModule,
} from "../io/cluscomp_format.js";
import { type ModelConfig, readModelConfig } from "../io/hf_config.js";
import { openCheckpoint, type TensorSource } from "../io/safetensors.js";
import { formatShape, shapeEquals } from "../tensor/shape.js";
import type { DecoderLayer } from "./decoder_layer.js";
import type { Linear, LowRankPart } from "./linear.js";
import { LlamaModel } from "./llama.js";
import {
  CODEBOOK_DTYPES,
  channelScaleTensor,
  checkCheckpoint,
  codesTensor,
  type ExpectedTensor,
  FLOAT_WEIGHT_DTYPES,
  lowRankTensors,
  readCodebookCodes,
  readSalientIndex,
  salientTensors,
} from "./tensors.js";

export interface LoadProgress {
  tensorsDone: number;
  tensorsTotal: number;
}

/**
 * Reads a model directory's config.json and safetensors headers without loading a tensor: what the CLI calls before
 * it opens a backend, so a bad path or a broken checkpoint is reported at once (opening a GPU takes a while, and
 * some drivers print their own warnings).
 */
export function checkModelDir(
  dir: string,
  opts: { allowUnused?: boolean } = {},
): { config: ModelConfig; unused: string[] } {
  const config = readModelConfig(dir);
  const source = openCheckpoint(dir);
  try {
    return { config, unused: checkCheckpoint(config, source, opts).unused };
  } finally {
    source.close();
  }
}

export interface LoadOptions {
  onProgress?: (p: LoadProgress) => void;
  /** Load a checkpoint with tensors its config does not use (they are listed in the result); default: refuse. */
  allowUnused?: boolean;
}

export function loadModel(
  dir: string,
  backend: Backend,
  opts: LoadOptions = {},
): { config: ModelConfig; model: LlamaModel; unused: string[] } {
  const config = readModelConfig(dir);
  const source = openCheckpoint(dir);
  try {
    const { unused } = checkCheckpoint(config, source, { allowUnused: opts.allowUnused });
    return { config, model: buildModel(backend, config, source, opts.onProgress), unused };
  } finally {
    source.close();
  }
}

/** Throws a ModelError naming the tensor and position of the first non-finite value. */
export function assertFinite(name: string, x: Float32Array): void {
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) {
      throw new ModelError(
        "model.non_finite",
        `tensor "${name}" holds ${x[i]} at element ${i}: the checkpoint is corrupt (a weight must be a finite number)`,
      );
    }
  }
}

/**
 * Reads and uploads the tensors of one checkpoint: single tensors, linears (dense or compressed; codebooks shared
 * between modules are uploaded once and shared) and whole decoder layers.
 */
export class CheckpointReader {
  private readonly quant: QuantizationConfig | undefined;
  private readonly codebooks = new Map<string, Tensor>();
  constructor(
    private readonly backend: Backend,
    private readonly cfg: ModelConfig,
    private readonly source: TensorSource,
    private readonly tick: () => void = () => {},
  ) {
    this.quant = parseQuantizationConfig(cfg.raw);
  }

  /** Tensors read per decoder layer (for progress totals). */
  get tensorsPerLayer(): number {
    const c = this.cfg;
    return 9 + (c.qkvBias ? 3 : 0) + (c.oBias ? 1 : 0) + (c.mlpBias ? 3 : 0);
  }

  /**
   * Tensors of side parts (channel scales, ReALLM low-rank, LLM-Codebook salient) in the whole checkpoint, beside
   * the per-layer ones.
   */
  get sideTensorCount(): number {
    return Object.values(this.quant?.modules ?? {}).reduce(
      (n, m) => n + (m.method === "cluscomp" ? (m.channel_scale ? 1 : 0) + (m.rank || m.salient ? 2 : 0) : 0),
      0,
    );
  }

  private check(name: string, shape: readonly number[]) {
    const info = this.source.info(name);
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
  }

  tensor(name: string, shape: readonly number[]): Tensor {
    const info = this.check(name, shape);
    if (!FLOAT_WEIGHT_DTYPES.includes(info.dtype)) {
      throw new ModelError(
        "model.tensor_dtype",
        `tensor "${name}" is ${info.dtype}; a weight must be ${FLOAT_WEIGHT_DTYPES.join(", ")}`,
      );
    }
    const data = this.source.readFloat32(name);
    assertFinite(name, data);
    const t = this.backend.upload(data, shape);
    this.tick();
    return t;
  }

  private compressed(prefix: string, q: QuantModule, out: number, inp: number, bias: Tensor | null): Linear {
    const backend = this.backend;
    if (q.method === "cluscomp") {
      const nb = Math.ceil(out / q.d);
      const spec = codesTensor(q, inp, nb);
      const codesInfo = this.check(`${prefix}.codes`, spec.shape);
      if (!spec.dtypes.includes(codesInfo.dtype)) {
        throw new ModelError(
          "model.tensor_dtype",
          `tensor "${prefix}.codes" is ${codesInfo.dtype}; ${moduleCodeBits(q)}-bit codes must be ${spec.dtypes.join(" or ")}`,
        );
      }
      const codes32 = readCodebookCodes(this.source, prefix, q, inp, nb, ` (in ${codesInfo.file})`);
      const codes = backend.uploadInt(codes32, [inp, nb]);
      let cb = this.codebooks.get(q.codebook);
      const cbInfo = this.check(q.codebook, [q.m, q.K, q.d]);
      if (!CODEBOOK_DTYPES.includes(cbInfo.dtype)) {
        throw new ModelError(
          "model.tensor_dtype",
          `tensor "${q.codebook}" is ${cbInfo.dtype}; a codebook must be ${CODEBOOK_DTYPES.join(" or ")}`,
        );
      }
      if (!cb) {
        cb = this.tensor(q.codebook, [q.m, q.K, q.d]);
        this.codebooks.set(q.codebook, cb);
      }
      this.tick();
      const layout = { out, in: inp, d: q.d, nb, K: q.K, partCols: Math.ceil(nb / q.m) };
      const lowrank = q.rank === undefined ? undefined : this.lowRank(prefix, q.rank, out, inp);
      const salient = q.salient === undefined ? undefined : this.salientPart(prefix, q.salient, out, inp);
      const channelScale = q.channel_scale ? this.expected(channelScaleTensor(prefix, out)) : undefined;
      return {
        kind: "codebook",
        codes,
        codebooks: cb,
        codebookName: q.codebook,
        layout,
        bias,
        inFeatures: inp,
        outFeatures: out,
        ...(lowrank ? { lowrank } : {}),
        ...(salient ? { salient } : {}),
        ...(channelScale ? { channelScale } : {}),
      };
    }
    const ng = Math.ceil(inp / q.group_size);
    const bytes = Math.ceil((out * inp * q.bits) / 8);
    const qInfo = this.check(`${prefix}.qweight`, [bytes]);
    if (qInfo.dtype !== "U8")
      throw new ModelError("model.tensor_dtype", `tensor "${prefix}.qweight" is ${qInfo.dtype}; RTN codes must be U8`);
    for (const part of ["scales", "zeros"]) {
      const d = this.check(`${prefix}.${part}`, [out, ng]).dtype;
      if (d !== "F16")
        throw new ModelError("model.tensor_dtype", `tensor "${prefix}.${part}" is ${d}; RTN ${part} must be F16`);
    }
    const rawQ = this.source.readRaw(`${prefix}.qweight`) as Uint8Array;
    const words = new Int32Array(Math.ceil(bytes / 4));
    new Uint8Array(words.buffer).set(rawQ);
    const packed = backend.uploadInt(words, [words.length]);
    const scales = this.tensor(`${prefix}.scales`, [out, ng]);
    const zeros = this.tensor(`${prefix}.zeros`, [out, ng]);
    const layout = { out, in: inp, bits: q.bits, group: q.group_size };
    return { kind: "rtn", packed, scales, zeros, layout, bias, inFeatures: inp, outFeatures: out };
  }

  /** A float tensor of a side part, its shape and dtype checked against what the format expects. */
  private expected([name, e]: [string, ExpectedTensor]): Tensor {
    const info = this.check(name, e.shape);
    if (!e.dtypes.includes(info.dtype)) {
      throw new ModelError(
        "model.tensor_dtype",
        `tensor "${name}" is ${info.dtype}; a ${e.role} must be ${e.dtypes.join(" or ")}`,
      );
    }
    return this.tensor(name, e.shape);
  }

  /** ReALLM's stored low-rank part of a module (scale 1). */
  private lowRank(prefix: string, r: number, out: number, inp: number): LowRankPart {
    const [A, B] = lowRankTensors(prefix, r, out, inp).map((t) => this.expected(t));
    return { A, B, scale: 1 };
  }

  /** LLM-Codebook's salient channels of a module as a low-rank part (A the one-hot selection, scale 1). */
  private salientPart(prefix: string, k: number, out: number, inp: number): LowRankPart {
    const [idx, val] = salientTensors(prefix, k, out);
    for (const [name, e] of [idx, val]) {
      const info = this.check(name, e.shape);
      if (!e.dtypes.includes(info.dtype)) {
        throw new ModelError(
          "model.tensor_dtype",
          `tensor "${name}" is ${info.dtype}; a ${e.role} must be ${e.dtypes.join(" or ")}`,
        );
      }
    }
    const channels = readSalientIndex(this.source, prefix, k, inp);
    this.tick();
    const A = this.backend.upload(channelSelection(channels, inp), [k, inp]);
    return { A, B: this.tensor(val[0], val[1].shape), scale: 1 };
  }

  linear(prefix: string, out: number, inp: number, hasBias: boolean): Linear {
    const bias = hasBias ? this.tensor(`${prefix}.bias`, [out]) : null;
    const q = this.quant?.modules[prefix];
    if (q) return this.compressed(prefix, q, out, inp, bias);
    return {
      kind: "dense",
      weight: this.tensor(`${prefix}.weight`, [out, inp]),
      bias,
      inFeatures: inp,
      outFeatures: out,
    };
  }

  /** Decoder layer l (`model.layers.<l>.…`). */
  layer(l: number): DecoderLayer {
    const cfg = this.cfg;
    const C = cfg.hiddenSize;
    const qDim = cfg.numAttentionHeads * cfg.headDim;
    const kvDim = cfg.numKeyValueHeads * cfg.headDim;
    const I = cfg.intermediateSize;
    const p = `model.layers.${l}`;
    return {
      inputLayernorm: this.tensor(`${p}.input_layernorm.weight`, [C]),
      qProj: this.linear(`${p}.self_attn.q_proj`, qDim, C, cfg.qkvBias),
      kProj: this.linear(`${p}.self_attn.k_proj`, kvDim, C, cfg.qkvBias),
      vProj: this.linear(`${p}.self_attn.v_proj`, kvDim, C, cfg.qkvBias),
      oProj: this.linear(`${p}.self_attn.o_proj`, C, qDim, cfg.oBias),
      postAttentionLayernorm: this.tensor(`${p}.post_attention_layernorm.weight`, [C]),
      gateProj: this.linear(`${p}.mlp.gate_proj`, I, C, cfg.mlpBias),
      upProj: this.linear(`${p}.mlp.up_proj`, I, C, cfg.mlpBias),
      downProj: this.linear(`${p}.mlp.down_proj`, C, I, cfg.mlpBias),
    };
  }
}

export function buildModel(
  backend: Backend,
  cfg: ModelConfig,
  source: TensorSource,
  onProgress?: (p: LoadProgress) => void,
): LlamaModel {
  let done = 0;
  let total = 0;
  const reader = new CheckpointReader(backend, cfg, source, () =>
    onProgress?.({ tensorsDone: ++done, tensorsTotal: total }),
  );
  total = 2 + (cfg.tieWordEmbeddings ? 0 : 1) + reader.tensorsPerLayer * cfg.numHiddenLayers + reader.sideTensorCount;
  const C = cfg.hiddenSize;
  const embedTokens = reader.tensor("model.embed_tokens.weight", [cfg.vocabSize, C]);
  const layers: DecoderLayer[] = [];
  for (let l = 0; l < cfg.numHiddenLayers; l++) layers.push(reader.layer(l));
  const norm = reader.tensor("model.norm.weight", [C]);
  const lmHead = cfg.tieWordEmbeddings ? null : reader.linear("lm_head", cfg.vocabSize, C, false);
  return new LlamaModel(backend, cfg, { embedTokens, layers, norm, lmHead });
}

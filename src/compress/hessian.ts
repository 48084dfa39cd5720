// Input statistics for Hessian-aware clustering (LLM-Codebook; GPTQ's H = 2XᵀX up to its factor 2).
// For a linear y = x·Wᵀ with inputs X [tokens, in] from calibration text, the layer-wise output error of a
// perturbed weight is tr(ΔW·XᵀX·ΔWᵀ); its diagonal part Σᵢ hᵢ‖ΔW[:, i]‖² with hᵢ = Σₜ xₜᵢ² weighs each input
// channel by how much signal flows through it. ClusComp's vector (i, j) holds output channels j·d … j·d+d−1 of
// input channel i, so hᵢ is one weight per vector and the diagonal objective is weighted k-means exactly.
//
// collectInputStatistics runs the full-precision model over the windows one at a time and accumulates, for every
// compressed linear, hᵢ over all their tokens (float64), and with `full` the whole XᵀX (for GPTQ-style error
// feedback, compress/gptq.ts; [in, in] on the backend's matmul). The linears of one input share one statistic:
// q/k/v read the first normed stream, o the attention output, gate/up the second normed stream, down
// silu(gate)·up. collectInputStatistics takes the full-precision model's inputs; layerInputStatistics one layer's
// from given inputs (compress's sequential order: the outputs of the blocks already compressed).

import type { Backend, Tensor } from "../backend/backend.js";
import { CompressionError } from "../errors.js";
import type { ModelConfig } from "../io/hf_config.js";
import {
  type DecoderLayer,
  decoderLayerForward,
  disposeActivations,
  type LayerContext,
} from "../model/decoder_layer.js";
import type { LlamaModel } from "../model/llama.js";
import type { MatrixSpec } from "./plan.js";

/** A linear's input statistics: hᵢ = Σₜ xₜᵢ² per input channel, and with `full` XᵀX [in, in] row-major. */
export interface InputStatistics {
  diagonal: Float64Array;
  hessian?: Float64Array;
}

/** By linear (HF module name, e.g. model.layers.0.self_attn.q_proj); linears reading one input share one object. */
export type InputStatisticsMap = Map<string, InputStatistics>;

/** Relative dampening added to every hᵢ (GPTQ's 1 % of the mean diagonal), so no vector weighs 0. */
export const HESSIAN_DAMPENING = 0.01;

/** Accumulates the statistics of linears from their input tensors (the linears of one input share one entry). */
class StatisticsAccumulator {
  readonly map: InputStatisticsMap = new Map();
  constructor(
    private readonly be: Backend,
    private readonly full: boolean,
  ) {}

  async add(names: string[], t: Tensor): Promise<void> {
    const be = this.be;
    const width = t.shape[t.shape.length - 1];
    const x = await be.read(t);
    let st = this.map.get(names[0]);
    if (!st) {
      st = { diagonal: new Float64Array(width), hessian: this.full ? new Float64Array(width * width) : undefined };
      for (const n of names) this.map.set(n, st);
    }
    const h = st.diagonal;
    for (let r = 0; r < x.length / width; r++) {
      const o = r * width;
      for (let i = 0; i < width; i++) h[i] += x[o + i] * x[o + i];
    }
    if (st.hessian) {
      const xT = be.upload(x, [x.length / width, width]);
      const gT = be.matmul(xT, xT, { transposeA: true });
      be.dispose(xT);
      const g = await be.read(gT);
      be.dispose(gT);
      for (let k = 0; k < g.length; k++) st.hessian[k] += g[k];
    }
  }

  /** Runs layer l on x (saving its activations) and adds the inputs of its seven linears; returns y. */
  async layer(cfg: ModelConfig, layer: DecoderLayer, l: number, x: Tensor, ctx: LayerContext): Promise<Tensor> {
    const { y, saved } = decoderLayerForward(this.be, cfg, layer, x, ctx, true);
    const s = saved!;
    const p = `model.layers.${l}`;
    await this.add([`${p}.self_attn.q_proj`, `${p}.self_attn.k_proj`, `${p}.self_attn.v_proj`], s.n1);
    await this.add([`${p}.self_attn.o_proj`], s.attn);
    await this.add([`${p}.mlp.gate_proj`, `${p}.mlp.up_proj`], s.n2);
    await this.add([`${p}.mlp.down_proj`], s.act);
    disposeActivations(this.be, s);
    return y;
  }
}

export async function collectInputStatistics(
  model: LlamaModel,
  windows: Int32Array[],
  opts: { full?: boolean; onWindow?: (done: number, total: number) => void } = {},
): Promise<InputStatisticsMap> {
  if (windows.length === 0) throw new CompressionError("compress.calib", "Hessian statistics need calibration windows");
  const be: Backend = model.backend;
  const layers = model.weights.layers;
  const acc = new StatisticsAccumulator(be, opts.full ?? false);
  for (let w = 0; w < windows.length; w++) {
    const ids = windows[w];
    const T = ids.length;
    const { cos, sin } = model.ropeFor(T);
    const idsT = be.uploadInt(ids, [1, T]);
    let h = be.embedding(idsT, model.weights.embedTokens);
    be.dispose(idsT);
    for (let l = 0; l < layers.length; l++) {
      const y = await acc.layer(model.config, layers[l], l, h, { cos, sin, past: 0 });
      be.dispose(h);
      h = y;
    }
    be.dispose(h);
    opts.onWindow?.(w + 1, windows.length);
  }
  return acc.map;
}

/**
 * The statistics of one decoder layer's linears from its inputs `xs` (one [1, T, C] per calibration window: the
 * original model's hidden states, or the outputs of the blocks before it as compressed, GPTQ's sequential order),
 * and the layer's outputs on them (the caller disposes them). `onWindow` after each window.
 */
export async function layerInputStatistics(
  be: Backend,
  cfg: ModelConfig,
  layer: DecoderLayer,
  l: number,
  xs: Tensor[],
  rope: (positions: number) => { cos: Tensor; sin: Tensor },
  full: boolean,
  onWindow?: () => void,
): Promise<{ stats: InputStatisticsMap; outputs: Tensor[] }> {
  const acc = new StatisticsAccumulator(be, full);
  const outputs: Tensor[] = [];
  for (const x of xs) {
    const { cos, sin } = rope(x.shape[1]);
    outputs.push(await acc.layer(cfg, layer, l, x, { cos, sin, past: 0 }));
    onWindow?.();
  }
  return { stats: acc.map, outputs };
}

/** Bytes of the float64 XᵀX one decoder layer's statistics hold with `full` (its largest over the layers). */
export function layerHessianBytes(mats: MatrixSpec[]): number {
  const perLayer = new Map<number, MatrixSpec[]>();
  for (const x of mats) perLayer.set(x.layer, [...(perLayer.get(x.layer) ?? []), x]);
  return Math.max(0, ...[...perLayer.values()].map((m) => inputHessianBytes(m)));
}

/** The input a linear reads, as collectInputStatistics shares statistics: q/k/v one, gate/up one, o and down their own. */
function inputStream(x: MatrixSpec): string {
  if (x.family === "attention") return x.projection === "o_proj" ? "o" : "qkv";
  return x.projection === "down_proj" ? "down" : "gate_up";
}

/** Bytes of the float64 XᵀX collectInputStatistics holds with `full` for these linears (one per distinct input). */
export function inputHessianBytes(mats: MatrixSpec[]): number {
  const widths = new Map<string, number>();
  for (const x of mats) widths.set(`${x.layer}.${inputStream(x)}`, x.in);
  return [...widths.values()].reduce((s, n) => s + 8 * n * n, 0);
}

/**
 * Per-vector weights of a matrix's vectors in extractVectors' order (vector index = i·cols + (j − start)):
 * hᵢ + λ·mean(h), λ = HESSIAN_DAMPENING.
 */
export function vectorWeights(h: Float64Array, cols: number): Float32Array {
  let mean = 0;
  for (let i = 0; i < h.length; i++) mean += h[i];
  mean /= h.length;
  const damp = HESSIAN_DAMPENING * mean;
  const w = new Float32Array(h.length * cols);
  for (let i = 0; i < h.length; i++) w.fill(h[i] + damp, i * cols, (i + 1) * cols);
  return w;
}

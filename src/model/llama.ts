// Llama-family decoder (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM), mirroring transformers'
// modeling_llama.py: embed → L × [x + o(attn(rope(q,k), v)) ; x + down(silu(gate)·up)] → norm → lm_head.
// Built from the config alone (GQA ratio, head_dim, biases, tied head, sliding window), never from model names.
//
// Shapes: B batch, T tokens, C hidden, H/Hkv heads, D head dim, V vocab.

import type { Backend, Tensor } from "../backend/backend.js";
import { ModelError } from "../errors.js";
import type { ModelConfig } from "../io/hf_config.js";
import { type DecoderLayer, decoderLayerForward } from "./decoder_layer.js";
import { KVCache } from "./kv_cache.js";
import { applyLinear, type Linear, linearTensors } from "./linear.js";
import { ropeInvFreq, ropeTables } from "./rope.js";

export interface LlamaWeights {
  embedTokens: Tensor;
  layers: DecoderLayer[];
  norm: Tensor;
  /** null when tie_word_embeddings: the head reuses embedTokens. */
  lmHead: Linear | null;
}

export interface ForwardOptions {
  /** Continue from (and append to) this cache; without one, positions start at 0 and nothing is kept. */
  cache?: KVCache;
  /** Return the residual stream after the embedding, after each layer, and after the final norm. */
  outputHiddenStates?: boolean;
  /** Compute logits for the last position only (generation). */
  lastOnly?: boolean;
}

export interface ForwardResult {
  /** [B, T, V] (or [B, 1, V] with lastOnly). */
  logits: Tensor;
  /** L + 1 tensors [B, T, C] when asked for (HF's output_hidden_states, last one normed). */
  hiddenStates?: Tensor[];
}

export class LlamaModel {
  readonly backend: Backend;
  readonly config: ModelConfig;
  readonly weights: LlamaWeights;
  private readonly invFreq: Float32Array;
  private rope: { positions: number; cos: Tensor; sin: Tensor } | null = null;

  constructor(backend: Backend, config: ModelConfig, weights: LlamaWeights) {
    this.backend = backend;
    this.config = config;
    this.weights = weights;
    if (weights.layers.length !== config.numHiddenLayers) {
      throw new ModelError("model.layers", `expected ${config.numHiddenLayers} layers, got ${weights.layers.length}`);
    }
    this.invFreq = ropeInvFreq(config.headDim, config.ropeTheta, config.ropeScaling);
  }

  /** A KV cache sized for this model. */
  createCache(batch: number, capacity: number): KVCache {
    return new KVCache(this.backend, this.config, batch, capacity);
  }

  /** RoPE tables [P, D/2] covering at least `positions` positions (cached; grown by doubling). */
  ropeFor(positions: number): { cos: Tensor; sin: Tensor } {
    if (this.rope === null || this.rope.positions < positions) {
      let p = 64;
      while (p < positions) p *= 2;
      if (this.rope) {
        this.backend.dispose(this.rope.cos);
        this.backend.dispose(this.rope.sin);
      }
      const { cos, sin } = ropeTables(this.invFreq, p);
      const half = this.config.headDim / 2;
      this.rope = {
        positions: p,
        cos: this.backend.upload(cos, [p, half]),
        sin: this.backend.upload(sin, [p, half]),
      };
    }
    return this.rope;
  }

  /** ids: B·T token ids, row-major [B, T]. */
  forward(ids: Int32Array, B: number, T: number, opts: ForwardOptions = {}): ForwardResult {
    const be = this.backend;
    const { normed, hidden } = this.trunk(ids, B, T, opts.cache, opts.outputHiddenStates === true);
    let rows = normed;
    if (opts.lastOnly && T > 1) rows = be.narrow(normed, T - 1, 1);
    const logits = this.head(rows);
    if (rows !== normed) be.dispose(rows);
    if (!hidden) be.dispose(normed);
    return hidden ? { logits, hiddenStates: hidden } : { logits };
  }

  /**
   * The final-normed hidden states [B, T, C] (what the head reads), without the head: for callers that compute
   * logits a few rows at a time (`head`) so that a [T, V] tensor for a large vocabulary is never held whole.
   */
  hidden(ids: Int32Array, B: number, T: number): Tensor {
    return this.trunk(ids, B, T, undefined, false).normed;
  }

  /** Logits [B, t, V] of normed hidden rows [B, t, C]: lm_head, or the embedding matrix when tied. */
  head(normed: Tensor): Tensor {
    return this.weights.lmHead
      ? applyLinear(this.backend, this.weights.lmHead, normed)
      : this.backend.linear(normed, this.weights.embedTokens, null);
  }

  /** Embedding → layers → final norm; with `keepHidden`, the L + 1 hidden states as HF returns them. */
  private trunk(
    ids: Int32Array,
    B: number,
    T: number,
    cache: KVCache | undefined,
    keepHidden: boolean,
  ): { normed: Tensor; hidden?: Tensor[] } {
    const be = this.backend;
    const cfg = this.config;
    const past = cache ? cache.length : 0;
    if (cache && (cache.batch !== B || past + T > cache.capacity)) {
      throw new ModelError(
        "model.cache",
        `KV cache holds ${cache.capacity} positions of batch ${cache.batch}; asked for ${past + T} of batch ${B}`,
      );
    }
    const { cos, sin } = this.ropeFor(past + T);
    const idsT = be.uploadInt(ids, [B, T]);
    let h = be.embedding(idsT, this.weights.embedTokens);
    be.dispose(idsT);
    const hidden: Tensor[] = [];
    if (keepHidden) hidden.push(h);
    for (let l = 0; l < this.weights.layers.length; l++) {
      const layerCache = cache ? { keys: cache.keys[l], values: cache.values[l] } : undefined;
      const { y } = decoderLayerForward(be, cfg, this.weights.layers[l], h, { cos, sin, past, cache: layerCache });
      if (!keepHidden) be.dispose(h);
      h = y;
      if (keepHidden && l < this.weights.layers.length - 1) hidden.push(h);
    }
    if (cache) cache.length = past + T;
    const normed = be.rms_norm(h, this.weights.norm, cfg.rmsNormEps);
    if (!keepHidden) be.dispose(h);
    if (keepHidden) hidden.push(normed);
    return keepHidden ? { normed, hidden } : { normed };
  }

  dispose(): void {
    const w = this.weights;
    const all = new Set<Tensor>([w.embedTokens, w.norm]);
    const add = (ts: Tensor[]) => {
      for (const t of ts) all.add(t);
    };
    if (w.lmHead) add(linearTensors(w.lmHead));
    for (const layer of w.layers) {
      add([layer.inputLayernorm, layer.postAttentionLayernorm]);
      for (const lin of [
        layer.qProj,
        layer.kProj,
        layer.vProj,
        layer.oProj,
        layer.gateProj,
        layer.upProj,
        layer.downProj,
      ]) {
        add(linearTensors(lin));
      }
    }
    if (this.rope) add([this.rope.cos, this.rope.sin]);
    for (const t of all) this.backend.dispose(t);
  }
}

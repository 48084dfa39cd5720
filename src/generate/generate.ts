// Autoregressive generation with a KV cache: prefill the prompt, then one token at a time, streaming decoded
// text as it becomes stable (a byte-fallback character is emitted once all its bytes have arrived).

import { UsageError } from "../errors.js";
import type { Tokenizer } from "../io/tokenizer.js";
import type { LlamaModel } from "../model/llama.js";
import { Rng } from "../tensor/rng.js";
import { type SamplingOptions, sampleToken, validateSampling } from "./sampling.js";

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  seed: number;
  /** Receives each new piece of text (the prompt's decoded text first). */
  onText?: (text: string) => void;
}

export interface GenerateResult {
  text: string;
  promptTokens: number;
  newTokens: number;
  /** Token ids: prompt then generated. */
  ids: number[];
  stoppedByEos: boolean;
  prefillSeconds: number;
  decodeSeconds: number;
}

export async function generate(
  model: LlamaModel,
  tokenizer: Tokenizer,
  prompt: string,
  opts: GenerateOptions,
): Promise<GenerateResult> {
  validateSampling(opts);
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 0) {
    throw new UsageError("usage.max_new_tokens", `--max-new-tokens must be an integer ≥ 0, got ${opts.maxNewTokens}`);
  }
  const ids = tokenizer.encode(prompt);
  if (ids.length === 0) throw new UsageError("usage.prompt", "the prompt encodes to no tokens");
  const capacity = Math.min(ids.length + opts.maxNewTokens, model.config.maxPositionEmbeddings);
  if (ids.length > capacity) {
    throw new UsageError("usage.prompt", `the prompt has ${ids.length} tokens; the model's context is ${capacity}`);
  }
  const eos = new Set([...model.config.eosTokenIds, ...tokenizer.eosTokenIds]);
  const rng = new Rng(opts.seed);
  const be = model.backend;
  const cache = model.createCache(1, capacity);
  let emitted = tokenizer.decode(ids);
  opts.onText?.(emitted);
  let stoppedByEos = false;
  const promptTokens = ids.length;
  let input = Int32Array.from(ids);
  const t0 = performance.now();
  let t1 = t0;
  try {
    while (ids.length - promptTokens < opts.maxNewTokens) {
      const { logits } = model.forward(input, 1, input.length, { cache, lastOnly: true });
      const row = await be.read(logits);
      be.dispose(logits);
      if (ids.length === promptTokens) t1 = performance.now();
      const next = sampleToken(row, opts, rng);
      if (eos.has(next)) {
        stoppedByEos = true;
        break;
      }
      ids.push(next);
      const text = tokenizer.decode(ids);
      if (text.startsWith(emitted) && !text.endsWith("\uFFFD")) {
        opts.onText?.(text.slice(emitted.length));
        emitted = text;
      }
      if (cache.length >= capacity) break;
      input = Int32Array.of(next);
    }
  } finally {
    cache.dispose();
  }
  const text = tokenizer.decode(ids);
  if (text.startsWith(emitted) && text.length > emitted.length) opts.onText?.(text.slice(emitted.length));
  const t2 = performance.now();
  return {
    text,
    promptTokens,
    newTokens: ids.length - promptTokens,
    ids,
    stoppedByEos,
    prefillSeconds: (t1 - t0) / 1000,
    decodeSeconds: (t2 - t1) / 1000,
  };
}

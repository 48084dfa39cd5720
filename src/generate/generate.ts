// Autoregressive generation with a KV cache: prefill the prompt, then one token at a time, streaming decoded
// text as it becomes stable (a byte-fallback character is emitted once all its bytes have arrived; text that could
// be the start of a stop string is held back until it is not).
// Logits processing in transformers' order: repetition penalty, then temperature → top-k → top-p (sampling.ts).

import { UsageError } from "../errors.js";
import type { Tokenizer } from "../io/tokenizer.js";
import type { LlamaModel } from "../model/llama.js";
import { Rng } from "../tensor/rng.js";
import { type SamplingOptions, sampleToken, validateSampling } from "./sampling.js";

export interface GenerateOptions extends Partial<SamplingOptions> {
  /** Tokens to generate at most (default 128). */
  maxNewTokens?: number;
  /** Sampling seed (default 0). */
  seed?: number;
  /**
   * transformers' repetition_penalty (default 1 = off): the logit of every token already in the sequence (prompt
   * included) is divided by it when positive and multiplied by it when negative.
   */
  repetitionPenalty?: number;
  /** Generation stops when the new text contains one of these; the returned text ends before it. */
  stop?: readonly string[];
  /** Receives each new piece of text (the prompt's decoded text first). */
  onText?: (text: string) => void;
}

/** The defaults of `generate`: greedy, 128 new tokens, no penalty, no stop strings. */
export const GENERATE_DEFAULTS = {
  maxNewTokens: 128,
  temperature: 0,
  topK: 0,
  topP: 1,
  seed: 0,
  repetitionPenalty: 1,
} as const;

/** Why generation ended: an end-of-sequence token, a stop string, maxNewTokens, or the model's context. */
export type StopReason = "eos" | "stop" | "length" | "context";

export interface GenerateResult {
  /** Prompt and generated text (without the stop string when one ended it). */
  text: string;
  promptTokens: number;
  newTokens: number;
  /** Token ids: prompt then generated. */
  ids: number[];
  stoppedBy: StopReason;
  /** The model's context length when stoppedBy is "context". */
  contextLength: number;
  prefillSeconds: number;
  decodeSeconds: number;
}

/** Applies transformers' repetition penalty in place to the logits of the tokens in `seen`. */
export function applyRepetitionPenalty(logits: Float32Array, seen: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const id of seen) {
    const z = logits[id];
    logits[id] = z < 0 ? z * penalty : z / penalty;
  }
}

/** How much of `text` (from `from`) can be shown: all of it unless its end could begin a stop string. */
function safeEnd(text: string, from: number, stop: readonly string[]): number {
  let end = text.length;
  for (const s of stop) {
    for (let k = Math.min(s.length - 1, text.length - from); k > 0; k--) {
      if (s.startsWith(text.slice(text.length - k))) {
        end = Math.min(end, text.length - k);
        break;
      }
    }
  }
  return end;
}

export async function generate(
  model: LlamaModel,
  tokenizer: Tokenizer,
  prompt: string,
  options: GenerateOptions = {},
): Promise<GenerateResult> {
  const o = { ...GENERATE_DEFAULTS, ...options };
  validateSampling(o);
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 0) {
    throw new UsageError("usage.max_new_tokens", `--max-new-tokens must be an integer ≥ 0, got ${o.maxNewTokens}`);
  }
  if (!(o.repetitionPenalty > 0) || !Number.isFinite(o.repetitionPenalty)) {
    throw new UsageError("usage.repetition_penalty", `--repetition-penalty must be > 0, got ${o.repetitionPenalty}`);
  }
  const stop = (o.stop ?? []).filter((s) => s.length > 0);
  const ids = tokenizer.encode(prompt);
  if (ids.length === 0) throw new UsageError("usage.prompt", "the prompt encodes to no tokens");
  const context = model.config.maxPositionEmbeddings;
  if (ids.length > context) {
    throw new UsageError("usage.prompt", `the prompt has ${ids.length} tokens; the model's context is ${context}`);
  }
  const capacity = Math.min(ids.length + o.maxNewTokens, context);
  const eos = new Set([...model.config.eosTokenIds, ...tokenizer.eosTokenIds]);
  const rng = new Rng(o.seed);
  const be = model.backend;
  const cache = model.createCache(1, capacity);
  const promptText = tokenizer.decode(ids);
  let emitted = promptText;
  o.onText?.(emitted);
  let stoppedBy: StopReason = "length";
  const promptTokens = ids.length;
  const seen = new Set(ids);
  let input = Int32Array.from(ids);
  let stopAt = -1;
  const t0 = performance.now();
  let t1 = t0;
  try {
    while (ids.length - promptTokens < o.maxNewTokens) {
      if (cache.length + input.length > capacity) {
        stoppedBy = "context";
        break;
      }
      const { logits } = model.forward(input, 1, input.length, { cache, lastOnly: true });
      const row = (await be.read(logits)).slice();
      be.dispose(logits);
      if (ids.length === promptTokens) t1 = performance.now();
      applyRepetitionPenalty(row, seen, o.repetitionPenalty);
      const next = sampleToken(row, o, rng);
      if (eos.has(next)) {
        stoppedBy = "eos";
        break;
      }
      ids.push(next);
      seen.add(next);
      const text = tokenizer.decode(ids);
      if (stop.length > 0) {
        const hit = Math.min(
          ...stop.map((s) => text.indexOf(s, promptText.length)).map((i) => (i < 0 ? Number.POSITIVE_INFINITY : i)),
        );
        if (Number.isFinite(hit)) {
          stopAt = hit;
          stoppedBy = "stop";
          break;
        }
      }
      if (text.startsWith(emitted) && !text.endsWith("\uFFFD")) {
        const end = stop.length > 0 ? safeEnd(text, emitted.length, stop) : text.length;
        if (end > emitted.length) {
          o.onText?.(text.slice(emitted.length, end));
          emitted = text.slice(0, end);
        }
      }
      input = Int32Array.of(next);
    }
  } finally {
    cache.dispose();
  }
  let text = tokenizer.decode(ids);
  if (stopAt >= 0) text = text.slice(0, stopAt);
  if (text.startsWith(emitted) && text.length > emitted.length) o.onText?.(text.slice(emitted.length));
  const t2 = performance.now();
  return {
    text,
    promptTokens,
    newTokens: ids.length - promptTokens,
    ids,
    stoppedBy,
    contextLength: context,
    prefillSeconds: (t1 - t0) / 1000,
    decodeSeconds: (t2 - t1) / 1000,
  };
}

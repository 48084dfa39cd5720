// Self-generated distillation data (LLM-QAT's recipe, which ClusComp's recover/generate_data.py follows): each
// sample starts from a token drawn uniformly from the vocabulary, continues with 3–5 greedy tokens, then is sampled
// (temperature τ, the full distribution) up to the window length or an end-of-sequence token. Seeded; written as
// JSONL {"ids": [...]} (token ids, so no re-tokenization drifts), atomically.

import { UsageError } from "../errors.js";
import { argmax, sampleToken } from "../generate/sampling.js";
import { writeFileAtomic } from "../io/atomic.js";
import type { Tokenizer } from "../io/tokenizer.js";
import type { LlamaModel } from "../model/llama.js";
import { Rng } from "../tensor/rng.js";

export interface GenerateDataOptions {
  samples: number;
  seqlen: number;
  seed: number;
  /** Sampling temperature after the greedy start (default 1). */
  temperature?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Generates the samples and writes them to `out` (JSONL, one {"ids"} per line); returns the token count. */
export async function generateDistillationData(
  model: LlamaModel,
  tokenizer: Tokenizer,
  out: string,
  o: GenerateDataOptions,
): Promise<{ samples: number; tokens: number }> {
  const V = model.config.vocabSize;
  if (!Number.isInteger(o.samples) || o.samples < 1)
    throw new UsageError("data.samples", `--samples must be an integer ≥ 1, got ${o.samples}`);
  if (!Number.isInteger(o.seqlen) || o.seqlen < 2 || o.seqlen > model.config.maxPositionEmbeddings) {
    throw new UsageError(
      "data.seqlen",
      `--seqlen must be an integer in 2..${model.config.maxPositionEmbeddings}, got ${o.seqlen}`,
    );
  }
  const temperature = o.temperature ?? 1;
  if (!(temperature > 0)) throw new UsageError("data.temperature", `--temperature must be > 0, got ${temperature}`);
  const eos = new Set([...model.config.eosTokenIds, ...tokenizer.eosTokenIds]);
  const rng = new Rng(o.seed);
  const be = model.backend;
  const lines: string[] = [];
  let tokens = 0;
  for (let s = 0; s < o.samples; s++) {
    let first = rng.int(V);
    while (eos.has(first)) first = rng.int(V);
    const ids = [first];
    const greedy = 3 + rng.int(3);
    const cache = model.createCache(1, o.seqlen);
    try {
      let input = Int32Array.of(first);
      while (ids.length < o.seqlen) {
        const { logits } = model.forward(input, 1, input.length, { cache, lastOnly: true });
        const row = (await be.read(logits)).slice();
        be.dispose(logits);
        const next = ids.length <= greedy ? argmax(row) : sampleToken(row, { temperature, topK: 0, topP: 1 }, rng);
        ids.push(next);
        if (eos.has(next)) break;
        input = Int32Array.of(next);
      }
    } finally {
      cache.dispose();
    }
    tokens += ids.length;
    lines.push(JSON.stringify({ ids }));
    o.onProgress?.(s + 1, o.samples);
  }
  writeFileAtomic(out, `${lines.join("\n")}\n`);
  return { samples: o.samples, tokens };
}

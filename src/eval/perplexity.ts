// Perplexity, the GPTQ-style protocol of ../shared/README.md: tokenize the whole text once (special tokens per
// the post-processor), cut into n = ⌊len/seqlen⌋ non-overlapping windows, score tokens 1..seqlen−1 of each window
// given the tokens before them in that window, ppl = exp(ΣNLL / (n·(seqlen−1))), accumulated in float64.

import { ModelError, UsageError } from "../errors.js";
import type { LlamaModel } from "../model/llama.js";

export interface PerplexityOptions {
  seqlen: number;
  /** Score only the first N windows (bounds work); default all. */
  maxWindows?: number;
  /** Windows per forward pass. */
  batchSize?: number;
  onProgress?: (p: { windowsDone: number; windowsTotal: number; tokensDone: number }) => void;
}

export interface PerplexityResult {
  ppl: number;
  meanNll: number;
  windows: number;
  /** Token ids in the whole text (before windowing). */
  tokens: number;
  /** Tokens scored: windows · (seqlen − 1). */
  scored: number;
  seqlen: number;
}

export async function perplexity(
  model: LlamaModel,
  ids: ArrayLike<number>,
  opts: PerplexityOptions,
): Promise<PerplexityResult> {
  const L = opts.seqlen;
  if (!Number.isInteger(L) || L < 2) throw new UsageError("usage.seqlen", `--seqlen must be an integer ≥ 2, got ${L}`);
  if (L > model.config.maxPositionEmbeddings) {
    throw new UsageError(
      "usage.seqlen",
      `--seqlen ${L} exceeds the model's max_position_embeddings (${model.config.maxPositionEmbeddings})`,
    );
  }
  let n = Math.floor(ids.length / L);
  if (opts.maxWindows !== undefined) n = Math.min(n, opts.maxWindows);
  if (n < 1) {
    throw new UsageError("usage.too_short", `the text has ${ids.length} tokens, fewer than one window of ${L}`);
  }
  const batch = Math.max(1, Math.min(opts.batchSize ?? 1, n));
  const be = model.backend;
  let totalNll = 0;
  for (let w0 = 0; w0 < n; w0 += batch) {
    const B = Math.min(batch, n - w0);
    const input = new Int32Array(B * L);
    const targets = new Int32Array(B * L);
    for (let b = 0; b < B; b++) {
      const off = (w0 + b) * L;
      for (let t = 0; t < L; t++) {
        input[b * L + t] = ids[off + t];
        targets[b * L + t] = t + 1 < L ? ids[off + t + 1] : -1;
      }
    }
    const { logits } = model.forward(input, B, L);
    const tgt = be.uploadInt(targets, [B, L]);
    const nllT = be.cross_entropy(logits, tgt);
    be.dispose(logits);
    be.dispose(tgt);
    const nll = await be.read(nllT);
    be.dispose(nllT);
    for (let i = 0; i < nll.length; i++) {
      if (!Number.isFinite(nll[i])) {
        const w = w0 + Math.floor(i / L);
        throw new ModelError(
          "model.non_finite",
          `the loss is not finite (${nll[i]}) at window ${w} (tokens ${w * L}..${w * L + L - 1}), position ${i % L}: the model's weights or config produce non-finite logits`,
        );
      }
      totalNll += nll[i];
    }
    opts.onProgress?.({ windowsDone: w0 + B, windowsTotal: n, tokensDone: (w0 + B) * L });
  }
  const scored = n * (L - 1);
  const meanNll = totalNll / scored;
  return { ppl: Math.exp(meanNll), meanNll, windows: n, tokens: ids.length, scored, seqlen: L };
}

// How far a (compressed) model's next-token distributions are from a reference model's on the same text, as
// llama.cpp's `perplexity --kl-divergence` reports it: per scored token, KL(P_ref ‖ P_model) = Σ_v p_ref(v) ·
// (log p_ref(v) − log p_model(v)) in nats, and whether both put their top-1 on the same token; beside both
// perplexities. Windows and scored positions follow the perplexity protocol (eval/perplexity.ts). Logits are
// computed and read a chunk of rows at a time, so no [T, V] tensor of a large vocabulary is held whole; sums in
// float64.

import { ModelError, UsageError } from "../errors.js";
import type { LlamaModel } from "../model/llama.js";
import type { PerplexityOptions } from "./perplexity.js";

export interface DivergenceResult {
  /** Perplexity of the model and of the reference over the same scored tokens. */
  ppl: number;
  referencePpl: number;
  meanNll: number;
  /** Mean KL(P_ref ‖ P_model) per scored token, nats. */
  kl: number;
  /** Median and 99th percentile of the per-token KL, and its maximum. */
  klMedian: number;
  klP99: number;
  klMax: number;
  /** Fraction of scored tokens where the model's most likely next token is the reference's. */
  top1: number;
  windows: number;
  tokens: number;
  scored: number;
  seqlen: number;
}

/** Rows of logits computed and read at a time. */
const CHUNK_ROWS = 64;

function logSumExp(z: Float32Array, off: number, V: number): { lse: number; arg: number } {
  let max = Number.NEGATIVE_INFINITY;
  let arg = 0;
  for (let v = 0; v < V; v++) {
    if (z[off + v] > max) {
      max = z[off + v];
      arg = v;
    }
  }
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(z[off + v] - max);
  return { lse: max + Math.log(s), arg };
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export async function divergence(
  model: LlamaModel,
  reference: LlamaModel,
  ids: ArrayLike<number>,
  opts: Omit<PerplexityOptions, "batchSize">,
): Promise<DivergenceResult> {
  const L = opts.seqlen;
  const V = model.config.vocabSize;
  if (reference.config.vocabSize !== V) {
    throw new UsageError(
      "usage.reference",
      `the reference model's vocabulary has ${reference.config.vocabSize} tokens, this model's ${V}: they cannot be compared token by token`,
    );
  }
  if (!Number.isInteger(L) || L < 2) throw new UsageError("usage.seqlen", `--seqlen must be an integer ≥ 2, got ${L}`);
  const ctx = Math.min(model.config.maxPositionEmbeddings, reference.config.maxPositionEmbeddings);
  if (L > ctx) throw new UsageError("usage.seqlen", `--seqlen ${L} exceeds the models' context (${ctx})`);
  let n = Math.floor(ids.length / L);
  if (opts.maxWindows !== undefined) n = Math.min(n, opts.maxWindows);
  if (n < 1)
    throw new UsageError("usage.too_short", `the text has ${ids.length} tokens, fewer than one window of ${L}`);
  const scored = n * (L - 1);
  const kls = new Float64Array(scored);
  let nll = 0;
  let refNll = 0;
  let agree = 0;
  let k = 0;
  for (let w = 0; w < n; w++) {
    const input = new Int32Array(L);
    for (let t = 0; t < L; t++) input[t] = ids[w * L + t];
    const hq = model.hidden(input, 1, L);
    const hr = reference.hidden(input, 1, L);
    try {
      for (let t0 = 0; t0 < L - 1; t0 += CHUNK_ROWS) {
        const rows = Math.min(CHUNK_ROWS, L - 1 - t0);
        const read = async (m: LlamaModel, h: typeof hq) => {
          const part = m.backend.narrow(h, t0, rows);
          const logits = m.head(part);
          m.backend.dispose(part);
          const z = (await m.backend.read(logits)).slice();
          m.backend.dispose(logits);
          return z;
        };
        const zq = await read(model, hq);
        const zr = await read(reference, hr);
        for (let r = 0; r < rows; r++) {
          const off = r * V;
          const target = input[t0 + r + 1];
          const q = logSumExp(zq, off, V);
          const p = logSumExp(zr, off, V);
          let kl = 0;
          for (let v = 0; v < V; v++) {
            const lp = zr[off + v] - p.lse;
            kl += Math.exp(lp) * (lp - (zq[off + v] - q.lse));
          }
          if (!Number.isFinite(kl)) {
            throw new ModelError(
              "model.non_finite",
              `the KL divergence is not finite at window ${w}, position ${t0 + r} (non-finite logits)`,
            );
          }
          kls[k++] = Math.max(0, kl);
          nll += q.lse - zq[off + target];
          refNll += p.lse - zr[off + target];
          if (q.arg === p.arg) agree++;
        }
      }
    } finally {
      model.backend.dispose(hq);
      reference.backend.dispose(hr);
    }
    opts.onProgress?.({ windowsDone: w + 1, windowsTotal: n, tokensDone: (w + 1) * L });
  }
  let sum = 0;
  for (const x of kls) sum += x;
  const sorted = kls.slice().sort();
  return {
    ppl: Math.exp(nll / scored),
    referencePpl: Math.exp(refNll / scored),
    meanNll: nll / scored,
    kl: sum / scored,
    klMedian: quantile(sorted, 0.5),
    klP99: quantile(sorted, 0.99),
    klMax: sorted[sorted.length - 1],
    top1: agree / scored,
    windows: n,
    tokens: ids.length,
    scored,
    seqlen: L,
  };
}

// Calibration windows for block-wise tuning: N random windows of L tokens from a text, seeded (the reference
// samples 128 windows of 2048 tokens), and H held-out windows from the end of the text that training never sees.
// A .jsonl file is read as documents ({"text": …}, or the C4 excerpt's {"prefix", "gold_completion"}), joined by
// blank lines into one text; any other file is plain UTF-8 text (io/text.ts). The text is tokenized once (as the
// perplexity protocol does) and training window starts are drawn uniformly before the held-out tail.

import { DataError, UsageError } from "../errors.js";
import { readTextFile } from "../io/text.js";
import type { Tokenizer } from "../io/tokenizer.js";
import { Rng } from "../tensor/rng.js";

export interface CalibrationOptions {
  samples: number;
  /** Held-out windows: the last `holdout` non-overlapping windows of the text, never drawn for training. */
  holdout?: number;
  seqlen: number;
  seed: number;
}

/** The text of a calibration file (jsonl documents joined by blank lines, or the file as is). */
export function readCalibrationText(file: string): string {
  return readTextFile(file, "calibration file");
}

/**
 * N training windows of L token ids each, drawn with the seed from the text before the held-out tail, and the
 * H held-out windows that tile that tail (the last H·L tokens).
 */
export function calibrationWindows(
  text: string,
  tokenizer: Tokenizer,
  o: CalibrationOptions,
): { train: Int32Array[]; heldout: Int32Array[] } {
  const H = o.holdout ?? 0;
  if (!Number.isInteger(o.samples) || o.samples < 1)
    throw new UsageError("calib.samples", `--calib-samples must be an integer ≥ 1, got ${o.samples}`);
  if (!Number.isInteger(H) || H < 0)
    throw new UsageError("calib.holdout", `--calib-holdout must be an integer ≥ 0, got ${H}`);
  if (!Number.isInteger(o.seqlen) || o.seqlen < 1)
    throw new UsageError("calib.seqlen", `--calib-seqlen must be an integer ≥ 1, got ${o.seqlen}`);
  const ids = tokenizer.encode(text);
  const trainEnd = ids.length - H * o.seqlen;
  if (trainEnd < o.seqlen) {
    throw new DataError(
      "calib.short",
      H > 0
        ? `calibration text has ${ids.length} tokens, fewer than ${H} held-out windows of ${o.seqlen} plus one to train on; use a longer text, a smaller --calib-seqlen or fewer --calib-holdout`
        : `calibration text has ${ids.length} tokens, fewer than one window of ${o.seqlen}; use a longer text or a smaller --calib-seqlen`,
    );
  }
  const rng = new Rng(o.seed);
  const train: Int32Array[] = [];
  for (let s = 0; s < o.samples; s++) {
    const start = rng.int(trainEnd - o.seqlen + 1);
    train.push(Int32Array.from(ids.slice(start, start + o.seqlen)));
  }
  const heldout: Int32Array[] = [];
  for (let h = 0; h < H; h++) {
    const start = trainEnd + h * o.seqlen;
    heldout.push(Int32Array.from(ids.slice(start, start + o.seqlen)));
  }
  return { train, heldout };
}

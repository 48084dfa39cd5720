// Calibration windows for block-wise tuning: N random windows of L tokens from a text, seeded (the reference
// samples 128 windows of 2048 tokens). A .jsonl file is read as documents ({"text": …}, or the C4 excerpt's
// {"prefix", "gold_completion"}), joined by blank lines into one text; any other file is plain UTF-8 text. The
// text is tokenized once (as the perplexity protocol does) and window starts are drawn uniformly.

import * as fs from "node:fs";
import { UsageError } from "../errors.js";
import type { Tokenizer } from "../io/tokenizer.js";
import { Rng } from "../tensor/rng.js";

export interface CalibrationOptions {
  samples: number;
  seqlen: number;
  seed: number;
}

/** The text of a calibration file (jsonl documents joined by blank lines, or the file as is). */
export function readCalibrationText(file: string): string {
  if (!fs.existsSync(file)) throw new UsageError("calib.missing", `calibration file ${file} does not exist`);
  const raw = fs.readFileSync(file, "utf8");
  if (!file.endsWith(".jsonl")) return raw;
  const docs: string[] = [];
  raw.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      throw new UsageError("calib.jsonl", `${file}:${i + 1}: not valid JSON`);
    }
    const rec = (typeof o === "object" && o !== null ? o : {}) as Record<string, unknown>;
    if (typeof rec.text === "string") docs.push(rec.text);
    else if (typeof rec.prefix === "string")
      docs.push(rec.prefix + (typeof rec.gold_completion === "string" ? rec.gold_completion : ""));
    else throw new UsageError("calib.jsonl", `${file}:${i + 1}: expected a "text" or "prefix" string field`);
  });
  return docs.join("\n\n");
}

/** N windows of L token ids each, seeded. */
export function calibrationWindows(text: string, tokenizer: Tokenizer, o: CalibrationOptions): Int32Array[] {
  if (!Number.isInteger(o.samples) || o.samples < 1)
    throw new UsageError("calib.samples", `--calib-samples must be an integer ≥ 1, got ${o.samples}`);
  if (!Number.isInteger(o.seqlen) || o.seqlen < 1)
    throw new UsageError("calib.seqlen", `--calib-seqlen must be an integer ≥ 1, got ${o.seqlen}`);
  const ids = tokenizer.encode(text);
  if (ids.length < o.seqlen) {
    throw new UsageError(
      "calib.short",
      `calibration text has ${ids.length} tokens, fewer than one window of ${o.seqlen}; use a longer text or a smaller --calib-seqlen`,
    );
  }
  const rng = new Rng(o.seed);
  const windows: Int32Array[] = [];
  for (let s = 0; s < o.samples; s++) {
    const start = rng.int(ids.length - o.seqlen + 1);
    windows.push(Int32Array.from(ids.slice(start, start + o.seqlen)));
  }
  return windows;
}

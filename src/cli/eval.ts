// cluscomp eval --model DIR --data FILE [--seqlen N] [--max-windows N] [--batch-size N] [--json] [--backend B]

import * as fs from "node:fs";
import { UsageError } from "../errors.js";
import { loadModel, loadTokenizer, perplexity } from "../index.js";
import { BACKEND_OPTION, backendFromArgs, flag, intOpt, parse, str } from "./args.js";
import { ProgressBar } from "./progress.js";

export const EVAL_HELP = `cluscomp eval --model DIR --data FILE [options]
  Perplexity of a text (GPTQ-style protocol: whole-text tokenization, non-overlapping windows).
  --model DIR         model directory
  --data FILE         UTF-8 text file
  --seqlen N          window length (default: min(2048, max_position_embeddings))
  --max-windows N     score only the first N windows
  --batch-size N      windows per forward pass (default 1)
  --backend NAME      cpu | reference | auto (default auto)
  --threads N         CPU threads (default: every core)
  --json              print one JSON object {ppl, meanNll, windows, tokens, seqlen, seconds} on stdout`;

export function readText(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    throw new UsageError("usage.data", `${file}: cannot read the data file`);
  }
}

export async function evalCommand(argv: string[]): Promise<void> {
  const a = parse(
    argv,
    {
      model: { type: "string" },
      data: { type: "string" },
      seqlen: { type: "string" },
      "max-windows": { type: "string" },
      "batch-size": { type: "string" },
      json: { type: "boolean" },
      ...BACKEND_OPTION,
    },
    "eval",
  );
  const dir = str(a, "model", "eval");
  const text = readText(str(a, "data", "eval"));
  const json = flag(a, "json");
  const t0 = performance.now();
  const backend = await backendFromArgs(a, "eval", [dir]);
  const { config, model } = loadModel(dir, backend);
  const tokenizer = loadTokenizer(dir);
  const ids = tokenizer.encode(text);
  const seqlen = intOpt(a, "seqlen", Math.min(2048, config.maxPositionEmbeddings), 2);
  const maxWindows = a.values["max-windows"] === undefined ? undefined : intOpt(a, "max-windows", 0, 1);
  const nWindows = Math.min(Math.floor(ids.length / seqlen), maxWindows ?? Number.POSITIVE_INFINITY);
  const bar = new ProgressBar({ label: "eval", total: nWindows, unit: "win" });
  const r = await perplexity(model, ids, {
    seqlen,
    maxWindows,
    batchSize: intOpt(a, "batch-size", 1, 1),
    onProgress: (p) => bar.update(p.windowsDone),
  });
  const seconds = (performance.now() - t0) / 1000;
  const out = {
    ppl: r.ppl,
    meanNll: r.meanNll,
    windows: r.windows,
    tokens: r.tokens,
    seqlen: r.seqlen,
    seconds,
    backend: backend.name,
    device: backend.describe(),
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } else {
    process.stdout.write(
      `perplexity ${r.ppl.toFixed(4)} (mean NLL ${r.meanNll.toFixed(6)}) over ${r.windows} windows of ${r.seqlen} ` +
        `(${r.tokens} tokens in the text) in ${seconds.toFixed(1)}s on ${backend.name} (${backend.describe()})\n`,
    );
  }
}

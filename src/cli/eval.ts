// cluscomp eval --model DIR (--data FILE [--reference DIR] [--seqlen N] [--max-windows N] [--batch-size N] |
//                             --task FILE [--max-examples N] [--max-new-tokens N]) [--json]

import {
  divergence,
  exactMatch,
  loadModel,
  loadTokenizer,
  perplexity,
  readTaskFile,
  readTextFile,
  resolveModelPath,
} from "../index.js";
import {
  allowUnused,
  applyAdapter,
  BACKEND_HELP,
  BACKEND_OPTION,
  backendFromArgs,
  flag,
  intOpt,
  optStr,
  type ParsedArgs,
  parse,
  str,
  usage,
} from "./args.js";
import { ProgressBar } from "./progress.js";

export const EVAL_HELP = `cluscomp eval --model DIR (--data FILE | --task FILE) [options]
  Perplexity of a text (GPTQ-style protocol: whole-text tokenization, non-overlapping windows); with --reference,
  also how far the model's next-token distributions are from the reference model's. With --task, accuracy by
  exact match instead.
  --model DIR         model directory (or a Hugging Face hub id in the local cache)
  --data FILE         UTF-8 text, or .jsonl documents ("text", or "prefix" + "gold_completion") joined by blank lines
  --adapter DIR       a LoRA adapter in PEFT's layout (from cluscomp train --train lora) applied to the model
  --reference DIR     the original model: report KL(reference ‖ model) per token (mean, median, 99 %, max, in
                      nats), top-1 agreement and the reference's perplexity on the same windows
  --seqlen N          window length (default: min(2048, max_position_embeddings))
  --max-windows N     score only the first N windows
  --batch-size N      windows per forward pass (default 1; not with --reference)
  --task FILE         .jsonl of {"prompt", "completion"}: greedy decoding from each prompt until EOS, a newline or
                      --max-new-tokens (default 16); correct when the text equals the completion (both trimmed)
  --max-examples N    score only the first N items of --task
${BACKEND_HELP}
  --json              print one JSON object {ppl, meanNll, windows, tokens, seqlen, seconds, …} on stdout`;

export async function evalCommand(argv: string[]): Promise<void> {
  const a = parse(
    argv,
    {
      model: { type: "string" },
      data: { type: "string" },
      reference: { type: "string" },
      seqlen: { type: "string" },
      "max-windows": { type: "string" },
      "batch-size": { type: "string" },
      adapter: { type: "string" },
      task: { type: "string" },
      "max-examples": { type: "string" },
      "max-new-tokens": { type: "string" },
      json: { type: "boolean" },
      ...BACKEND_OPTION,
    },
    "eval",
  );
  const dir = resolveModelPath(str(a, "model", "eval"), "--model");
  const task = optStr(a, "task");
  if (task !== undefined) return taskCommand(a, dir, task);
  for (const f of ["max-examples", "max-new-tokens"])
    if (a.values[f] !== undefined) usage("usage.flag", `eval: --${f} applies only with --task`);
  const refArg = optStr(a, "reference");
  const refDir = refArg === undefined ? undefined : resolveModelPath(refArg, "--reference");
  const text = readTextFile(str(a, "data", "eval"), "--data");
  const json = flag(a, "json");
  const seqlenArg = a.values.seqlen === undefined ? undefined : intOpt(a, "seqlen", 2, 2);
  const maxWindows = a.values["max-windows"] === undefined ? undefined : intOpt(a, "max-windows", 0, 1);
  const batchSize = intOpt(a, "batch-size", 1, 1);
  if (refDir !== undefined && a.values["batch-size"] !== undefined)
    usage("usage.flag", "eval: --batch-size does not apply with --reference (windows are compared one at a time)");
  const t0 = performance.now();
  const backend = await backendFromArgs(a, "eval", refDir === undefined ? [dir] : [dir, refDir]);
  const { config, model } = loadModel(dir, backend, { allowUnused: allowUnused(a) });
  applyAdapter(a, model, dir);
  const ids = loadTokenizer(dir).encode(text);
  const seqlen = seqlenArg ?? Math.min(2048, config.maxPositionEmbeddings);
  const nWindows = Math.min(Math.floor(ids.length / seqlen), maxWindows ?? Number.POSITIVE_INFINITY);
  const bar = new ProgressBar({ label: `eval (windows of ${seqlen})`, total: nWindows, unit: "win" });
  const onProgress = (p: { windowsDone: number }) => bar.update(p.windowsDone);
  const where = { backend: backend.name, device: backend.describe() };
  if (refDir === undefined) {
    const r = await perplexity(model, ids, { seqlen, maxWindows, batchSize, onProgress });
    const seconds = (performance.now() - t0) / 1000;
    const out = {
      ppl: r.ppl,
      meanNll: r.meanNll,
      windows: r.windows,
      tokens: r.tokens,
      seqlen: r.seqlen,
      seconds,
      ...where,
    };
    if (json) {
      process.stdout.write(`${JSON.stringify(out)}\n`);
    } else {
      process.stdout.write(
        `perplexity ${r.ppl.toFixed(4)} (mean NLL ${r.meanNll.toFixed(6)}) over ${r.windows} windows of ${r.seqlen} tokens ` +
          `(${r.tokens} tokens in the text) in ${seconds.toFixed(1)}s on ${backend.name} (${backend.describe()})\n`,
      );
    }
    return;
  }
  const refIds = loadTokenizer(refDir).encode(text);
  if (refIds.length !== ids.length || refIds.some((x, i) => x !== ids[i])) {
    usage(
      "usage.reference",
      `--reference ${refDir} tokenizes the text differently from ${dir}: the two models must share a tokenizer`,
    );
  }
  const { model: ref } = loadModel(refDir, backend, { allowUnused: allowUnused(a) });
  const r = await divergence(model, ref, ids, { seqlen, maxWindows, onProgress });
  const seconds = (performance.now() - t0) / 1000;
  if (json) {
    process.stdout.write(`${JSON.stringify({ ...r, reference: refDir, seconds, ...where })}\n`);
  } else {
    process.stdout.write(
      `perplexity ${r.ppl.toFixed(4)} (reference ${r.referencePpl.toFixed(4)}) over ${r.windows} windows of ${r.seqlen} tokens\n` +
        `KL(reference ‖ model) ${r.kl.toFixed(6)} nats/token (median ${r.klMedian.toFixed(6)}, 99 % ${r.klP99.toFixed(4)}, max ${r.klMax.toFixed(4)}); ` +
        `top-1 agreement ${(100 * r.top1).toFixed(2)} % over ${r.scored} tokens\n` +
        `in ${seconds.toFixed(1)}s on ${backend.name} (${backend.describe()})\n`,
    );
  }
}

async function taskCommand(a: ParsedArgs, dir: string, task: string): Promise<void> {
  for (const f of ["data", "reference", "seqlen", "max-windows", "batch-size"])
    if (a.values[f] !== undefined) usage("usage.flag", `eval: --${f} does not apply with --task`);
  const items = readTaskFile(task);
  const maxExamples = a.values["max-examples"] === undefined ? items.length : intOpt(a, "max-examples", 0, 1);
  const maxNewTokens = intOpt(a, "max-new-tokens", 16, 1);
  const json = flag(a, "json");
  const t0 = performance.now();
  const backend = await backendFromArgs(a, "eval", [dir]);
  const { model } = loadModel(dir, backend, { allowUnused: allowUnused(a) });
  applyAdapter(a, model, dir);
  const chosen = items.slice(0, maxExamples);
  const bar = new ProgressBar({ label: "eval (exact match)", total: chosen.length, unit: "item" });
  const r = await exactMatch(model, loadTokenizer(dir), chosen, {
    maxNewTokens,
    onProgress: (p) => bar.update(p.done, `${p.correct} correct`),
  });
  const seconds = (performance.now() - t0) / 1000;
  const where = { backend: backend.name, device: backend.describe() };
  if (json) {
    process.stdout.write(`${JSON.stringify({ ...r, task, seconds, ...where })}\n`);
    return;
  }
  const lines = [
    `accuracy ${(100 * r.accuracy).toFixed(2)} % (${r.correct} of ${r.total} exact matches) in ${seconds.toFixed(1)}s on ${backend.name} (${backend.describe()})`,
    ...r.mistakes.map(
      (m) => `  wrong: ${JSON.stringify(m.prompt)} → ${JSON.stringify(m.got)} (expected ${JSON.stringify(m.expected)})`,
    ),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

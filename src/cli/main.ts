#!/usr/bin/env node
// The cluscomp command line: a thin shell over the public API (src/index.ts), one file per command.

import { CluscompError, UsageError } from "../errors.js";
import { COMPARE_HELP, compareCommand } from "./compare.js";
import { COMPRESS_HELP, compressCommand } from "./compress.js";
import { DECOMPRESS_HELP, decompressCommand } from "./decompress.js";
import { EVAL_HELP, evalCommand } from "./eval.js";
import { FINETUNE_HELP, finetuneCommand } from "./finetune.js";
import { GENERATE_HELP, generateCommand } from "./generate.js";
import { GENERATE_DATA_HELP, generateDataCommand } from "./generate_data.js";
import { INSPECT_HELP, inspectCommand } from "./inspect.js";
import { TRAIN_HELP, trainCommand } from "./train.js";

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<void>; help: string }> = {
  inspect: { run: inspectCommand, help: INSPECT_HELP },
  compress: { run: compressCommand, help: COMPRESS_HELP },
  decompress: { run: decompressCommand, help: DECOMPRESS_HELP },
  finetune: { run: finetuneCommand, help: FINETUNE_HELP },
  train: { run: trainCommand, help: TRAIN_HELP },
  compare: { run: compareCommand, help: COMPARE_HELP },
  eval: { run: evalCommand, help: EVAL_HELP },
  generate: { run: generateCommand, help: GENERATE_HELP },
  "generate-data": { run: generateDataCommand, help: GENERATE_DATA_HELP },
};

const HELP = `cluscomp — ClusComp LLM compression in TypeScript

usage: cluscomp <command> [options]     (cluscomp <command> --help for its options)

commands:
  inspect    architecture, parameters, dtypes and bytes of a model directory
  compress   ClusComp (k-means codebooks) or RTN compression into a cluscomp checkpoint
  finetune   ClusComp stage 2: tune a compressed checkpoint's codebooks block by block
  train      end-to-end training: codebooks, norms, LoRA or all weights; cross-entropy or distillation
  decompress a dense Hugging Face checkpoint of a cluscomp model
  compare    compress with several settings, evaluate each: table + bits-vs-perplexity plot
  eval       perplexity of a text file; KL divergence and top-1 agreement against a reference model
  generate   continue a prompt (greedy or sampled), streaming to stdout
  generate-data  self-generated distillation data from a teacher (for train --loss kd)

--model takes a directory or a Hugging Face hub id found in the local Hugging Face cache.
Every compute command takes --backend (auto | cpu | webgpu | reference) and --threads N.
Exit codes: 0 done, 1 bad input (files, models, settings a model cannot meet), 2 bad usage (flags and values).`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "--help" || cmd === "-h" || cmd === "help") {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (cmd === "--version") {
    process.stdout.write("cluscomp 0.1.0\n");
    return 0;
  }
  const c = COMMANDS[cmd];
  if (!c) throw new UsageError("usage.command", `unknown command "${cmd}" (try cluscomp --help)`);
  if (rest.length === 0 || rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(`${c.help}\n`);
    return 0;
  }
  await c.run(rest);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof CluscompError) {
      process.stderr.write(`error: ${e.message}\n`);
      process.exitCode = e instanceof UsageError ? 2 : 1;
    } else {
      process.stderr.write(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 70;
    }
  },
);

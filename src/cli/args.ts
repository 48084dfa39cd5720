// Shared option parsing for the commands: typed getters over node:util parseArgs with usage errors that name
// the flag.

import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import type { Backend } from "../backend/backend.js";
import { createBackend } from "../backend/registry.js";
import { UsageError } from "../errors.js";
import { checkOutputDir } from "../io/atomic.js";
import type { LlamaModel } from "../model/llama.js";
import { checkModelDir } from "../model/load.js";
import { ADAPTER_CONFIG, loadAdapter } from "../train/lora.js";

/** Throws the usage error (exit code 2). */
export function usage(code: string, message: string): never {
  throw new UsageError(code, message);
}

export type OptionSpec = Record<
  string,
  { type: "string" | "boolean"; short?: string; default?: string | boolean; multiple?: boolean }
>;

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parse(argv: string[], spec: OptionSpec, command: string): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: spec, strict: true, allowPositionals: false });
    return { values: values as ParsedArgs["values"], positionals };
  } catch (e) {
    throw new UsageError("usage.args", `${command}: ${(e as Error).message} (see cluscomp ${command} --help)`);
  }
}

export function str(a: ParsedArgs, name: string, command: string): string {
  const v = a.values[name];
  if (typeof v !== "string" || v === "") throw new UsageError("usage.missing", `${command}: --${name} is required`);
  return v;
}

export function optStr(a: ParsedArgs, name: string): string | undefined {
  const v = a.values[name];
  return typeof v === "string" ? v : undefined;
}

export function flag(a: ParsedArgs, name: string): boolean {
  return a.values[name] === true;
}

export function intOpt(a: ParsedArgs, name: string, fallback: number, min = 0): number {
  const v = a.values[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== "string" || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError("usage.value", `--${name} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  }
  return n;
}

export function numOpt(a: ParsedArgs, name: string, fallback: number): number {
  const v = a.values[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !Number.isFinite(n)) {
    throw new UsageError("usage.value", `--${name} must be a number, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** The --backend / --threads lines of every compute command's help. */
export const BACKEND_HELP = `  --backend NAME       auto (default: WebGPU on a hardware GPU, else cpu) | cpu | webgpu | reference
  --threads N          CPU threads (default: every core)
  --allow-unused-tensors
                       load checkpoints with tensors their config does not use (warns; default: refuse)`;

/**
 * Checks an --out location before any work (see checkOutputDir) and says which stale temporaries of killed runs
 * it removed. Returns the directory to write (a symbolic link resolved).
 */
export function checkOutputArg(out: string): string {
  const loc = checkOutputDir(out);
  for (const r of loc.removed) process.stderr.write(`removed ${r}, left by a run that is no longer running\n`);
  return loc.dir;
}

export const BACKEND_OPTION: OptionSpec = {
  backend: { type: "string", default: "auto" },
  threads: { type: "string" },
  "allow-unused-tensors": { type: "boolean" },
};

/** Whether --allow-unused-tensors was given. */
export function allowUnused(a: ParsedArgs): boolean {
  return a.values["allow-unused-tensors"] === true;
}

/** Prints the warning for a checkpoint loaded with tensors its config does not use. */
export function warnUnused(dir: string, unused: string[]): void {
  if (unused.length === 0) return;
  process.stderr.write(
    `warning: ${dir} has ${unused.length} tensor${unused.length > 1 ? "s" : ""} its config does not use, ignored: ${unused.slice(0, 5).join(", ")}${unused.length > 5 ? ", …" : ""}\n`,
  );
}

/**
 * The backend named by --backend, with the CPU fast tier on --threads threads (default: every core). The command's
 * model directories are checked first (config and safetensors headers), so bad input is reported before a GPU is
 * opened.
 */
export function backendFromArgs(a: ParsedArgs, command: string, modelDirs: string[]): Promise<Backend> {
  const threads = a.values.threads === undefined ? undefined : intOpt(a, "threads", 1, 1);
  const name = str(a, "backend", command);
  for (const dir of modelDirs) warnUnused(dir, checkModelDir(dir, { allowUnused: allowUnused(a) }).unused);
  return createBackend(name, { threads });
}

/**
 * Applies --adapter DIR to the model; without it, a model directory that holds a LoRA adapter of its own (what
 * `train --train codebooks,lora` writes) gets a note on stderr, so nobody evaluates it without its adapter unaware.
 */
export function applyAdapter(a: ParsedArgs, model: LlamaModel, dir: string): void {
  const adapter = optStr(a, "adapter");
  if (adapter !== undefined) {
    loadAdapter(model, adapter);
    return;
  }
  if (fs.existsSync(path.join(dir, ADAPTER_CONFIG)))
    process.stderr.write(
      `note: ${dir} holds a LoRA adapter (${ADAPTER_CONFIG}) trained with it; add --adapter ${dir} to apply it\n`,
    );
}

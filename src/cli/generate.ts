// cluscomp generate --model DIR (--prompt TEXT | --prompt-file FILE|-) [sampling options] [--stop S …] [--json]

import * as fs from "node:fs";
import {
  decodeUtf8,
  GENERATE_DEFAULTS,
  generate,
  loadModel,
  loadTokenizer,
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
  numOpt,
  optStr,
  parse,
  str,
  usage,
} from "./args.js";

export const GENERATE_HELP = `cluscomp generate --model DIR (--prompt TEXT | --prompt-file FILE) [options]
  Streams a continuation of the prompt to stdout; a summary line (tokens, speed, backend, why it stopped) goes to
  stderr.
  --model DIR              model directory (or a Hugging Face hub id in the local cache)
  --adapter DIR       a LoRA adapter in PEFT's layout (from cluscomp train --train lora) applied to the model
  --prompt TEXT            prompt text
  --prompt-file FILE       read the prompt from a UTF-8 file; "-" reads standard input
  --max-new-tokens N       tokens to generate (default ${GENERATE_DEFAULTS.maxNewTokens})
  --temperature T          0 = greedy (default ${GENERATE_DEFAULTS.temperature})
  --top-k K                sample among the K most likely tokens; 0 = off (default 0)
  --top-p P                nucleus sampling threshold in (0, 1]; 1 = off (default 1)
  --repetition-penalty R   transformers' repetition_penalty: > 1 discourages tokens already in the text (default 1)
  --stop S                 stop when the new text contains S (repeatable); S itself is not printed
  --seed S                 sampling seed (default 0)
${BACKEND_HELP}
  --json                   print one JSON object {text, promptTokens, newTokens, tokensPerSecond, stoppedBy, …}
                           instead of streaming`;

const STOPPED: Record<string, string> = {
  eos: "stopped at the end-of-sequence token",
  stop: "stopped at a --stop string",
  length: "reached --max-new-tokens",
};

function readPrompt(file: string): string {
  if (file !== "-") return readTextFile(file, "--prompt-file");
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(0);
  } catch (e) {
    return usage("usage.prompt", `--prompt-file -: cannot read standard input (${(e as NodeJS.ErrnoException).code})`);
  }
  return decodeUtf8(bytes, "standard input");
}

export async function generateCommand(argv: string[]): Promise<void> {
  const a = parse(
    argv,
    {
      model: { type: "string" },
      prompt: { type: "string" },
      "prompt-file": { type: "string" },
      "max-new-tokens": { type: "string" },
      temperature: { type: "string" },
      "top-k": { type: "string" },
      "top-p": { type: "string" },
      "repetition-penalty": { type: "string" },
      stop: { type: "string", multiple: true },
      seed: { type: "string" },
      adapter: { type: "string" },
      json: { type: "boolean" },
      ...BACKEND_OPTION,
    },
    "generate",
  );
  const dir = resolveModelPath(str(a, "model", "generate"), "--model");
  const promptArg = optStr(a, "prompt");
  const promptFile = optStr(a, "prompt-file");
  if ((promptArg === undefined) === (promptFile === undefined))
    usage("usage.prompt", "generate: give --prompt TEXT or --prompt-file FILE (- for standard input), not both");
  const prompt = promptArg ?? readPrompt(promptFile!);
  if (prompt === "") usage("usage.prompt", "generate: the prompt is empty");
  const json = flag(a, "json");
  const options = {
    maxNewTokens: intOpt(a, "max-new-tokens", GENERATE_DEFAULTS.maxNewTokens),
    temperature: numOpt(a, "temperature", GENERATE_DEFAULTS.temperature),
    topK: intOpt(a, "top-k", GENERATE_DEFAULTS.topK),
    topP: numOpt(a, "top-p", GENERATE_DEFAULTS.topP),
    repetitionPenalty: numOpt(a, "repetition-penalty", GENERATE_DEFAULTS.repetitionPenalty),
    stop: (a.values.stop as string[] | undefined) ?? [],
    seed: intOpt(a, "seed", GENERATE_DEFAULTS.seed),
  };
  if (!(options.repetitionPenalty > 0))
    usage("usage.value", `--repetition-penalty must be > 0, got ${options.repetitionPenalty}`);
  if (options.stop.some((s) => s === "")) usage("usage.value", "--stop strings must not be empty");
  const backend = await backendFromArgs(a, "generate", [dir]);
  const { model } = loadModel(dir, backend, { allowUnused: allowUnused(a) });
  applyAdapter(a, model, dir);
  const tokenizer = loadTokenizer(dir);
  const r = await generate(model, tokenizer, prompt, {
    ...options,
    onText: json ? undefined : (t) => process.stdout.write(t),
  });
  const tps = r.newTokens / Math.max(r.decodeSeconds, 1e-9);
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ text: r.text, promptTokens: r.promptTokens, newTokens: r.newTokens, tokensPerSecond: tps, stoppedBy: r.stoppedBy, backend: backend.name, device: backend.describe() })}\n`,
    );
  } else {
    process.stdout.write("\n");
    const why =
      r.stoppedBy === "context"
        ? `the model's context (${r.contextLength} tokens) is full: the text ends there`
        : STOPPED[r.stoppedBy];
    process.stderr.write(
      `[${r.promptTokens} prompt + ${r.newTokens} new tokens, ${tps.toFixed(1)} tok/s on ${backend.name} (${backend.describe()}); ${why}]\n`,
    );
  }
}

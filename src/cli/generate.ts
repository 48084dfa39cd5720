// cluscomp generate --model DIR --prompt TEXT [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]

import { generate, loadModel, loadTokenizer } from "../index.js";
import { BACKEND_OPTION, backendFromArgs, flag, intOpt, numOpt, parse, str } from "./args.js";

export const GENERATE_HELP = `cluscomp generate --model DIR --prompt TEXT [options]
  Streams a continuation of the prompt to stdout.
  --model DIR          model directory
  --prompt TEXT        prompt text
  --max-new-tokens N   tokens to generate (default 128)
  --temperature T      0 = greedy (default 0)
  --top-k K            sample among the K most likely tokens; 0 = off (default 0)
  --top-p P            nucleus sampling threshold in (0, 1]; 1 = off (default 1)
  --seed S             sampling seed (default 0)
  --backend NAME       cpu | reference | auto (default auto)
  --threads N          CPU threads (default: every core)
  --json               print one JSON object {text, promptTokens, newTokens, tokensPerSecond} instead of streaming`;

export async function generateCommand(argv: string[]): Promise<void> {
  const a = parse(
    argv,
    {
      model: { type: "string" },
      prompt: { type: "string" },
      "max-new-tokens": { type: "string" },
      temperature: { type: "string" },
      "top-k": { type: "string" },
      "top-p": { type: "string" },
      seed: { type: "string" },
      json: { type: "boolean" },
      ...BACKEND_OPTION,
    },
    "generate",
  );
  const dir = str(a, "model", "generate");
  const prompt = str(a, "prompt", "generate");
  const json = flag(a, "json");
  const backend = await backendFromArgs(a, "generate", [dir]);
  const { model } = loadModel(dir, backend);
  const tokenizer = loadTokenizer(dir);
  const r = await generate(model, tokenizer, prompt, {
    maxNewTokens: intOpt(a, "max-new-tokens", 128),
    temperature: numOpt(a, "temperature", 0),
    topK: intOpt(a, "top-k", 0),
    topP: numOpt(a, "top-p", 1),
    seed: intOpt(a, "seed", 0),
    onText: json ? undefined : (t) => process.stdout.write(t),
  });
  const tps = r.newTokens / Math.max(r.decodeSeconds, 1e-9);
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ text: r.text, promptTokens: r.promptTokens, newTokens: r.newTokens, tokensPerSecond: tps })}\n`,
    );
  } else {
    process.stdout.write("\n");
    process.stderr.write(
      `[${r.promptTokens} prompt + ${r.newTokens} new tokens, ${tps.toFixed(1)} tok/s${r.stoppedByEos ? ", stopped at EOS" : ""}]\n`,
    );
  }
}

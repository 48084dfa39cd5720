// Task accuracy by exact match: for each {"prompt", "completion"} item, greedy decoding from the prompt until an
// end-of-sequence token, a newline or maxNewTokens, and the generated text compared with the completion, both
// trimmed of surrounding whitespace (" 85" and "85" match; "85 apples" does not).

import { UsageError } from "../errors.js";
import { generate } from "../generate/generate.js";
import type { Tokenizer } from "../io/tokenizer.js";
import type { LlamaModel } from "../model/llama.js";
import type { TaskItem } from "../train/data.js";

export interface ExactMatchOptions {
  /** Tokens generated at most per item (default 16). */
  maxNewTokens?: number;
  onProgress?: (p: { done: number; correct: number }) => void;
}

export interface ExactMatchResult {
  accuracy: number;
  correct: number;
  total: number;
  /** The first few wrong answers, for a look at what the model does. */
  mistakes: { prompt: string; expected: string; got: string }[];
}

export async function exactMatch(
  model: LlamaModel,
  tokenizer: Tokenizer,
  items: readonly TaskItem[],
  o: ExactMatchOptions = {},
): Promise<ExactMatchResult> {
  const maxNewTokens = o.maxNewTokens ?? 16;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1)
    throw new UsageError("usage.max_new_tokens", `--max-new-tokens must be an integer ≥ 1, got ${maxNewTokens}`);
  if (items.length === 0) throw new UsageError("usage.task", "the task has no items");
  let correct = 0;
  const mistakes: ExactMatchResult["mistakes"] = [];
  for (let i = 0; i < items.length; i++) {
    const { prompt, completion } = items[i];
    const r = await generate(model, tokenizer, prompt, { maxNewTokens, temperature: 0, stop: ["\n"] });
    const got = r.text.slice(tokenizer.decode(tokenizer.encode(prompt)).length).trim();
    const expected = completion.trim();
    if (got === expected) correct++;
    else if (mistakes.length < 5) mistakes.push({ prompt, expected, got });
    o.onProgress?.({ done: i + 1, correct });
  }
  return { accuracy: correct / items.length, correct, total: items.length, mistakes };
}

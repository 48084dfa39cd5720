// Tokenizer from a model directory's tokenizer.json (+ tokenizer_config.json), through @huggingface/tokenizers
// (pure JS). Special tokens follow the tokenizer's post-processor, exactly as `tokenizer(text)` in transformers.

import * as fs from "node:fs";
import * as path from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { TokenizerError } from "../errors.js";

export interface Tokenizer {
  /** Token ids of `text`; with `addSpecialTokens` (default) the post-processor adds BOS etc. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  /** Text of `ids`, special tokens skipped. */
  decode(ids: readonly number[]): string;
  /** Id of a token string, if in the vocabulary. */
  tokenId(token: string): number | undefined;
  /** End-of-sequence ids named by tokenizer_config.json (the model config may add more). */
  readonly eosTokenIds: readonly number[];
}

function readJson(file: string, required: boolean): object | null {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    if (!required) return null;
    throw new TokenizerError("tokenizer.missing", `${file}: not found; the model directory needs tokenizer.json`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new TokenizerError("tokenizer.bad_json", `${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new TokenizerError("tokenizer.bad_json", `${file}: must be a JSON object`);
  }
  return v;
}

function tokenContent(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return undefined;
}

export function loadTokenizer(dir: string): Tokenizer {
  const tjFile = path.join(dir, "tokenizer.json");
  const tj = readJson(tjFile, true)!;
  const tc = readJson(path.join(dir, "tokenizer_config.json"), false) ?? {};
  let tok: HfTokenizer;
  try {
    tok = new HfTokenizer(tj, tc);
  } catch (e) {
    throw new TokenizerError("tokenizer.unusable", `${tjFile}: cannot build the tokenizer (${(e as Error).message})`);
  }
  const eosName = tokenContent((tc as Record<string, unknown>).eos_token);
  const eosId = eosName === undefined ? undefined : tok.token_to_id(eosName);
  return {
    encode(text, opts) {
      return tok.encode(text, { add_special_tokens: opts?.addSpecialTokens ?? true }).ids;
    },
    decode(ids) {
      return tok.decode([...ids], { skip_special_tokens: true });
    },
    tokenId(token) {
      return tok.token_to_id(token);
    },
    eosTokenIds: eosId === undefined ? [] : [eosId],
  };
}

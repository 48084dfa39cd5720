// Tokenizer from a model directory's tokenizer.json (+ tokenizer_config.json), through @huggingface/tokenizers
// (pure JS). Special tokens follow the tokenizer's post-processor, exactly as `tokenizer(text)` in transformers.

import * as path from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { TokenizerError } from "../errors.js";
import { JSON_LIMITS, readJsonFile } from "./files.js";

export interface Tokenizer {
  /** Token ids of `text`; with `addSpecialTokens` (default) the post-processor adds BOS etc. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  /** Text of `ids`, special tokens skipped. */
  decode(ids: readonly number[]): string;
  /** Id of a token string, if in the vocabulary. */
  tokenId(token: string): number | undefined;
  /** End-of-sequence ids named by tokenizer_config.json (the model config may add more). */
  readonly eosTokenIds: readonly number[];
  /** tokenizer_config.json's special token strings (empty when it names none). */
  readonly bosToken: string;
  readonly eosToken: string;
  /** tokenizer_config.json's `chat_template` (a Jinja template), if any. */
  readonly chatTemplate?: string;
}

function readJson(file: string, required: boolean): object | null {
  const v = readJsonFile(file, JSON_LIMITS.tokenizer, (code, msg) => {
    if (code === "missing" && !required) throw new NotThere();
    if (code === "missing")
      throw new TokenizerError("tokenizer.missing", `${file}: not found; the model directory needs tokenizer.json`);
    throw new TokenizerError(`tokenizer.${code}`, msg);
  });
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new TokenizerError("tokenizer.bad_json", `${file}: must be a JSON object`);
  }
  return v;
}

/** An optional file that is absent (not an error). */
class NotThere extends Error {}

function readOptionalJson(file: string): object | null {
  try {
    return readJson(file, false);
  } catch (e) {
    if (e instanceof NotThere) return null;
    throw e;
  }
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
  const tc = readOptionalJson(path.join(dir, "tokenizer_config.json")) ?? {};
  let tok: HfTokenizer;
  try {
    tok = new HfTokenizer(tj, tc);
  } catch (e) {
    throw new TokenizerError("tokenizer.unusable", `${tjFile}: cannot build the tokenizer (${(e as Error).message})`);
  }
  const tcr = tc as Record<string, unknown>;
  const eosName = tokenContent(tcr.eos_token);
  const eosId = eosName === undefined ? undefined : tok.token_to_id(eosName);
  // a chat template is a string, or (older configs) a list of named templates: "default" is the one used
  let chatTemplate: string | undefined;
  if (typeof tcr.chat_template === "string") chatTemplate = tcr.chat_template;
  else if (Array.isArray(tcr.chat_template)) {
    const named = tcr.chat_template.find(
      (t: unknown) => typeof t === "object" && t !== null && (t as { name?: unknown }).name === "default",
    ) as { template?: unknown } | undefined;
    if (typeof named?.template === "string") chatTemplate = named.template;
  }
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
    bosToken: tokenContent(tcr.bos_token) ?? "",
    eosToken: eosName ?? "",
    chatTemplate,
  };
}

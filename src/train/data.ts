// Training data: examples of token ids with labels in transformers' convention (the ids, −100 where no loss), and
// their seeded batching. Formats, by file:
//   .txt (or .jsonl of {"text"} / C4's {"prefix", "gold_completion"}): the text tokenized once (BOS per the
//        tokenizer) and cut into non-overlapping windows of seqlen tokens, the remainder dropped; loss everywhere.
//   .jsonl of {"instruction", "input"?, "output"}: the Alpaca prompt + the output + EOS; loss on the response only.
//   .jsonl of {"messages": [{role, content}, …]}: rendered with the model's chat_template (train/templates.ts);
//        loss on the assistant turns.
//   .jsonl of {"prompt", "completion"}: the prompt + the completion + EOS; loss on the completion (+ EOS) only.
//   .jsonl of {"ids": [..]}: token ids as they are (what `cluscomp generate-data` writes); loss everywhere.
// An example longer than seqlen is an error naming its line (never a silent truncation).

import { DataError } from "../errors.js";
import { readRegularFile } from "../io/files.js";
import { decodeUtf8, parseDocuments } from "../io/text.js";
import type { Tokenizer } from "../io/tokenizer.js";
import { Rng } from "../tensor/rng.js";
import { alpacaPrompt, type ChatMessage, ChatTemplate } from "./templates.js";

export interface Example {
  ids: Int32Array;
  labels: Int32Array;
}

export type DataFormat = "text" | "instruction" | "completion" | "chat" | "ids";

export interface Dataset {
  format: DataFormat;
  examples: Example[];
  /** Targets that count (labels ≠ −100 after the shift) over all examples. */
  tokens: number;
}

function fail(code: string, msg: string): never {
  throw new DataError(`data.${code}`, msg);
}

const MAX_DATA_BYTES = 2 ** 30;

function records(text: string, file: string): { line: number; rec: Record<string, unknown> }[] {
  const out: { line: number; rec: Record<string, unknown> }[] = [];
  text.split("\n").forEach((l, i) => {
    if (l.trim() === "") return;
    let o: unknown;
    try {
      o = JSON.parse(l);
    } catch {
      fail("jsonl", `${file}:${i + 1}: not valid JSON`);
    }
    if (typeof o !== "object" || o === null || Array.isArray(o)) fail("jsonl", `${file}:${i + 1}: not a JSON object`);
    out.push({ line: i + 1, rec: o as Record<string, unknown> });
  });
  return out;
}

function formatOf(rec: Record<string, unknown>): DataFormat {
  if ("ids" in rec) return "ids";
  if ("messages" in rec) return "chat";
  if ("instruction" in rec) return "instruction";
  if ("prompt" in rec) return "completion";
  return "text";
}

function countTargets(labels: Int32Array): number {
  let n = 0;
  for (let i = 1; i < labels.length; i++) if (labels[i] >= 0) n++;
  return n;
}

function tooLong(file: string, line: number, n: number, seqlen: number): never {
  return fail(
    "too_long",
    `${file}:${line}: the example has ${n} tokens, more than --seqlen ${seqlen}; shorten it or raise --seqlen (at most the model's context)`,
  );
}

/** A data file's text: a regular file of at most MAX_DATA_BYTES, strict UTF-8. */
function readDataText(file: string, what: string): string {
  const bytes = readRegularFile(file, MAX_DATA_BYTES, (code, msg) =>
    fail(code, code === "missing" ? `${what} ${file}: no such file` : `${what} ${msg}`),
  );
  return decodeUtf8(bytes, `${what} ${file}`);
}

/** Reads a training (or evaluation) data file into examples of at most `seqlen` tokens. */
export function readDataset(file: string, tokenizer: Tokenizer, seqlen: number, what = "--data"): Dataset {
  const text = readDataText(file, what);
  const examples: Example[] = [];
  let format: DataFormat = "text";
  if (file.endsWith(".jsonl")) {
    const recs = records(text, file);
    if (recs.length === 0) fail("empty", `${what} ${file} holds no records`);
    format = formatOf(recs[0].rec);
    if (format === "text") return windows(parseDocuments(text, file).join("\n\n"), tokenizer, seqlen, file, what);
    let template: ChatTemplate | null = null;
    if (format === "chat") {
      if (!tokenizer.chatTemplate) {
        fail(
          "no_template",
          `${what} ${file} is chat data (messages), but the model's tokenizer_config.json has no chat_template`,
        );
      }
      template = new ChatTemplate(
        tokenizer.chatTemplate,
        { bos_token: tokenizer.bosToken, eos_token: tokenizer.eosToken },
        file,
      );
    }
    for (const { line, rec } of recs) {
      if (formatOf(rec) !== format) fail("mixed", `${file}:${line}: a ${formatOf(rec)} record in ${format} data`);
      const ex =
        format === "ids"
          ? idsExample(rec, file, line)
          : format === "instruction"
            ? instructionExample(rec, file, line, tokenizer)
            : format === "completion"
              ? promptExample(str(rec, "prompt", file, line), str(rec, "completion", file, line), tokenizer)
              : chatExample(rec, file, line, tokenizer, template!);
      if (ex.ids.length > seqlen) tooLong(file, line, ex.ids.length, seqlen);
      if (ex.ids.length < 2 || countTargets(ex.labels) === 0)
        fail("no_targets", `${file}:${line}: the example has nothing to learn (no response tokens)`);
      examples.push(ex);
    }
  } else {
    if (text.trim() === "") fail("empty", `${what} ${file} is empty`);
    return windows(text, tokenizer, seqlen, file, what);
  }
  return { format, examples, tokens: examples.reduce((s, e) => s + countTargets(e.labels), 0) };
}

function windows(text: string, tokenizer: Tokenizer, seqlen: number, file: string, what: string): Dataset {
  const ids = tokenizer.encode(text);
  const n = Math.floor(ids.length / seqlen);
  if (n < 1) fail("too_short", `${what} ${file} has ${ids.length} tokens, fewer than one window of ${seqlen}`);
  const examples: Example[] = [];
  for (let w = 0; w < n; w++) {
    const x = Int32Array.from(ids.slice(w * seqlen, (w + 1) * seqlen));
    examples.push({ ids: x, labels: x });
  }
  return { format: "text", examples, tokens: n * (seqlen - 1) };
}

function str(rec: Record<string, unknown>, key: string, file: string, line: number, optional = false): string {
  const v = rec[key];
  if (v === undefined && optional) return "";
  if (typeof v !== "string")
    fail("field", `${file}:${line}: "${key}" must be a string${optional ? " when given" : ""}`);
  return v;
}

function idsExample(rec: Record<string, unknown>, file: string, line: number): Example {
  const v = rec.ids;
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x >= 0))
    fail("field", `${file}:${line}: "ids" must be a list of token ids`);
  const ids = Int32Array.from(v as number[]);
  return { ids, labels: ids };
}

function instructionExample(rec: Record<string, unknown>, file: string, line: number, tokenizer: Tokenizer): Example {
  const prompt = alpacaPrompt(str(rec, "instruction", file, line), str(rec, "input", file, line, true));
  return promptExample(prompt, str(rec, "output", file, line), tokenizer);
}

/** prompt + output + EOS with the loss on the output and EOS only. */
function promptExample(prompt: string, output: string, tokenizer: Tokenizer): Example {
  const p = tokenizer.encode(prompt);
  const full = [...tokenizer.encode(prompt + output)];
  const eos = tokenizer.eosTokenIds[0];
  if (eos !== undefined) full.push(eos);
  const ids = Int32Array.from(full);
  const labels = Int32Array.from(full);
  // the prompt's tokens carry no loss (the reference ignores the first len(tokenize(prompt)) labels; here the
  // tokens the prompt and the full text share, so a merge across the boundary keeps the response's first token)
  labels.fill(-100, 0, commonPrefix(p, full));
  return { ids, labels };
}

function chatExample(
  rec: Record<string, unknown>,
  file: string,
  line: number,
  tokenizer: Tokenizer,
  template: ChatTemplate,
): Example {
  const msgs = rec.messages;
  if (!Array.isArray(msgs) || msgs.length === 0) fail("field", `${file}:${line}: "messages" must be a non-empty list`);
  const messages: ChatMessage[] = msgs.map((m, k) => {
    const o = (typeof m === "object" && m !== null ? m : {}) as Record<string, unknown>;
    if (typeof o.role !== "string" || typeof o.content !== "string")
      fail("field", `${file}:${line}: messages[${k}] needs string "role" and "content"`);
    return { role: o.role, content: o.content };
  });
  if (!messages.some((m) => m.role === "assistant"))
    fail("no_targets", `${file}:${line}: no assistant turn to learn from`);
  const encode = (s: string) => tokenizer.encode(s, { addSpecialTokens: false });
  const ids = encode(template.render(messages, false));
  const labels = new Int32Array(ids.length).fill(-100);
  // an assistant turn's tokens: from where the rendering up to its prompt stops agreeing with the whole
  // conversation's tokens (a generation prompt ending in a space merges with the reply's first token) to the end
  // of the rendering through the turn
  messages.forEach((m, k) => {
    if (m.role !== "assistant") return;
    const start = commonPrefix(encode(template.render(messages.slice(0, k), true)), ids);
    const end = Math.min(ids.length, encode(template.render(messages.slice(0, k + 1), false)).length);
    for (let t = start; t < end; t++) labels[t] = ids[t];
  });
  return { ids: Int32Array.from(ids), labels };
}

/** How many leading tokens a and b share. */
function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** The example order of an epoch: a seeded permutation (the same for every method and run with that seed). */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  const rng = new Rng((seed * 1_000_003 + epoch * 7919 + 17) >>> 0);
  return rng.shuffle(Array.from({ length: n }, (_, i) => i));
}

/** A batch of examples padded to the longest (pad id `pad`, labels −100 there): ids, labels [B, T]. */
export function padBatch(
  examples: Example[],
  pad: number,
): { ids: Int32Array; labels: Int32Array; B: number; T: number } {
  const B = examples.length;
  const T = Math.max(...examples.map((e) => e.ids.length));
  const ids = new Int32Array(B * T).fill(pad);
  const labels = new Int32Array(B * T).fill(-100);
  examples.forEach((e, b) => {
    ids.set(e.ids, b * T);
    labels.set(e.labels, b * T);
  });
  return { ids, labels, B, T };
}

/** A {"prompt", "completion"} record of an evaluation task. */
export interface TaskItem {
  prompt: string;
  completion: string;
}

/** Reads a .jsonl file of {"prompt", "completion"} records (the task format of `cluscomp eval --task`). */
export function readTaskFile(file: string, what = "--task"): TaskItem[] {
  if (!file.endsWith(".jsonl")) fail("format", `${what} ${file}: expected a .jsonl file of {"prompt", "completion"}`);
  const recs = records(readDataText(file, what), file);
  if (recs.length === 0) fail("empty", `${what} ${file} holds no records`);
  return recs.map(({ line, rec }) => {
    const prompt = str(rec, "prompt", file, line);
    const completion = str(rec, "completion", file, line);
    if (prompt === "") fail("field", `${file}:${line}: "prompt" is empty`);
    if (completion.trim() === "") fail("field", `${file}:${line}: "completion" is empty`);
    return { prompt, completion };
  });
}

// Text inputs (evaluation data, calibration data, prompts): read strictly as UTF-8, so a UTF-16 file or a binary
// file is refused with a message instead of being scored as replacement characters. A `.jsonl` file is read as
// documents — {"text": …}, or the C4 excerpt's {"prefix", "gold_completion"} — joined by blank lines.

import { DataError } from "../errors.js";
import { readRegularFile } from "./files.js";

/** Largest text file read whole (1 GiB): bigger inputs are almost certainly the wrong file. */
export const MAX_TEXT_BYTES = 2 ** 30;

function fail(code: string, msg: string): never {
  throw new DataError(`text.${code}`, msg);
}

/** The bytes of a regular file, with an error naming `what` when it is missing, not a file or too large. */
function readBytes(file: string, what: string): Buffer {
  return readRegularFile(file, MAX_TEXT_BYTES, (code, msg) => {
    if (code === "missing") return fail("missing", `${what} ${file}: no such file`);
    if (code === "not_file" && msg.includes("a directory"))
      return fail("not_file", `${what} ${file} is a directory, not a text file`);
    if (code === "too_large") return fail("too_large", `${what} ${msg} (1 GiB)`);
    return fail(code, `${what} ${msg}`);
  });
}

/** Decodes UTF-8 strictly (a leading BOM is dropped); UTF-16 and invalid bytes are refused with their position. */
export function decodeUtf8(bytes: Uint8Array, where: string): string {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    fail("encoding", `${where} is UTF-16 (it starts with a UTF-16 byte-order mark); convert it to UTF-8 first`);
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    const utf16 = nul > 0 && bytes.length > 3 && (bytes[1] === 0 || bytes[0] === 0);
    fail(
      "encoding",
      utf16
        ? `${where} looks like UTF-16 (zero bytes between characters); convert it to UTF-8 first`
        : `${where} has a zero byte at offset ${nul}: it is not a text file`,
    );
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    return fail("encoding", `${where} is not valid UTF-8 (first bad byte at offset ${at}); convert it to UTF-8 first`);
  }
}

/** Offset of the first byte that starts an invalid UTF-8 sequence (RFC 3629: no overlongs, surrogates, > U+10FFFF). */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    const n = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (n < 0 || i + n >= b.length) return i;
    // the second byte's range depends on the lead byte (overlongs, surrogates, the upper limit)
    const lo = c === 0xe0 ? 0xa0 : c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xed ? 0x9f : c === 0xf4 ? 0x8f : 0xbf;
    if (b[i + 1] < lo || b[i + 1] > hi) return i;
    for (let k = 2; k <= n; k++) if ((b[i + k] & 0xc0) !== 0x80) return i;
    i += n + 1;
  }
  return b.length;
}

/** The documents of a JSONL file: one JSON object per line with a "text" (or "prefix" + "gold_completion") string. */
export function parseDocuments(text: string, file: string): string[] {
  const docs: string[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      fail("jsonl", `${file}:${i + 1}: not valid JSON`);
    }
    const rec = (typeof o === "object" && o !== null && !Array.isArray(o) ? o : {}) as Record<string, unknown>;
    if (typeof rec.text === "string") docs.push(rec.text);
    else if (typeof rec.prefix === "string")
      docs.push(rec.prefix + (typeof rec.gold_completion === "string" ? rec.gold_completion : ""));
    else fail("jsonl", `${file}:${i + 1}: expected a "text" or "prefix" string field`);
  });
  if (docs.length === 0) fail("empty", `${file} holds no documents`);
  return docs;
}

/**
 * The text of a data file: UTF-8 as is, or the documents of a `.jsonl` file joined by blank lines. `what` names
 * the file's role in messages ("--data", "calibration file").
 */
export function readTextFile(file: string, what: string): string {
  const text = decodeUtf8(readBytes(file, what), `${what} ${file}`);
  if (file.endsWith(".jsonl")) return parseDocuments(text, file).join("\n\n");
  if (text.trim() === "") fail("empty", `${what} ${file} is empty`);
  return text;
}

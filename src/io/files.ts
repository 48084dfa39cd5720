// Reading input files defensively: only regular files are read (a directory, FIFO, socket or device where a file
// is expected is an error, and opening never blocks: O_NONBLOCK, then fstat on the descriptor, so a FIFO cannot
// hang the open and a file swapped after a stat is still checked), and small files (JSON) are read up to a size
// limit. Every failure goes through the caller's `fail`, so each file kind keeps its own typed error.

import * as fs from "node:fs";
import { CluscompError } from "../errors.js";

/** Raises the caller's typed error: (code suffix, message) → never. */
export type Fail = (code: string, message: string) => never;

/** Size limits for the JSON files of a model directory (real ones are far smaller). */
export const JSON_LIMITS = {
  /** config.json, generation_config.json, cluscomp.json, state.json. */
  config: 16 * 2 ** 20,
  /** model.safetensors.index.json: one line per tensor. */
  index: 64 * 2 ** 20,
  /** tokenizer.json (a 256k vocabulary with merges is ~30 MB), tokenizer_config.json (chat templates). */
  tokenizer: 256 * 2 ** 20,
} as const;

function describeKind(st: fs.Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  return "not a regular file";
}

/**
 * Opens a regular file for reading; returns its descriptor and size. ENOENT → fail("missing"), anything that is
 * not a regular file → fail("not_file").
 */
export function openRegularFile(file: string, fail: Fail): { fd: number; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return fail("missing", `${file}: not found`);
    if (code === "EISDIR") return fail("not_file", `${file} is a directory, not a file`);
    if (code === "ENXIO") return fail("not_file", `${file} is a socket or device, not a file`);
    return fail("unreadable", `${file}: cannot open it (${code ?? String(e)})`);
  }
  let st: fs.Stats;
  try {
    st = fs.fstatSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    return fail("unreadable", `${file}: cannot stat it (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (!st.isFile()) {
    fs.closeSync(fd);
    return fail("not_file", `${file} is ${describeKind(st)}, not a file`);
  }
  return { fd, size: st.size };
}

/** The bytes of a regular file of at most `maxBytes` (larger, or growing past it while read, is an error). */
export function readRegularFile(file: string, maxBytes: number, fail: Fail): Buffer {
  const { fd, size } = openRegularFile(file, fail);
  try {
    if (size > maxBytes)
      return fail("too_large", `${file} is ${size} bytes, over the ${maxBytes}-byte limit for this file`);
    const buf = Buffer.alloc(size);
    let done = 0;
    while (done < size) {
      const n = fs.readSync(fd, buf, done, size - done, done);
      if (n === 0) break;
      done += n;
    }
    return done === size ? buf : buf.subarray(0, done);
  } catch (e) {
    if (e instanceof CluscompError) throw e;
    return fail("unreadable", `${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  } finally {
    fs.closeSync(fd);
  }
}

/** A JSON file of at most `maxBytes`, strictly UTF-8, parsed (as `unknown`: the caller narrows it). */
export function readJsonFile(file: string, maxBytes: number, fail: Fail): unknown {
  const bytes = readRegularFile(file, maxBytes, fail);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return fail("bad_json", `${file}: not valid UTF-8`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    return fail("bad_json", `${file}: not valid JSON (${(e as Error).message})`);
  }
}

// safetensors reader and writer (format: huggingface/safetensors). Reads the header, validates every entry, and
// reads tensors lazily by offset with positioned reads, so a shard is never held whole in the JS heap.
// Layout: u64 LE header length N | N bytes of JSON header | data. Header: { name: {dtype, shape, data_offsets:
// [begin, end)} , "__metadata__"?: {string: string} }, offsets relative to the start of the data section.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SafetensorsError } from "../errors.js";
import { DTYPE_BYTES, type DType, isDType, type RawArray, toFloat32, viewAs } from "../tensor/dtype.js";
import { formatShape, numel } from "../tensor/shape.js";
import { streamFileAtomic } from "./atomic.js";
import { JSON_LIMITS, openRegularFile, readJsonFile } from "./files.js";

/** Largest header we accept (the Rust implementation's limit is 100 MB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Absolute byte offset of the tensor's data in its file. */
  readonly fileOffset: number;
  readonly byteLength: number;
  readonly file: string;
}

/** Anything that can hand out named tensors: one safetensors file, a sharded checkpoint, a test double. */
export interface TensorSource {
  names(): string[];
  info(name: string): TensorInfo | undefined;
  readRaw(name: string): RawArray;
  readFloat32(name: string): Float32Array;
  close(): void;
}

if (os.endianness() !== "LE") {
  throw new SafetensorsError("safetensors.endianness", "cluscomp needs a little-endian host to read safetensors");
}

function fail(file: string, code: string, msg: string): never {
  throw new SafetensorsError(`safetensors.${code}`, `${file}: ${msg}`);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

export class SafetensorsFile implements TensorSource {
  readonly path: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly fileSize: number;
  private readonly entries: Map<string, TensorInfo>;
  private fd: number | null = null;

  private constructor(
    file: string,
    entries: Map<string, TensorInfo>,
    metadata: Record<string, string>,
    fileSize: number,
  ) {
    this.path = file;
    this.entries = entries;
    this.metadata = metadata;
    this.fileSize = fileSize;
  }

  /** Opens and validates a file's header; no tensor data is read. */
  static open(file: string): SafetensorsFile {
    const { fd, size } = openRegularFile(file, (code, msg) => {
      throw new SafetensorsError(`safetensors.${code}`, code === "missing" ? `${file}: file not found` : msg);
    });
    try {
      if (size < 8) fail(file, "truncated", `file is ${size} bytes, shorter than the 8-byte header length`);
      const lenBuf = Buffer.alloc(8);
      fs.readSync(fd, lenBuf, 0, 8, 0);
      const headerLen = lenBuf.readBigUInt64LE(0);
      if (headerLen > BigInt(MAX_HEADER_BYTES)) {
        fail(file, "header_too_large", `header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
      }
      const n = Number(headerLen);
      if (8 + n > size) {
        fail(file, "header_past_eof", `header length ${n} runs past the end of the file (${size} bytes)`);
      }
      const hbuf = Buffer.alloc(n);
      let got = 0;
      while (got < n) {
        const r = fs.readSync(fd, hbuf, got, n - got, 8 + got);
        if (r === 0) fail(file, "truncated", "the file ended inside its header");
        got += r;
      }
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(hbuf);
      } catch {
        fail(file, "bad_header", "header is not valid UTF-8");
      }
      checkHeaderText(file, text);
      let header: unknown;
      try {
        header = JSON.parse(text);
      } catch (e) {
        fail(file, "bad_json", `header is not valid JSON (${(e as Error).message})`);
      }
      const { entries, metadata } = parseHeader(file, header, 8 + n, size - 8 - n);
      return new SafetensorsFile(file, entries, metadata, size);
    } finally {
      fs.closeSync(fd);
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  info(name: string): TensorInfo | undefined {
    return this.entries.get(name);
  }

  readRaw(name: string): RawArray {
    const info = this.entries.get(name);
    if (!info) fail(this.path, "no_tensor", `no tensor named "${name}"`);
    const buf = new ArrayBuffer(info.byteLength);
    const bytes = new Uint8Array(buf);
    if (this.fd === null) {
      const { fd, size } = openRegularFile(this.path, (code, msg) => {
        throw new SafetensorsError(`safetensors.${code}`, msg);
      });
      this.fd = fd;
      if (size !== this.fileSize) {
        this.close();
        fail(
          this.path,
          "changed",
          `the file changed size since its header was read (${this.fileSize} → ${size} bytes)`,
        );
      }
    }
    let done = 0;
    while (done < info.byteLength) {
      const got = fs.readSync(this.fd, bytes, done, info.byteLength - done, info.fileOffset + done);
      if (got === 0) fail(this.path, "truncated", `unexpected end of file while reading "${name}"`);
      done += got;
    }
    return viewAs(info.dtype, buf);
  }

  readFloat32(name: string): Float32Array {
    const raw = this.readRaw(name);
    const dtype = this.entries.get(name)!.dtype;
    return dtype === "F32" ? (raw as Float32Array) : toFloat32(dtype, raw);
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

/**
 * What the reference implementation (the safetensors crate: serde_json into `usize` offsets and shapes, a struct
 * field `__metadata__`) refuses and JSON.parse would accept: a number that is not a non-negative integer literal
 * (`635392.0`, `6.4e5`, `-0`; the only numbers a header has are shapes and offsets) and a repeated `__metadata__`.
 * Repeated tensor names are, as in the reference, the last one's (its offsets are then checked for gaps).
 */
function checkHeaderText(file: string, text: string): void {
  let depth = 0;
  let metadataKeys = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
      if (depth === 1 && expectKey && text.slice(start, i + 1) === '"__metadata__"') metadataKeys++;
      expectKey = false;
      continue;
    }
    if (c === "{") {
      depth++;
      expectKey = true;
    } else if (c === "}") depth--;
    else if (c === "[") depth++;
    else if (c === "]") depth--;
    else if (c === ",") expectKey = true;
    else if (c === "-" || (c >= "0" && c <= "9")) {
      let j = i;
      while (j < text.length && /[0-9eE+.-]/.test(text[j])) j++;
      const tok = text.slice(i, j);
      if (!/^(0|[1-9][0-9]*)$/.test(tok)) {
        fail(
          file,
          "bad_header",
          `header has the number ${tok}: shapes and data_offsets must be non-negative integers (as the reference implementation requires)`,
        );
      }
      i = j - 1;
    }
  }
  if (metadataKeys > 1) fail(file, "bad_header", "header has __metadata__ more than once");
}

function parseHeader(
  file: string,
  header: unknown,
  dataStart: number,
  dataLen: number,
): { entries: Map<string, TensorInfo>; metadata: Record<string, string> } {
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail(file, "bad_header", "header must be a JSON object");
  }
  const metadata: Record<string, string> = {};
  const spans: { name: string; begin: number; end: number }[] = [];
  const entries = new Map<string, TensorInfo>();
  for (const [name, value] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        fail(file, "bad_header", "__metadata__ must be an object of strings");
      }
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== "string") fail(file, "bad_header", `__metadata__.${k} must be a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (typeof value !== "object" || value === null) fail(file, "bad_header", `entry "${name}" must be an object`);
    const e = value as Record<string, unknown>;
    if (typeof e.dtype !== "string") fail(file, "bad_header", `tensor "${name}" has no dtype`);
    if (!isDType(e.dtype)) {
      fail(file, "unknown_dtype", `tensor "${name}" has unknown dtype "${e.dtype}"`);
    }
    const dtype = e.dtype;
    if (!Array.isArray(e.shape) || !e.shape.every(isNonNegInt)) {
      fail(file, "bad_header", `tensor "${name}" has a bad shape ${JSON.stringify(e.shape)}`);
    }
    const shape = e.shape as number[];
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !isNonNegInt(offs[0]) || !isNonNegInt(offs[1])) {
      fail(file, "bad_header", `tensor "${name}" has bad data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    if (end < begin) fail(file, "bad_offsets", `tensor "${name}" has data_offsets [${begin}, ${end}] with end < begin`);
    const expected = numel(shape) * DTYPE_BYTES[dtype];
    if (end - begin !== expected) {
      fail(
        file,
        "bad_offsets",
        `tensor "${name}" (${dtype} ${formatShape(shape)}) needs ${expected} bytes but data_offsets span ${end - begin}`,
      );
    }
    spans.push({ name, begin, end });
    entries.set(name, { name, dtype, shape, fileOffset: dataStart + begin, byteLength: end - begin, file });
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  // Bounds first: a contiguous layout running past the end is a truncated file; a lone span past it is corrupt.
  let contiguous = true;
  let cursor = 0;
  for (const s of spans) {
    if (s.begin !== cursor) contiguous = false;
    cursor = s.end;
  }
  const outside = spans.find((s) => s.end > dataLen);
  if (outside && contiguous) {
    fail(
      file,
      "truncated",
      `tensors need ${cursor} data bytes but the file holds only ${dataLen}: truncated download?`,
    );
  }
  if (outside) {
    fail(
      file,
      "out_of_bounds",
      `tensor "${outside.name}" data_offsets [${outside.begin}, ${outside.end}] run past the data section (${dataLen} bytes)`,
    );
  }
  cursor = 0;
  for (const s of spans) {
    if (s.begin < cursor) fail(file, "overlap", `tensor "${s.name}" overlaps the tensor before it (offset ${s.begin})`);
    if (s.begin > cursor) fail(file, "gap", `tensor "${s.name}" leaves a gap in the data (${cursor}..${s.begin})`);
    cursor = s.end;
  }
  if (cursor < dataLen) fail(file, "trailing", `${dataLen - cursor} bytes after the last tensor`);
  return { entries, metadata };
}

/** Several safetensors files (shards) seen as one source. */
export class ShardedSource implements TensorSource {
  private readonly byName = new Map<string, SafetensorsFile>();
  readonly files: SafetensorsFile[];

  constructor(files: SafetensorsFile[]) {
    this.files = files;
    for (const f of files) {
      for (const n of f.names()) {
        if (this.byName.has(n)) fail(f.path, "duplicate", `tensor "${n}" also appears in ${this.byName.get(n)!.path}`);
        this.byName.set(n, f);
      }
    }
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  info(name: string): TensorInfo | undefined {
    return this.byName.get(name)?.info(name);
  }

  private file(name: string): SafetensorsFile {
    const f = this.byName.get(name);
    if (!f) throw new SafetensorsError("safetensors.no_tensor", `no tensor named "${name}" in the checkpoint`);
    return f;
  }

  readRaw(name: string): RawArray {
    return this.file(name).readRaw(name);
  }

  readFloat32(name: string): Float32Array {
    return this.file(name).readFloat32(name);
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}

export const INDEX_FILE = "model.safetensors.index.json";

/**
 * Opens the weights of a Hugging Face model directory: `model.safetensors.index.json` (sharded) if present,
 * else every `*.safetensors` file in the directory.
 */
/** PEFT's adapter weights: beside a model (a model trained with its adapter) they are not one of its shards. */
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";

export function openCheckpoint(dir: string): ShardedSource {
  const indexPath = path.join(dir, INDEX_FILE);
  if (fs.existsSync(indexPath)) return openIndexed(dir, indexPath);
  let files: string[];
  try {
    files = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith(".safetensors") && f !== ADAPTER_WEIGHTS)
      .sort();
  } catch {
    throw new SafetensorsError("safetensors.missing", `${dir}: not a readable directory`);
  }
  if (files.length === 0) {
    throw new SafetensorsError("safetensors.missing", `${dir}: no *.safetensors file and no ${INDEX_FILE}`);
  }
  return new ShardedSource(files.map((f) => SafetensorsFile.open(path.join(dir, f))));
}

function openIndexed(dir: string, indexPath: string): ShardedSource {
  const index = readJsonFile(indexPath, JSON_LIMITS.index, (code, msg) => {
    throw new SafetensorsError(`safetensors.${code === "bad_json" ? "bad_index" : code}`, msg);
  });
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map)) {
    fail(indexPath, "bad_index", "has no weight_map object");
  }
  const root = path.resolve(dir);
  const shards = new Map<string, { name: string; tensors: string[] }>();
  for (const [tensor, file] of Object.entries(map)) {
    if (typeof file !== "string" || file === "")
      fail(indexPath, "bad_index", `weight_map["${tensor}"] is not a file name`);
    const resolved = path.resolve(root, file);
    const rel = path.relative(root, resolved);
    if (rel === "" || rel === ".." || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
      fail(indexPath, "index_outside", `weight_map["${tensor}"] = "${file}" points outside the model directory`);
    }
    if (!shards.has(resolved)) shards.set(resolved, { name: file, tensors: [] });
    shards.get(resolved)!.tensors.push(tensor);
  }
  const files: SafetensorsFile[] = [];
  try {
    for (const [shard, { name, tensors }] of shards) {
      if (!fs.existsSync(shard)) {
        fail(indexPath, "missing_shard", `shard "${name}" (holding "${tensors[0]}") does not exist`);
      }
      const f = SafetensorsFile.open(shard);
      files.push(f);
      for (const t of tensors) {
        if (!f.info(t)) fail(indexPath, "bad_index", `weight_map says "${t}" is in ${name}, but it is not`);
      }
    }
  } catch (e) {
    for (const f of files) f.close();
    throw e;
  }
  return new ShardedSource(files);
}

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: readonly number[];
  /** Raw little-endian bytes of the tensor (any typed array over them), or a function producing them when written. */
  data: ArrayBufferView | (() => ArrayBufferView);
}

/** Writes a safetensors file atomically, tensors in the given order; header padded to 8 bytes as HF does. */
export function writeSafetensors(file: string, tensors: TensorToWrite[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new SafetensorsError("safetensors.duplicate", `${file}: tensor "${t.name}" twice`);
    seen.add(t.name);
    const bytes = numel(t.shape) * DTYPE_BYTES[t.dtype];
    if (typeof t.data !== "function") checkBytes(file, t, t.data);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const pad = (8 - (Buffer.byteLength(json) % 8)) % 8;
  json += " ".repeat(pad);
  const hbytes = Buffer.from(json, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hbytes.byteLength));
  streamFileAtomic(file, (append) => {
    append(len);
    append(hbytes);
    for (const t of tensors) {
      const data = typeof t.data === "function" ? checkBytes(file, t, t.data()) : t.data;
      append(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  });
}

function checkBytes(file: string, t: TensorToWrite, data: ArrayBufferView): ArrayBufferView {
  const bytes = numel(t.shape) * DTYPE_BYTES[t.dtype];
  if (data.byteLength !== bytes) {
    throw new SafetensorsError(
      "safetensors.bad_offsets",
      `${file}: tensor "${t.name}" (${t.dtype} ${formatShape(t.shape)}) needs ${bytes} bytes, got ${data.byteLength}`,
    );
  }
  return data;
}

/**
 * Copies the companion files of a model directory (tokenizer, generation config, …) into `dir`: every entry except
 * config.json, safetensors files and their index, and the names in `skip`, that is a regular file, or a symbolic
 * link to a regular file inside the model directory or inside its Hugging Face cache repository's `blobs/` (a
 * snapshot's files are links to `../../blobs/<hash>`). Links anywhere else, directories, FIFOs and devices are
 * not copied; their names are returned.
 */
export function copyCompanionFiles(srcDir: string, dir: string, skip: readonly string[] = []): string[] {
  const root = fs.realpathSync(srcDir);
  const blobs =
    path.basename(path.dirname(root)) === "snapshots" ? path.join(path.dirname(path.dirname(root)), "blobs") : null;
  const inside = (p: string, base: string) => {
    const rel = path.relative(base, p);
    return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
  };
  const skipped: string[] = [];
  for (const f of fs.readdirSync(srcDir)) {
    if (f === "config.json" || f === INDEX_FILE || f.endsWith(".safetensors") || skip.includes(f)) continue;
    const src = path.join(srcDir, f);
    const lst = fs.lstatSync(src);
    let ok = lst.isFile();
    if (lst.isSymbolicLink()) {
      try {
        const target = fs.realpathSync(src);
        ok = fs.statSync(target).isFile() && (inside(target, root) || (blobs !== null && inside(target, blobs)));
      } catch {
        ok = false; // dangling
      }
    }
    if (!ok) {
      if (!lst.isDirectory()) skipped.push(f);
      continue;
    }
    fs.copyFileSync(src, path.join(dir, f));
  }
  return skipped;
}

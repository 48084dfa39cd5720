// The fuzzer's mutation classes: seeded, each a function that damages a copy of a model directory in one way
// (safetensors header bytes and fields, truncation, header length, offsets, shapes, dtypes, duplicates,
// missing/extra tensors, huge shapes, metadata, index paths and types, special files, config fields, the
// compressed format's fields, codes and codebooks). Case i of a run is fully determined by (seed, i).

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Rng } from "../../src/index.js";

/** The unmutated directories a case starts from. */
export interface Bases {
  /** stories260K, one f32 file. */
  stories: string;
  /** Its 3-bit ClusComp copy (block-shared codebooks). */
  compressed: string;
  /** Its RTN 3-bit copy. */
  rtn: string;
  /** stories260K split into two shards with an index. */
  sharded: string;
  /** llama-en-26m (three bf16 shards): cases link its shards and rewrite only what they mutate. */
  llama: string;
}

export type BaseName = keyof Bases;

export interface Mutation {
  cls: string;
  base: BaseName;
  what: string;
  apply: (dir: string) => void;
}

type Header = Record<string, unknown>;

interface StFile {
  header: Header;
  text: string;
  data: Buffer;
}

export function readSt(file: string): StFile {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const text = buf.subarray(8, 8 + n).toString("utf8");
  return { header: JSON.parse(text) as Header, text, data: buf.subarray(8 + n) };
}

/** Writes a safetensors file from header text and data (no checks: the point is to write bad files). */
export function writeStText(file: string, text: string, data: Buffer, headerLength?: bigint): void {
  const h = Buffer.from(text, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLength ?? BigInt(h.length));
  if (fs.existsSync(file)) fs.rmSync(file, { recursive: true, force: true });
  fs.writeFileSync(file, Buffer.concat([len, h, data]));
}

function writeSt(file: string, header: Header, data: Buffer): void {
  writeStText(file, JSON.stringify(header), data);
}

/** A header rebuilt with contiguous offsets for the given entries (name → {dtype, shape, bytes}). */
function rebuild(
  entries: [string, { dtype: string; shape: unknown; data: Buffer }][],
  metadata?: unknown,
): { header: Header; data: Buffer } {
  const header: Header = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  let off = 0;
  const parts: Buffer[] = [];
  for (const [name, e] of entries) {
    header[name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + e.data.length] };
    off += e.data.length;
    parts.push(e.data);
  }
  return { header, data: Buffer.concat(parts) };
}

function entriesOf(st: StFile): [string, { dtype: string; shape: unknown; data: Buffer }][] {
  return Object.entries(st.header)
    .filter(([k]) => k !== "__metadata__")
    .map(([k, v]) => {
      const e = v as { dtype: string; shape: unknown; data_offsets: [number, number] };
      return [k, { dtype: e.dtype, shape: e.shape, data: st.data.subarray(e.data_offsets[0], e.data_offsets[1]) }];
    });
}

/** The safetensors file of a case directory holding `tensor` (or the first one). */
function stFileOf(dir: string, tensor?: string): string {
  const index = path.join(dir, "model.safetensors.index.json");
  if (fs.existsSync(index)) {
    const map = (JSON.parse(fs.readFileSync(index, "utf8")) as { weight_map: Record<string, string> }).weight_map;
    const file = tensor ? map[tensor] : Object.values(map)[0];
    return ownFile(path.join(dir, file));
  }
  return ownFile(path.join(dir, "model.safetensors"));
}

/** A linked file replaced by a real copy before it is modified (the base must never change). */
function ownFile(file: string): string {
  if (fs.lstatSync(file).isSymbolicLink()) {
    const target = fs.realpathSync(file);
    fs.rmSync(file);
    fs.copyFileSync(target, file);
  }
  return file;
}

function editConfig(dir: string, f: (c: Record<string, unknown>) => void): void {
  const file = ownFile(path.join(dir, "config.json"));
  const c = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
  f(c);
  fs.writeFileSync(file, JSON.stringify(c));
}

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)];
}

/** JSON values of many kinds, for fields that expect one kind. */
function oddValue(rng: Rng): unknown {
  return pick(rng, [
    0,
    -1,
    1,
    2,
    3,
    7,
    1.5,
    -0.5,
    1e9,
    2 ** 53,
    1e308,
    "",
    "x",
    "12",
    null,
    true,
    false,
    [],
    [1, 2],
    {},
    { a: 1 },
    Number.MAX_SAFE_INTEGER,
    0.0001,
    65536,
    65537,
  ]);
}

const DTYPES = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL"];

function tensorNames(st: StFile): string[] {
  return Object.keys(st.header).filter((k) => k !== "__metadata__");
}

type Maker = (rng: Rng, bases: Bases) => Mutation;

const safetensorsBases: BaseName[] = ["stories", "compressed", "rtn", "sharded", "llama"];
/** Bases cheap to copy whole (llama-en-26m is used for header-level cases, a few per run). */
const small: BaseName[] = ["stories", "compressed", "rtn", "sharded"];
const withLlama = (rng: Rng, xs: BaseName[] = small): BaseName => (rng.next() < 0.08 ? "llama" : pick(rng, xs));

const MAKERS: Record<string, Maker> = {
  header_bytes: (rng) => {
    const k = 1 + rng.int(4);
    return {
      cls: "header_bytes",
      base: withLlama(rng),
      what: `${k} random header bytes`,
      apply: (dir) => {
        const file = stFileOf(dir);
        const buf = fs.readFileSync(file);
        const n = Number(buf.readBigUInt64LE(0));
        for (let j = 0; j < k; j++) buf[8 + rng.int(n)] = rng.int(256);
        fs.writeFileSync(file, buf);
      },
    };
  },
  truncation: (rng) => ({
    cls: "truncation",
    base: pick(rng, small),
    what: "file cut short",
    apply: (dir) => {
      const file = stFileOf(dir);
      const size = fs.statSync(file).size;
      const cut = pick(rng, [0, 1, 7, 8, 9, 16, rng.int(size), size - 1, size - 2 - rng.int(100)]);
      fs.truncateSync(file, Math.max(0, cut));
    },
  }),
  header_length: (rng) => {
    const choice = rng.int(6);
    return {
      cls: "header_length",
      base: withLlama(rng),
      what: `header length variant ${choice}`,
      apply: (dir) => {
        const file = stFileOf(dir);
        const st = readSt(file);
        const n = BigInt(Buffer.byteLength(st.text));
        const values = [0n, 1n, n - 1n, n + 1n + BigInt(rng.int(64)), 2n ** 63n, BigInt(100 * 1024 * 1024 + 1)];
        writeStText(file, st.text, st.data, values[choice]);
      },
    };
  },
  offsets: (rng) => ({
    cls: "offsets",
    base: withLlama(rng),
    what: "a tensor's data_offsets",
    apply: (dir) => {
      const file = stFileOf(dir);
      const st = readSt(file);
      const name = pick(rng, tensorNames(st));
      const e = st.header[name] as { data_offsets: unknown };
      const [b, en] = e.data_offsets as [number, number];
      e.data_offsets = pick(rng, [
        [en, b],
        [b + 1, en + 1],
        [b, en + 2],
        [b - 2, en - 2],
        [0, st.data.length + 8],
        [-4, en],
        [b, 2 ** 60],
        [b],
        [b, en, en],
        "0,1",
        null,
        [String(b), en],
        [b + 0.5, en],
      ]);
      writeSt(file, st.header, st.data);
    },
  }),
  offsets_float_text: (rng) => ({
    cls: "offsets",
    base: pick(rng, small),
    what: "an integer written as 635392.0 / 6.4e5 / -0",
    apply: (dir) => {
      const file = stFileOf(dir);
      const st = readSt(file);
      const m = [...st.text.matchAll(/\d+/g)];
      const hit = m[rng.int(m.length)];
      const rep = pick(rng, [`${hit[0]}.0`, `${Number(hit[0])}e0`, hit[0] === "0" ? "-0" : `${hit[0]}.00`]);
      const text = st.text.slice(0, hit.index) + rep + st.text.slice(hit.index! + hit[0].length);
      writeStText(file, text, st.data);
    },
  }),
  shapes: (rng) => ({
    cls: "shapes",
    base: withLlama(rng),
    what: "a tensor's shape",
    apply: (dir) => {
      const file = stFileOf(dir);
      const st = readSt(file);
      const name = pick(rng, tensorNames(st));
      const e = st.header[name] as { shape: unknown };
      const s = e.shape as number[];
      e.shape = pick(rng, [
        [...s, 1],
        s.slice(1),
        [],
        [...s].reverse(),
        s.map((x) => x * 2),
        [0],
        [-1, ...s.slice(1)],
        [1.5],
        ["4"],
        null,
        [2 ** 53, 2 ** 53],
        [2 ** 31, 2 ** 31, 2 ** 31],
        s.length > 1 ? [s[0] * s[1]] : [s[0], 1],
      ]);
      writeSt(file, st.header, st.data);
    },
  }),
  dtypes: (rng) => ({
    cls: "dtypes",
    base: withLlama(rng, ["stories", "compressed", "rtn"]),
    what: "a tensor's dtype (byte length kept where the new dtype allows it)",
    apply: (dir) => {
      const file = stFileOf(dir);
      const st = readSt(file);
      const entries = entriesOf(st);
      const k = rng.int(entries.length);
      const [, e] = entries[k];
      // the same byte size keeps the header consistent (the tensor's role decides); another one breaks the span
      const to = rng.next() < 0.1 ? pick(rng, ["Q4_K", "f32", "", "F8_E4M3"]) : pick(rng, DTYPES);
      e.dtype = to;
      const r = rebuild(entries, st.header.__metadata__);
      writeSt(file, r.header, r.data);
    },
  }),
  duplicates: (rng) => ({
    cls: "duplicates",
    base: pick(rng, small),
    what: "a key repeated in the header text",
    apply: (dir) => {
      const file = stFileOf(dir);
      const st = readSt(file);
      const names = tensorNames(st);
      const name = pick(rng, names);
      const entry = JSON.stringify(st.header[name]);
      const other = pick(rng, names);
      const dup =
        rng.next() < 0.3
          ? `"__metadata__":{"format":"pt"},`
          : `${JSON.stringify(name)}:${rng.next() < 0.5 ? entry : JSON.stringify(st.header[other])},`;
      writeStText(file, `{${dup}${st.text.slice(1)}`, st.data);
    },
  }),
  missing_extra: (rng) => ({
    cls: "missing_extra",
    base: pick(rng, small),
    what: "a tensor removed or added (file rewritten consistently)",
    apply: (dir) => {
      const file = stFileOf(dir);
      const st = readSt(file);
      let entries = entriesOf(st);
      const op = rng.int(4);
      if (op === 0) entries.splice(rng.int(entries.length), 1);
      else if (op === 1)
        entries.push(["model.layers.99.mlp.up_proj.weight", { dtype: "F32", shape: [2], data: Buffer.alloc(8) }]);
      else if (op === 2) entries.push(["extra.tensor", { dtype: "U8", shape: [3], data: Buffer.alloc(3) }]);
      else entries = entries.filter((x) => !x[0].startsWith("model.layers.4."));
      const r = rebuild(entries, st.header.__metadata__);
      writeSt(file, r.header, r.data);
    },
  }),
  huge_shapes: (rng) => ({
    cls: "huge_shapes",
    base: pick(rng, small),
    what: "a huge shape with offsets that claim to match",
    apply: (dir) => {
      const file = stFileOf(dir);
      const st = readSt(file);
      const entries = entriesOf(st);
      const big = pick(rng, [[2 ** 26, 2 ** 26], [2 ** 40], [65536, 65536, 65536], [1, 2 ** 52]]);
      entries.push(["model.huge", { dtype: "F32", shape: big, data: Buffer.alloc(16) }]);
      const r = rebuild(entries, st.header.__metadata__);
      const e = r.header["model.huge"] as { data_offsets: number[] };
      e.data_offsets = [e.data_offsets[0], e.data_offsets[0] + big.reduce((a, b) => a * b, 4)];
      writeSt(file, r.header, r.data);
    },
  }),
  metadata: (rng) => ({
    cls: "metadata",
    base: withLlama(rng),
    what: "__metadata__ contents",
    apply: (dir) => {
      const file = stFileOf(dir);
      const st = readSt(file);
      st.header.__metadata__ = pick(rng, [
        { format: "pt" },
        { format: 1 },
        "pt",
        [],
        null,
        { a: { b: "c" } },
        { cluscomp: "999" },
        Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, "v".repeat(50)])),
      ]);
      writeSt(file, st.header, st.data);
    },
  }),
  index: (rng) => ({
    cls: "index",
    base: rng.next() < 0.2 ? "llama" : "sharded",
    what: "the shard index",
    apply: (dir) => {
      const file = ownFile(path.join(dir, "model.safetensors.index.json"));
      const idx = JSON.parse(fs.readFileSync(file, "utf8")) as { weight_map: Record<string, unknown> };
      const names = Object.keys(idx.weight_map);
      const name = pick(rng, names);
      const op = rng.int(10);
      if (op === 0) idx.weight_map[name] = pick(rng, [1, null, "", [], {}, true]);
      else if (op === 1)
        idx.weight_map[name] = pick(rng, [
          "../../etc/passwd",
          "/etc/passwd",
          "..",
          ".",
          "sub/model.safetensors",
          "nope.safetensors",
        ]);
      else if (op === 2) delete idx.weight_map[name];
      else if (op === 3) idx.weight_map["model.layers.0.extra.weight"] = Object.values(idx.weight_map)[0];
      else if (op === 4) (idx as Record<string, unknown>).weight_map = pick(rng, [[], null, "x", 3]);
      else if (op === 5) {
        const files = [...new Set(Object.values(idx.weight_map))];
        if (files.length > 1) idx.weight_map[name] = files.find((f) => f !== idx.weight_map[name]);
      } else if (op === 6) {
        fs.writeFileSync(file, pick(rng, ["", "{", "[]", "null", '{"weight_map":', "\u0000\u0001"]));
        return;
      } else if (op === 7) {
        fs.mkdirSync(path.join(dir, "sub"));
        fs.writeFileSync(path.join(dir, "sub", "x.safetensors"), "");
        idx.weight_map[name] = "sub/x.safetensors";
      } else if (op === 8) {
        fs.mkdirSync(path.join(dir, "adir.safetensors"));
        idx.weight_map[name] = "adir.safetensors";
      } else idx.weight_map[name] = `${String(idx.weight_map[name])}\u0000`;
      fs.writeFileSync(file, JSON.stringify(idx));
    },
  }),
  special_files: (rng) => {
    const target = pick(rng, [
      "model.safetensors",
      "config.json",
      "tokenizer.json",
      "tokenizer_config.json",
      "model.safetensors.index.json",
      "shard",
    ]);
    const kind = pick(rng, ["directory", "fifo", "dev_zero", "dev_null", "dangling", "loop"]);
    return {
      cls: "special_files",
      base: target === "model.safetensors.index.json" || target === "shard" ? "sharded" : "stories",
      what: `${target} as ${kind}`,
      apply: (dir) => {
        let file = path.join(dir, target);
        if (target === "shard") file = path.join(dir, "model-00002-of-00002.safetensors");
        fs.rmSync(file, { recursive: true, force: true });
        if (kind === "directory") fs.mkdirSync(file);
        else if (kind === "fifo") execFileSync("mkfifo", [file]);
        else if (kind === "dev_zero") fs.symlinkSync("/dev/zero", file);
        else if (kind === "dev_null") fs.symlinkSync("/dev/null", file);
        else if (kind === "dangling") fs.symlinkSync(path.join(dir, "no-such-target"), file);
        else fs.symlinkSync(file, file);
      },
    };
  },
  config_fields: (rng) => {
    const field = pick(rng, [
      "hidden_size",
      "intermediate_size",
      "num_hidden_layers",
      "num_attention_heads",
      "num_key_value_heads",
      "head_dim",
      "vocab_size",
      "rms_norm_eps",
      "rope_theta",
      "max_position_embeddings",
      "tie_word_embeddings",
      "architectures",
      "rope_parameters",
      "rope_scaling",
      "hidden_act",
      "attention_bias",
      "mlp_bias",
      "sliding_window",
      "bos_token_id",
      "eos_token_id",
      "quantization_config",
    ]);
    return {
      cls: "config_fields",
      base: withLlama(rng, ["stories", "compressed", "rtn"]),
      what: `config.json ${field}`,
      apply: (dir) =>
        editConfig(dir, (c) => {
          const r = rng.next();
          if (r < 0.15) delete c[field];
          else if (field === "rope_theta" || field === "rms_norm_eps")
            c[field] = pick(rng, [1e-300, 1e300, 0, -1, 1, Number.MIN_VALUE, "1e4", null]);
          else if (field === "num_hidden_layers" && r < 0.6) c[field] = pick(rng, [1, 2, 4, 6, 99]);
          else if (field === "rope_parameters" || field === "rope_scaling")
            c[field] = pick(rng, [
              { rope_type: "yarn", factor: 2 },
              { rope_type: "linear", factor: 0 },
              { rope_type: "llama3", factor: 8 },
              { rope_theta: 1e-300 },
              { type: "dynamic" },
              [],
              "x",
            ]);
          else if (field === "architectures")
            c[field] = pick(rng, [["GPT2LMHeadModel"], [], ["LlamaForCausalLM", "X"], "LlamaForCausalLM", [1]]);
          else c[field] = oddValue(rng);
        }),
    };
  },
  compressed_fields: (rng) => {
    const field = pick(rng, [
      "quant_method",
      "format_version",
      "method",
      "bpw",
      "modules",
      "module_entry",
      "module_name",
    ]);
    return {
      cls: "compressed_fields",
      base: pick(rng, ["compressed", "rtn"] as BaseName[]),
      what: `quantization_config ${field}`,
      apply: (dir) =>
        editConfig(dir, (c) => {
          const q = c.quantization_config as Record<string, unknown>;
          const modules = q.modules as Record<string, Record<string, unknown>>;
          const name = pick(rng, Object.keys(modules));
          if (field === "quant_method") q.quant_method = pick(rng, ["awq", "gptq", "", null, 1]);
          else if (field === "format_version") q.format_version = pick(rng, [0, 2, 1e9, "1", 1.5, null]);
          else if (field === "method") q.method = pick(rng, ["kmeans", "", null, "rtn", "cluscomp"]);
          else if (field === "bpw") q.bpw = oddValue(rng);
          else if (field === "modules") q.modules = pick(rng, [[], "x", null, 3, {}]);
          else if (field === "module_name") {
            modules[pick(rng, ["model.layers.9.self_attn.q_proj", "lm_head", "model.embed_tokens", "x"])] =
              modules[name];
          } else {
            const key = pick(rng, ["d", "K", "m", "codebook", "bits", "group_size", "method"]);
            modules[name][key] = key === "codebook" ? pick(rng, ["model.norm.weight", "nope", 3, ""]) : oddValue(rng);
          }
        }),
    };
  },
  codes_codebooks: (rng) => ({
    cls: "codes_codebooks",
    base: pick(rng, ["compressed", "rtn"] as BaseName[]),
    what: "code values or codebook / scale values",
    apply: (dir) => {
      const file = stFileOf(dir);
      const st = readSt(file);
      const names = tensorNames(st).filter((n) => /\.(codes|codebook|scales|zeros|qweight)$/.test(n));
      const name = pick(rng, names);
      const e = st.header[name] as { dtype: string; data_offsets: [number, number] };
      const [b, en] = e.data_offsets;
      const view = st.data.subarray(b, en);
      const count = 1 + rng.int(3);
      for (let j = 0; j < count; j++) {
        const at = rng.int(Math.max(1, view.length >> 1)) * 2;
        if (e.dtype === "U16") view.writeUInt16LE(pick(rng, [65535, 60000, 1024, 0]), at);
        else if (e.dtype === "F16" || e.dtype === "BF16")
          view.writeUInt16LE(pick(rng, [0x7c00, 0xfc00, 0x7e00, 0x7f80, 0x7fc0]), at);
        else view[at] = rng.int(256);
      }
      writeStText(file, st.text, st.data);
    },
  }),
  tokenizer: (rng) => ({
    cls: "config_fields",
    base: "stories",
    what: "tokenizer files",
    apply: (dir) => {
      const f = path.join(dir, pick(rng, ["tokenizer.json", "tokenizer_config.json"]));
      fs.writeFileSync(f, pick(rng, ["", "{", "[]", '{"model": 3}', "\u00ff\u00fe", '{"added_tokens": "x"}', "null"]));
    },
  }),
};

const CLASS_NAMES = Object.keys(MAKERS);

/** Case i of a run with `seed`: one mutation of one base. */
export function mutation(seed: number, i: number, bases: Bases): Mutation {
  const rng = new Rng(((seed * 2654435761) ^ (i * 40503)) >>> 0);
  const make = MAKERS[CLASS_NAMES[i % CLASS_NAMES.length]];
  return make(rng, bases);
}

/** A copy of a base for a case: small bases copied whole, llama-en-26m with links to its shards. */
export function prepareCase(base: string, dir: string, linkShards: boolean): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(base)) {
    const src = path.join(base, f);
    if (linkShards && f.endsWith(".safetensors")) fs.symlinkSync(src, path.join(dir, f));
    else fs.copyFileSync(src, path.join(dir, f));
  }
}

export const SAFETENSORS_BASES = safetensorsBases;

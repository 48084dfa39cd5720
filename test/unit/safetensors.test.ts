// safetensors: writer/reader round trip for every dtype, sharded index, lazy reads, and one typed error per kind
// of corruption.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { INDEX_FILE, openCheckpoint, SafetensorsError, SafetensorsFile, writeSafetensors } from "../../src/index.js";
import { listTree, tmpDir } from "../helpers/tmp.js";

/** Builds raw safetensors bytes from a header object and a data section. */
function rawFile(header: unknown, data: Uint8Array, headerLenOverride?: bigint): Buffer {
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLenOverride ?? BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

function expectSafetensorsError(fn: () => unknown, code: string, messagePart: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SafetensorsError);
    expect((e as SafetensorsError).code).toBe(`safetensors.${code}`);
    expect((e as Error).message).toMatch(messagePart);
    return;
  }
  throw new Error(`expected a SafetensorsError ${code}`);
}

describe("safetensors round trip", () => {
  it("writes and reads back every dtype, shape and metadata", () => {
    const dir = tmpDir();
    const file = path.join(dir, "a.safetensors");
    const f32 = Float32Array.from([1.5, -2, 3.25, 0]);
    const i64 = BigInt64Array.from([1n, -2n, 3n]);
    const u8 = Uint8Array.from([0, 255, 7]);
    const f16 = Uint16Array.from([0x3c00, 0xc000]); // 1, -2
    const bf16 = Uint16Array.from([0x3f80, 0x4040]); // 1, 3
    const i32 = Int32Array.from([7, -8]);
    writeSafetensors(
      file,
      [
        { name: "f32", dtype: "F32", shape: [2, 2], data: f32 },
        { name: "i64", dtype: "I64", shape: [3], data: i64 },
        { name: "u8", dtype: "U8", shape: [3], data: u8 },
        { name: "f16", dtype: "F16", shape: [2], data: f16 },
        { name: "bf16", dtype: "BF16", shape: [1, 2], data: bf16 },
        { name: "i32", dtype: "I32", shape: [2], data: i32 },
        { name: "empty", dtype: "F32", shape: [0, 3], data: new Float32Array(0) },
      ],
      { format: "pt" },
    );
    const st = SafetensorsFile.open(file);
    expect(st.metadata).toEqual({ format: "pt" });
    expect(st.names().sort()).toEqual(["bf16", "empty", "f16", "f32", "i32", "i64", "u8"]);
    expect(Array.from(st.readFloat32("f32"))).toEqual([1.5, -2, 3.25, 0]);
    expect(Array.from(st.readRaw("i64") as BigInt64Array)).toEqual([1n, -2n, 3n]);
    expect(Array.from(st.readFloat32("i64"))).toEqual([1, -2, 3]);
    expect(Array.from(st.readRaw("u8") as Uint8Array)).toEqual([0, 255, 7]);
    expect(Array.from(st.readFloat32("f16"))).toEqual([1, -2]);
    expect(Array.from(st.readFloat32("bf16"))).toEqual([1, 3]);
    expect(st.info("bf16")!.shape).toEqual([1, 2]);
    expect(Array.from(st.readRaw("i32") as Int32Array)).toEqual([7, -8]);
    expect(st.readFloat32("empty").length).toBe(0);
    st.close();
    // header padded to a multiple of 8 bytes, as the Python library writes it
    const n = Number(fs.readFileSync(file).readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    expect(listTree(dir)).toEqual(["a.safetensors"]);
  });

  it("reads a sharded checkpoint through model.safetensors.index.json", () => {
    const dir = tmpDir();
    writeSafetensors(path.join(dir, "s1.safetensors"), [
      { name: "a", dtype: "F32", shape: [1], data: Float32Array.of(1) },
    ]);
    writeSafetensors(path.join(dir, "s2.safetensors"), [
      { name: "b", dtype: "F32", shape: [1], data: Float32Array.of(2) },
    ]);
    fs.writeFileSync(
      path.join(dir, INDEX_FILE),
      JSON.stringify({ weight_map: { a: "s1.safetensors", b: "s2.safetensors" } }),
    );
    const src = openCheckpoint(dir);
    expect(src.names().sort()).toEqual(["a", "b"]);
    expect(src.readFloat32("b")[0]).toBe(2);
    src.close();
  });
});

describe("safetensors rejects bad files with a typed error", () => {
  const tensor = { dtype: "F32", shape: [2], data_offsets: [0, 8] };
  const write = (buf: Buffer): string => {
    const file = path.join(tmpDir(), "bad.safetensors");
    fs.writeFileSync(file, buf);
    return file;
  };

  it("truncated shard (data shorter than the header says)", () => {
    const file = write(rawFile({ w: tensor }, new Uint8Array(5)));
    expectSafetensorsError(
      () => SafetensorsFile.open(file),
      "truncated",
      /need 8 data bytes but the file holds only 5/,
    );
  });

  it("file shorter than the 8-byte length prefix", () => {
    const file = write(Buffer.from([1, 2, 3]));
    expectSafetensorsError(() => SafetensorsFile.open(file), "truncated", /shorter than the 8-byte/);
  });

  it("header length larger than the file", () => {
    const file = write(rawFile({ w: tensor }, new Uint8Array(8), 5000n));
    expectSafetensorsError(() => SafetensorsFile.open(file), "header_past_eof", /runs past the end/);
  });

  it("header length over the sanity limit", () => {
    const file = write(rawFile({ w: tensor }, new Uint8Array(8), 1n << 40n));
    expectSafetensorsError(() => SafetensorsFile.open(file), "header_too_large", /exceeds/);
  });

  it("header that is not JSON", () => {
    const h = Buffer.from("{not json");
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length));
    const file = write(Buffer.concat([len, h]));
    expectSafetensorsError(() => SafetensorsFile.open(file), "bad_json", /not valid JSON/);
  });

  it("offsets out of bounds", () => {
    const file = write(rawFile({ w: { dtype: "F32", shape: [2], data_offsets: [8, 16] } }, new Uint8Array(8)));
    expectSafetensorsError(() => SafetensorsFile.open(file), "out_of_bounds", /\[8, 16\] run past the data section/);
    const gap = {
      a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
      b: { dtype: "F32", shape: [1], data_offsets: [8, 12] },
    };
    const file2 = write(rawFile(gap, new Uint8Array(12)));
    expectSafetensorsError(() => SafetensorsFile.open(file2), "gap", /"b" leaves a gap/);
  });

  it("overlapping tensors", () => {
    const header = {
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
    };
    const file = write(rawFile(header, new Uint8Array(12)));
    expectSafetensorsError(() => SafetensorsFile.open(file), "overlap", /"b" overlaps/);
  });

  it("numel × dtype size different from the byte span", () => {
    const file = write(rawFile({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)));
    expectSafetensorsError(() => SafetensorsFile.open(file), "bad_offsets", /needs 12 bytes but data_offsets span 8/);
  });

  it("unknown dtype", () => {
    const file = write(rawFile({ w: { dtype: "F8_E9", shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)));
    expectSafetensorsError(() => SafetensorsFile.open(file), "unknown_dtype", /unknown dtype "F8_E9"/);
  });

  it("index pointing outside the model directory", () => {
    const root = tmpDir();
    const dir = path.join(root, "model");
    fs.mkdirSync(dir);
    writeSafetensors(path.join(root, "outside.safetensors"), [
      { name: "a", dtype: "F32", shape: [1], data: Float32Array.of(1) },
    ]);
    fs.writeFileSync(path.join(dir, INDEX_FILE), JSON.stringify({ weight_map: { a: "../outside.safetensors" } }));
    expectSafetensorsError(() => openCheckpoint(dir), "index_outside", /points outside the model directory/);
    fs.writeFileSync(path.join(dir, INDEX_FILE), JSON.stringify({ weight_map: { a: "/etc/passwd" } }));
    expectSafetensorsError(() => openCheckpoint(dir), "index_outside", /outside/);
  });

  it("index pointing to a missing shard", () => {
    const dir = tmpDir();
    fs.writeFileSync(
      path.join(dir, INDEX_FILE),
      JSON.stringify({ weight_map: { a: "model-00001-of-00002.safetensors" } }),
    );
    expectSafetensorsError(
      () => openCheckpoint(dir),
      "missing_shard",
      /model-00001-of-00002.safetensors.*does not exist/,
    );
  });

  it("index naming a tensor its shard does not hold", () => {
    const dir = tmpDir();
    writeSafetensors(path.join(dir, "s.safetensors"), [
      { name: "a", dtype: "F32", shape: [1], data: Float32Array.of(1) },
    ]);
    fs.writeFileSync(path.join(dir, INDEX_FILE), JSON.stringify({ weight_map: { zz: "s.safetensors" } }));
    expectSafetensorsError(() => openCheckpoint(dir), "bad_index", /"zz" is in s.safetensors, but it is not/);
  });

  it("writer refuses a data size that does not match the shape, and leaves no file", () => {
    const dir = tmpDir();
    expectSafetensorsError(
      () =>
        writeSafetensors(path.join(dir, "x.safetensors"), [
          { name: "a", dtype: "F32", shape: [3], data: Float32Array.of(1) },
        ]),
      "bad_offsets",
      /needs 12 bytes/,
    );
    expect(listTree(dir)).toEqual([]);
  });
});

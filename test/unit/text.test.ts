// Text inputs are strict UTF-8: the validator agrees with the WHATWG decoder on random bytes (valid exactly when
// the fatal decoder accepts; everything before the reported offset decodes), UTF-16 is named as such, and .jsonl
// documents are joined by blank lines.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { DataError, decodeUtf8, parseDocuments, Rng, readTextFile } from "../../src/index.js";
import { firstInvalidUtf8 } from "../../src/io/text.js";
import { tmpDir } from "../helpers/tmp.js";

const fatal = (b: Uint8Array) => {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
};

describe("UTF-8 validation", () => {
  it("agrees with the fatal TextDecoder on 3,000 random byte strings (seed 11)", () => {
    const rng = new Rng(11);
    const pieces = [
      [0x41],
      [0xc3, 0xa9],
      [0xe2, 0x82, 0xac],
      [0xf0, 0x9f, 0x98, 0x80],
      [0xed, 0xa0, 0x80],
      [0xc0, 0xaf],
      [0xf4, 0x90, 0x80, 0x80],
      [0x80],
      [0xe0, 0x80, 0x80],
      [0xff],
    ];
    for (let n = 0; n < 3000; n++) {
      const bytes: number[] = [];
      const len = rng.int(12);
      for (let i = 0; i < len; i++) {
        const p = pieces[rng.int(pieces.length)];
        bytes.push(...(rng.next() < 0.2 ? p.slice(0, 1 + rng.int(p.length)) : p));
      }
      const b = Uint8Array.from(bytes);
      const at = firstInvalidUtf8(b);
      expect(at === b.length, `case ${n}: [${bytes.map((x) => x.toString(16))}]`).toBe(fatal(b));
      expect(fatal(b.subarray(0, at)), `case ${n}`).toBe(true);
    }
  });

  it("names UTF-16 and zero bytes, and passes a leading BOM through", () => {
    expect(() => decodeUtf8(Buffer.from([0xfe, 0xff, 0, 65]), "x")).toThrow(/UTF-16/);
    expect(() => decodeUtf8(Buffer.from("hello", "utf16le"), "x")).toThrow(/looks like UTF-16/);
    expect(() => decodeUtf8(Buffer.from([65, 0, 0, 0, 66]), "x")).toThrow(DataError);
    expect(decodeUtf8(Buffer.from([0xef, 0xbb, 0xbf, 0x68, 0x69]), "x")).toBe("hi");
  });
});

describe("data files", () => {
  const root = tmpDir();
  it("reads .jsonl documents (text, or prefix + gold_completion) joined by blank lines", () => {
    expect(parseDocuments('{"text":"a"}\n\n{"prefix":"b","gold_completion":"c"}\n', "f.jsonl")).toEqual(["a", "bc"]);
    const f = path.join(root, "d.jsonl");
    fs.writeFileSync(f, '{"text":"one"}\n{"text":"two"}\n');
    expect(readTextFile(f, "--data")).toBe("one\n\ntwo");
  });

  it("refuses a missing file, a directory, an empty file and a jsonl line that is not an object with text", () => {
    expect(() => readTextFile(path.join(root, "nope.txt"), "--data")).toThrow(/--data .*nope\.txt: no such file/);
    expect(() => readTextFile(root, "--data")).toThrow(/is a directory, not a text file/);
    const e = path.join(root, "empty.txt");
    fs.writeFileSync(e, "  \n");
    expect(() => readTextFile(e, "--data")).toThrow(/is empty/);
    const j = path.join(root, "bad.jsonl");
    fs.writeFileSync(j, '["text"]\n');
    expect(() => readTextFile(j, "--data")).toThrow(/bad\.jsonl:1: expected a "text" or "prefix" string field/);
  });
});

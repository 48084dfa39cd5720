// Token ids of the eval texts equal transformers' (goldens' first 4096 ids, and the whole text's count and sha256).

import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import { loadTokenizer } from "../../src/index.js";
import { Golden, MODELS, type SharedModel, TEXTS } from "../helpers/golden.js";

describe.each(Object.keys(MODELS) as SharedModel[])("tokenizer %s", (model) => {
  const golden = new Golden(model);
  const tok = loadTokenizer(MODELS[model]);
  for (const [textName, ref] of Object.entries(golden.meta.ppl)) {
    it(`${textName}: whole-text ids match (count, sha256, first 4096)`, () => {
      const ids = tok.encode(fs.readFileSync(TEXTS[textName], "utf8"));
      expect(ids.length).toBe(ref.tokens);
      const first = golden.i32(`ids.${textName}.first4096`);
      expect(Array.from(ids.slice(0, first.length))).toEqual(Array.from(first));
      const sha = createHash("sha256")
        .update(new Uint8Array(Int32Array.from(ids).buffer))
        .digest("hex");
      expect(sha).toBe(ref.ids_sha256);
    });
  }

  it("decode inverts encode on plain text", () => {
    const text = "Once upon a time, there was a cat.";
    expect(tok.decode(tok.encode(text))).toBe(text);
  });
});

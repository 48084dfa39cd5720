// A fingerprint of a model directory from what defines its weights without reading them: config.json's bytes and
// every safetensors file's name, size and header (tensor names, dtypes, shapes, offsets). Two directories with the
// same fingerprint hold the same checkpoint unless tensor bytes were edited in place; `compare` uses it to reuse a
// variant only when it was made from the same source model.

import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { openCheckpoint } from "./safetensors.js";

export function modelFingerprint(dir: string): string {
  const h = createHash("sha256");
  h.update(fs.readFileSync(path.join(dir, "config.json")));
  const src = openCheckpoint(dir);
  try {
    for (const name of src.names().sort()) {
      const t = src.info(name)!;
      h.update(`\n${name} ${t.dtype} [${t.shape.join(",")}] ${path.basename(t.file)}@${t.fileOffset}+${t.byteLength}`);
    }
  } finally {
    src.close();
  }
  return `sha256:${h.digest("hex")}`;
}

// The committed WebAssembly kernels (src/backend/wasm/kernels_wasm.ts) are exactly what wasm/assembly/ builds to
// with the pinned AssemblyScript: nobody ships a binary its sources do not produce.

import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { expect, it } from "vitest";

it("wasm kernels rebuild byte-for-byte from wasm/assembly/", () => {
  const root = path.resolve(__dirname, "../..");
  const r = spawnSync(process.execPath, [path.join(root, "wasm/build.mjs"), "--check"], {
    cwd: root,
    encoding: "utf8",
  });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/kernels reproducible/);
}, 60_000);

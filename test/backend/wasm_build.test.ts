// The committed WebAssembly kernels (src/backend/wasm/kernels_wasm.ts) are exactly what wasm/assembly/ builds to
// with the pinned AssemblyScript: nobody ships a binary its sources do not produce.

import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { expect, it } from "vitest";
import { KERNELS_WASM_BASE64 } from "../../src/backend/wasm/kernels_wasm.js";

it("wasm kernels rebuild byte-for-byte from wasm/assembly/", () => {
  const root = path.resolve(__dirname, "../..");
  const r = spawnSync(process.execPath, [path.join(root, "wasm/build.mjs"), "--check"], {
    cwd: root,
    encoding: "utf8",
  });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/kernels reproducible/);
}, 60_000);

it("no kernel module owns static data (the host lays regions out from address 0; workers share the memory)", () => {
  for (const [variant, b64] of Object.entries(KERNELS_WASM_BASE64)) {
    const bytes = Buffer.from(b64, "base64");
    // walk the sections: id byte, LEB128 length, payload
    const ids: number[] = [];
    let p = 8;
    while (p < bytes.length) {
      ids.push(bytes[p++]);
      let len = 0;
      for (let shift = 0; ; shift += 7) {
        const b = bytes[p++];
        len |= (b & 0x7f) << shift;
        if (!(b & 0x80)) break;
      }
      p += len;
    }
    expect(p, variant).toBe(bytes.length);
    expect(ids, `${variant}: a data (11) or data-count (12) section`).not.toContain(11);
    expect(ids, variant).not.toContain(12);
    expect(ids, `${variant}: imports its memory`).toContain(2);
  }
});

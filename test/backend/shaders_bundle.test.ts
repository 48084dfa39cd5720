// The committed shader bundle (src/backend/webgpu/wgsl.ts) holds exactly the .wgsl files of
// src/backend/webgpu/shaders/, and every op of the contract has its shader there.

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import { WGSL } from "../../src/backend/webgpu/wgsl.js";

const root = path.resolve(__dirname, "../..");

it("wgsl.ts is up to date with shaders/*.wgsl", () => {
  const r = spawnSync(process.execPath, [path.join(root, "scripts/bundle_shaders.mjs"), "--check"], {
    cwd: root,
    encoding: "utf8",
  });
  expect(r.status, r.stderr).toBe(0);
});

it("one shader file per bundled shader, each with a documented header", () => {
  const files = fs
    .readdirSync(path.join(root, "src/backend/webgpu/shaders"))
    .filter((f) => f.endsWith(".wgsl"))
    .map((f) => f.slice(0, -5))
    .sort();
  expect(Object.keys(WGSL).sort()).toEqual(files);
  for (const [name, code] of Object.entries(WGSL)) expect(code.startsWith(`// ${name}`), name).toBe(true);
});

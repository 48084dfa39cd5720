// The command line as a user runs it (node dist/cli/main.js, built by `npm test`): JSON output contracts,
// streaming generation, and for each kind of bad input a clear error, a non-zero exit and nothing written.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { INDEX_FILE, WebGpuBackend } from "../../src/index.js";
import { WEBGPU } from "../helpers/backends.js";
import { cli, EXAMPLE, TEXT } from "../helpers/cli.js";
import { MODELS } from "../helpers/golden.js";
import { listTree, tmpDir } from "../helpers/tmp.js";

/** A copy of the example model with one file replaced or removed. */
function brokenModel(mutate: (dir: string) => void): string {
  const dir = path.join(tmpDir(), "model");
  fs.cpSync(EXAMPLE, dir, { recursive: true });
  mutate(dir);
  return dir;
}

function setHeaderLength(file: string, n: bigint): void {
  const buf = fs.readFileSync(file);
  buf.writeBigUInt64LE(n, 0);
  fs.writeFileSync(file, buf);
}

/** Rewrites the JSON header of a safetensors file (same data section). */
function editHeader(
  file: string,
  edit: (h: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>) => void,
): void {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8"));
  edit(header);
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h, buf.subarray(8 + n)]));
}

describe("cli", () => {
  it("--help lists the commands", () => {
    const r = cli("--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/inspect[\s\S]*eval[\s\S]*generate/);
  });

  it("inspect --json describes the example model", () => {
    const r = cli("inspect", "--model", EXAMPLE, "--json");
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.params).toBe(260032);
    expect(s.config.architecture).toBe("LlamaForCausalLM");
    expect(s.groups.mlp.dtypes).toEqual({ F32: 15 });
  });

  it("inspect reads a sharded bf16 checkpoint", () => {
    const r = cli("inspect", "--model", MODELS["llama-en-26m"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/BF16/);
  });

  it("eval --json prints exactly one JSON object on stdout", () => {
    const r = cli("eval", "--model", EXAMPLE, "--data", TEXT, "--seqlen", "512", "--max-windows", "8", "--json");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.length).toBe(1);
    const o = JSON.parse(lines[0]);
    expect(Object.keys(o).sort()).toEqual([
      "backend",
      "device",
      "meanNll",
      "ppl",
      "seconds",
      "seqlen",
      "tokens",
      "windows",
    ]);
    expect(o.windows).toBe(8);
    expect(Math.abs(o.ppl - 4.449540468822971) / 4.449540468822971).toBeLessThan(1e-4);
    expect(r.stderr).toMatch(/eval .*8\/8 win/);
  });

  for (const backend of ["cpu", "webgpu", "auto"]) {
    const title = `eval --backend ${backend} gives the golden perplexity and names what ran it`;
    if (backend === "webgpu" && !(WEBGPU instanceof WebGpuBackend)) {
      it.skip(`${title} — skipped: ${WEBGPU.reason}`, () => {});
      continue;
    }
    it(title, () => {
      const r = cli(
        "eval",
        "--model",
        EXAMPLE,
        "--data",
        TEXT,
        "--seqlen",
        "512",
        "--max-windows",
        "8",
        "--json",
        "--backend",
        backend,
      );
      expect(r.code, r.stderr).toBe(0);
      const o = JSON.parse(r.stdout);
      // auto never picks a software adapter (llvmpipe, SwiftShader): it is slower than the CPU backend
      const expected =
        backend === "auto" ? (WEBGPU instanceof WebGpuBackend && !WEBGPU.software ? "webgpu" : "cpu") : backend;
      expect(o.backend).toBe(expected);
      expect(o.device).toMatch(expected === "webgpu" ? /^WebGPU on / : /WebAssembly|TypeScript/);
      expect(Math.abs(o.ppl - 4.449540468822971) / 4.449540468822971).toBeLessThan(1e-4);
    });
  }

  it("generate streams the greedy continuation", () => {
    const r = cli(
      "generate",
      "--model",
      EXAMPLE,
      "--prompt",
      "Once upon a time",
      "--max-new-tokens",
      "20",
      "--temperature",
      "0",
    );
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith("Once upon a time, there was a little girl named Lily.")).toBe(true);
  });

  it("unknown options and bad values are usage errors (exit 2)", () => {
    expect(cli("eval", "--model", EXAMPLE, "--data", TEXT, "--bogus").code).toBe(2);
    const r = cli("eval", "--model", EXAMPLE, "--data", TEXT, "--seqlen", "abc");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--seqlen must be an integer/);
    expect(cli("eval", "--model", EXAMPLE, "--data", TEXT, "--backend", "tpu").stderr).toMatch(/unknown backend "tpu"/);
    expect(cli("generate", "--model", EXAMPLE, "--prompt", "x", "--top-p", "0").stderr).toMatch(/--top-p/);
  });

  const st = (dir: string) => path.join(dir, "model.safetensors");
  const BAD: [string, (dir: string) => void, RegExp][] = [
    ["truncated shard", (d) => fs.truncateSync(st(d), fs.statSync(st(d)).size - 100), /truncated download\?/],
    ["header length larger than the file", (d) => setHeaderLength(st(d), 10_000_000n), /runs past the end of the file/],
    [
      "offsets out of bounds",
      (d) =>
        editHeader(st(d), (h) => {
          h["model.norm.weight"].data_offsets = [10_000_000, 10_000_256];
        }),
      /"model.norm.weight" data_offsets \[10000000, 10000256\] run past the data section/,
    ],
    [
      "overlapping offsets",
      (d) =>
        editHeader(st(d), (h) => {
          const spans = Object.entries(h)
            .filter(([k]) => k !== "__metadata__")
            .sort(([, x], [, y]) => x.data_offsets[0] - y.data_offsets[0]);
          const [, second] = spans[1];
          second.data_offsets = [second.data_offsets[0] - 4, second.data_offsets[1] - 4];
        }),
      /overlaps/,
    ],
    [
      "unknown dtype",
      (d) =>
        editHeader(st(d), (h) => {
          h["model.norm.weight"].dtype = "Q4_K";
        }),
      /unknown dtype "Q4_K"/,
    ],
    [
      "index pointing outside the directory",
      (d) =>
        fs.writeFileSync(
          path.join(d, INDEX_FILE),
          JSON.stringify({ weight_map: { "model.norm.weight": "../../x.safetensors" } }),
        ),
      /points outside the model directory/,
    ],
    [
      "index pointing to a missing shard",
      (d) =>
        fs.writeFileSync(
          path.join(d, INDEX_FILE),
          JSON.stringify({ weight_map: { "model.norm.weight": "model-00002-of-00002.safetensors" } }),
        ),
      /shard "model-00002-of-00002.safetensors" .* does not exist/,
    ],
    ["missing config.json", (d) => fs.rmSync(path.join(d, "config.json")), /config.json: not found/],
    [
      "garbled config.json",
      (d) => fs.writeFileSync(path.join(d, "config.json"), '{"architectures": ['),
      /config.json: not valid JSON/,
    ],
    [
      "unsupported architecture",
      (d) => {
        const c = JSON.parse(fs.readFileSync(path.join(d, "config.json"), "utf8"));
        c.architectures = ["GPTNeoXForCausalLM"];
        fs.writeFileSync(path.join(d, "config.json"), JSON.stringify(c));
      },
      /architecture "GPTNeoXForCausalLM" is not supported/,
    ],
  ];
  for (const [name, mutate, message] of BAD) {
    it(`bad input: ${name} → error, exit 1, nothing written`, () => {
      const dir = brokenModel(mutate);
      const before = listTree(path.dirname(dir));
      for (const args of [
        ["eval", "--model", dir, "--data", TEXT, "--max-windows", "1"],
        ["inspect", "--model", dir],
      ]) {
        const r = cli(...args);
        expect(r.code, `${args[0]}: ${r.stderr}`).toBe(1);
        expect(r.stderr).toMatch(/^error: /);
        expect(r.stderr).toMatch(message);
        expect(r.stdout).toBe("");
      }
      expect(listTree(path.dirname(dir))).toEqual(before);
    });
  }
});

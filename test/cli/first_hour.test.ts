// What a new user meets first, from the command line: `--bits B` alone works and says what it chose, bad flags
// are usage errors (exit 2) and bad inputs bad-input errors (exit 1) before any work, text inputs are strict
// UTF-8, outputs are checked before k-means runs, help texts list every backend, and `auto` prints no GPU-driver
// text on a machine without a GPU.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { cli, EXAMPLE, TEXT } from "../helpers/cli.js";
import { listTree, tmpDir } from "../helpers/tmp.js";

const root = tmpDir();
const calib = path.join(root, "calib.txt");
fs.writeFileSync(calib, fs.readFileSync(TEXT, "utf8").slice(100_000));

describe("--bits alone", () => {
  for (const bits of ["3", "2.5", "3.25", "1"]) {
    it(`compress --bits ${bits} picks a plan, prints it and stays within the budget`, () => {
      const out = path.join(root, `b${bits}`);
      const r = cli("compress", "--model", EXAMPLE, "--out", out, "--bits", bits, "--iters", "2", "--json");
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(
        /^plan: --share block; (attention|mlp) d = \d+, K = \d+, \d+-bit codes \(×\d\)(; (attention|mlp) d = \d+, K = \d+, \d+-bit codes \(×\d\))* → [\d.]+ bits per weight/m,
      );
      const o = JSON.parse(r.stdout);
      expect(o.bpw).toBeLessThanOrEqual(Number(bits));
      expect(o.bpw).toBeGreaterThan(Number(bits) - 0.1);
      expect(o.options.share).toBe("block");
    });
  }
});

describe("usage errors (exit 2) before any work", () => {
  const out = path.join(root, "never");
  const CASES: [string, string[], RegExp][] = [
    ["--bits 17", ["--bits", "17"], /--bits must be above 0 and below 16/],
    ["--bits 16", ["--bits", "16"], /below 16/],
    ["--bits 0", ["--bits", "0"], /above 0/],
    ["--bits=-1", ["--bits=-1"], /above 0/],
    ["--iters 0", ["--bits", "3", "--iters", "0"], /--iters must be an integer ≥ 1/],
    [
      "--calib without --finetune",
      ["--bits", "3", "--calib", calib],
      /--calib is a stage-2 option; it needs --finetune blockwise/,
    ],
    ["--epochs without --finetune", ["--bits", "3", "--epochs", "2"], /--epochs is a stage-2 option/],
    [
      "--group-size with cluscomp",
      ["--bits", "3", "--group-size", "64"],
      /--group-size applies to --method rtn or gptq only/,
    ],
    [
      "--share with rtn",
      ["--method", "rtn", "--bits", "3", "--share", "block"],
      /--share applies to --method cluscomp, reallm or llm-codebook only/,
    ],
    ["rtn --bits 2.5", ["--method", "rtn", "--bits", "2.5"], /integer in 1\.\.8/],
    ["no --bits", [], /give --bits B/],
    [
      "--share model with --finetune",
      ["--bits", "3", "--share", "model", "--finetune", "blockwise", "--calib", calib],
      /--share none or block/,
    ],
    ["--lr 0", ["--bits", "3", "--finetune", "blockwise", "--calib", calib, "--lr", "0"], /--lr must be > 0/],
  ];
  for (const [name, args, message] of CASES) {
    it(name, () => {
      const r = cli("compress", "--model", EXAMPLE, "--out", out, ...args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^error: /);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/k-means|plan:/);
      expect(fs.existsSync(out)).toBe(false);
    });
  }

  it("a command without arguments prints its help; --help of every command lists webgpu", () => {
    const top = cli();
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/commands:[\s\S]*decompress/);
    for (const cmd of ["inspect", "compress", "decompress", "finetune", "compare", "eval", "generate"]) {
      const bare = cli(cmd);
      expect(bare.code, cmd).toBe(0);
      expect(bare.stdout).toMatch(new RegExp(`^cluscomp ${cmd} `));
      const help = cli(cmd, "--help");
      expect(help.stdout).toBe(bare.stdout);
      if (!["inspect", "decompress"].includes(cmd))
        expect(help.stdout, cmd).toMatch(/--backend NAME +auto .*\| webgpu \|/);
    }
    expect(cli("compare", "--help").stdout).toMatch(
      /keys: method, bits, vector-dim, clusters, codebooks, rank, salient, code-bits, share[\s\S]*finetune/,
    );
  });

  it("generate needs exactly one prompt source; eval --batch-size does not go with --reference", () => {
    expect(cli("generate", "--model", EXAMPLE).code).toBe(2);
    expect(cli("generate", "--model", EXAMPLE, "--prompt", "a", "--prompt-file", TEXT).code).toBe(2);
    const r = cli("eval", "--model", EXAMPLE, "--data", TEXT, "--reference", EXAMPLE, "--batch-size", "2");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--batch-size does not apply with --reference/);
  });
});

describe("bad input (exit 1), reported before any work", () => {
  it("--out under a file, in an unwritable place, or a non-directory; --model naming a file", () => {
    const file = path.join(root, "a-file");
    fs.writeFileSync(file, "x");
    const cases: [string[], RegExp][] = [
      [["--out", path.join(file, "sub", "out")], /a-file is a file, so nothing can be written under it/],
      [["--out", "/proc/cluscomp-out"], /--out \/proc\/cluscomp-out: cannot (create|write)/],
      [["--out", file], /exists and is not a directory/],
    ];
    for (const [args, message] of cases) {
      const r = cli("compress", "--model", EXAMPLE, "--bits", "3", ...args);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).not.toMatch(/internal error|k-means|at .*\.js/);
    }
    const m = cli(
      "compress",
      "--model",
      path.join(EXAMPLE, "config.json"),
      "--out",
      path.join(root, "o"),
      "--bits",
      "3",
    );
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/--model .*config\.json is a file; give the model's directory/);
    const e = cli("eval", "--model", path.join(root, "no-such-model"), "--data", TEXT);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/neither a directory nor in the Hugging Face cache|no such directory/);
  });

  it("a parent directory that does not exist yet is created", () => {
    const out = path.join(root, "new", "deeper", "q");
    const r = cli("compress", "--model", EXAMPLE, "--out", out, "--bits", "3", "--iters", "1");
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(out, "config.json"))).toBe(true);
  });

  it("eval data must be UTF-8: UTF-16 (with or without BOM) and invalid bytes are refused", () => {
    const text = "Once upon a time there was a cat. ".repeat(100);
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]);
    const noBom = Buffer.from(text, "utf16le");
    const bad = Buffer.concat([Buffer.from(text), Buffer.from([0xc3, 0x28]), Buffer.from(text)]);
    const cases: [Buffer, RegExp][] = [
      [le, /is UTF-16 \(it starts with a UTF-16 byte-order mark\)/],
      [noBom, /looks like UTF-16/],
      [bad, /is not valid UTF-8 \(first bad byte at offset 3400\)/],
    ];
    for (const [bytes, message] of cases) {
      const f = path.join(root, "data.txt");
      fs.writeFileSync(f, bytes);
      const r = cli("eval", "--model", EXAMPLE, "--data", f, "--seqlen", "64");
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe("");
    }
  });

  it(".jsonl eval data is read as documents joined by blank lines, the same text as the joined file", () => {
    const docs = fs.readFileSync(TEXT, "utf8").slice(0, 30_000).split("\n\n");
    const jsonl = path.join(root, "docs.jsonl");
    fs.writeFileSync(jsonl, `${docs.map((t) => JSON.stringify({ text: t })).join("\n")}\n`);
    const joined = path.join(root, "docs.txt");
    fs.writeFileSync(joined, docs.join("\n\n"));
    const run = (f: string) => cli("eval", "--model", EXAMPLE, "--data", f, "--seqlen", "256", "--json");
    const a = run(jsonl);
    const b = run(joined);
    expect(a.code, a.stderr).toBe(0);
    expect(JSON.parse(a.stdout).ppl).toBe(JSON.parse(b.stdout).ppl);
    fs.writeFileSync(jsonl, '{"text": "ok"}\n{"title": "no text"}\n');
    const bad = run(jsonl);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/docs\.jsonl:2: expected a "text" or "prefix" string field/);
  });

  it("compare refuses a run spec with unknown keys or stray stage-2 keys, before any work", () => {
    const out = path.join(root, "cmp-bad");
    const a = cli("compare", "--model", EXAMPLE, "--data", TEXT, "--out", out, "--run", "bits=3 colour=red");
    expect(a.code).toBe(2);
    const b = cli("compare", "--model", EXAMPLE, "--data", TEXT, "--out", out, "--run", "bits=3 epochs=2");
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/epochs is a stage-2 key; it needs finetune=blockwise/);
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe("quiet output", () => {
  it("--backend auto prints no GPU-driver text on a machine without a GPU", () => {
    const hasGpuNode =
      fs.existsSync("/dev/nvidia0") ||
      (fs.existsSync("/dev/dri") && fs.readdirSync("/dev/dri").some((f) => f.startsWith("renderD")));
    const r = cli("eval", "--model", EXAMPLE, "--data", TEXT, "--seqlen", "512", "--max-windows", "1", "--json");
    expect(r.code, r.stderr).toBe(0);
    if (!hasGpuNode) {
      expect(JSON.parse(r.stdout).backend).toBe("cpu");
      expect(r.stderr).not.toMatch(/Vulkan|Warning|artificially reduced|\.cpp:/);
    }
    // whatever the machine, every stderr line is ours: progress bars only
    for (const line of r.stderr.split("\n").filter((l) => l.trim() !== ""))
      expect(line).toMatch(/^eval \(windows of 512\)/);
  });

  it("inspect of a compressed model shows its quantization, the original parameter count and the context", () => {
    const out = path.join(root, "insp");
    expect(
      cli("compress", "--model", EXAMPLE, "--out", out, "--bits", "3", "--iters", "1", "--code-bits", "16").code,
    ).toBe(0);
    const j = JSON.parse(cli("inspect", "--model", out, "--json").stdout);
    const orig = JSON.parse(cli("inspect", "--model", EXAMPLE, "--json").stdout);
    expect(j.params).toBe(orig.params);
    expect(j.contextLength).toBe(512);
    expect(j.quantization).toMatchObject({ method: "cluscomp", share: "block", compressedModules: 35, codebooks: 10 });
    expect(j.groups.codebooks.params).toBe(0);
    const text = cli("inspect", "--model", out).stdout;
    expect(text).toMatch(/context {6}512 tokens/);
    expect(text).toMatch(
      /quantization cluscomp, (2\.99\d|3\.000) bits per weight over 35 matrices; share block; 10 codebooks \(d [\d/]+, K [\d–]+, 16-bit codes, F16\); channel scales on 35 matrices \(fp16, one per output row\)/,
    );
    expect(text).toMatch(/finetuning {3}none \(no stage 2\)/);
    expect(text).toMatch(/parameters {3}260\.0K \(260,032, of the original model\)/);
    expect(listTree(out)).toContain("model.safetensors");
  });
});

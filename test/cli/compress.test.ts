// compress / compare from the command line on the bundled example, and compressed directories used directly by
// eval, generate and inspect.

import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { CLI, cli, EXAMPLE, TEXT } from "../helpers/cli.js";
import { listTree, tmpDir } from "../helpers/tmp.js";

describe("cli compress", () => {
  const root = tmpDir();
  const out = path.join(root, "q3");

  it("--json reports bpw, bytes and seconds; the directory is complete", () => {
    const r = cli(
      "compress",
      "--model",
      EXAMPLE,
      "--out",
      out,
      "--bits",
      "3",
      "--vector-dim",
      "8",
      "--share",
      "block",
      "--iters",
      "3",
      "--json",
    );
    expect(r.code, r.stderr).toBe(0);
    const o = JSON.parse(r.stdout);
    expect(o.bpw).toBeGreaterThan(2.9);
    expect(o.bpw).toBeLessThanOrEqual(3);
    expect(o.bytes).toBe(fs.readdirSync(out).reduce((s, f) => s + fs.statSync(path.join(out, f)).size, 0));
    expect(o.seconds).toBeGreaterThan(0);
    expect(fs.readdirSync(out).sort()).toEqual([
      "cluscomp.json",
      "config.json",
      "generation_config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);
    expect(r.stderr).toMatch(/k-means .*Mdist\/s/);
  });

  it("eval, generate and inspect take the compressed directory", () => {
    const e = cli("eval", "--model", out, "--data", TEXT, "--seqlen", "512", "--max-windows", "2", "--json");
    expect(e.code, e.stderr).toBe(0);
    expect(JSON.parse(e.stdout).ppl).toBeGreaterThan(1);
    const g = cli("generate", "--model", out, "--prompt", "Once upon a time", "--max-new-tokens", "8");
    expect(g.code, g.stderr).toBe(0);
    expect(g.stdout.startsWith("Once upon a time")).toBe(true);
    const i = cli("inspect", "--model", out, "--json");
    expect(i.code).toBe(0);
    // packed codes by default: U8 bit streams
    expect(JSON.parse(i.stdout).groups.attention.dtypes.U8).toBe(20);
  });

  it("GPTQ-style codes that would not fit in memory: an explicit request is refused, the default falls back to nearest", () => {
    const big = path.join(root, "big-config");
    fs.mkdirSync(big);
    // one layer with a 2²²-wide MLP input: its Hessian alone is 128 TiB in float64, beyond any machine
    fs.writeFileSync(
      path.join(big, "config.json"),
      JSON.stringify({
        architectures: ["LlamaForCausalLM"],
        hidden_size: 8192,
        intermediate_size: 2 ** 22,
        num_hidden_layers: 1,
        num_attention_heads: 64,
        num_key_value_heads: 8,
        vocab_size: 32000,
        max_position_embeddings: 4096,
      }),
    );
    const args = ["compress", "--model", big, "--out", path.join(root, "never-big"), "--bits", "3", "--calib", TEXT];
    const r = cli(...args, "--assignment", "gptq");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /--assignment gptq holds a block's input Hessians \(\d+\.\d GiB\), more than half this machine's memory/,
    );
    const d = cli(...args, "--finetune", "blockwise");
    expect(d.stderr).toMatch(/note: GPTQ-style codes would hold \d+\.\d GiB .*: nearest codes instead/);
    expect(d.stderr).toMatch(/no \*\.safetensors file/); // and then the missing weights, as before
    expect(fs.existsSync(path.join(root, "never-big"))).toBe(false);
  });

  it("--code-bits min stores ⌈log₂K⌉-bit codes: the same model as 16-bit codes in a smaller file; eval, inspect, decompress read it", () => {
    const base = ["compress", "--model", EXAMPLE, "--vector-dim", "8", "--clusters", "100", "--iters", "3", "--json"];
    const wide = path.join(root, "codes16");
    const packed = path.join(root, "codes7");
    const a = cli(...base, "--out", wide, "--code-bits", "16");
    const b = cli(...base, "--out", packed, "--code-bits", "min");
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const [ra, rb] = [JSON.parse(a.stdout), JSON.parse(b.stdout)];
    expect(rb.bpw).toBeLessThan(ra.bpw);
    expect(rb.bytes).toBeLessThan(ra.bytes);
    expect(b.stderr).toMatch(/K = 100, 7-bit codes/);
    const q = JSON.parse(fs.readFileSync(path.join(packed, "config.json"), "utf8")).quantization_config;
    expect(q.modules["model.layers.0.self_attn.q_proj"].code_bits).toBe(7);
    expect(
      JSON.parse(fs.readFileSync(path.join(wide, "config.json"), "utf8")).quantization_config.modules[
        "model.layers.0.self_attn.q_proj"
      ].code_bits,
    ).toBeUndefined();
    // same seed, same d and K: the same codebooks and codes, so the same perplexity to the last digit
    const ev = (dir: string) =>
      JSON.parse(cli("eval", "--model", dir, "--data", TEXT, "--seqlen", "256", "--max-windows", "2", "--json").stdout)
        .ppl;
    expect(ev(packed)).toBe(ev(wide));
    expect(cli("inspect", "--model", packed).stdout).toMatch(/7-bit codes/);
    const dense = [path.join(root, "dense16"), path.join(root, "dense7")];
    expect(cli("decompress", "--model", wide, "--out", dense[0]).code).toBe(0);
    expect(cli("decompress", "--model", packed, "--out", dense[1]).code).toBe(0);
    expect(
      fs
        .readFileSync(path.join(dense[1], "model.safetensors"))
        .equals(fs.readFileSync(path.join(dense[0], "model.safetensors"))),
    ).toBe(true);
  });

  it("--method reallm: a low-rank part per matrix beside the codebooks; inspect, eval, decompress, stage 2 and train --train lowrank read it", () => {
    const rq = path.join(root, "reallm");
    const r = cli(
      "compress",
      "--model",
      EXAMPLE,
      "--out",
      rq,
      "--method",
      "reallm",
      "--bits",
      "4",
      "--rank",
      "2",
      "--iters",
      "3",
      "--json",
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/low-rank parts of rank 2 \(fp16\) take 0\.\d+ bits per weight/);
    const rep = JSON.parse(r.stdout);
    expect(rep.bpw).toBeLessThanOrEqual(4);
    expect(rep.bpw).toBeGreaterThan(3.5);
    const q = JSON.parse(fs.readFileSync(path.join(rq, "config.json"), "utf8")).quantization_config;
    expect(q.method).toBe("reallm");
    expect(q.rank).toBe(2);
    expect(q.modules["model.layers.0.mlp.down_proj"].rank).toBe(2);
    expect(cli("inspect", "--model", rq).stdout).toMatch(/reallm, .*low-rank parts of rank 2/);
    // the decompressed dense model (W = B·A + decoded residual) evaluates to the same perplexity
    const ev = (dir: string) =>
      JSON.parse(cli("eval", "--model", dir, "--data", TEXT, "--seqlen", "256", "--max-windows", "2", "--json").stdout)
        .ppl as number;
    const dense = path.join(root, "reallm-dense");
    expect(cli("decompress", "--model", rq, "--out", dense).code).toBe(0);
    const [pq, pd] = [ev(rq), ev(dense)];
    expect(Math.abs(pq - pd) / pd).toBeLessThan(1e-5);
    // stage 2 on a reallm model tunes the low-rank factors only: the codebooks stay as stage 1 wrote them
    const tuned = path.join(root, "reallm-s2");
    const f = cli(
      "finetune",
      "--model",
      EXAMPLE,
      "--stage1",
      rq,
      "--out",
      tuned,
      "--calib",
      TEXT,
      "--calib-samples",
      "4",
      "--calib-seqlen",
      "64",
      "--epochs",
      "2",
    );
    expect(f.code, f.stderr).toBe(0);
    const st = (dir: string) => fs.readFileSync(path.join(dir, "model.safetensors"));
    const header = (buf: Buffer) => JSON.parse(buf.subarray(8, 8 + Number(buf.readBigUInt64LE(0))).toString());
    const bytesOf = (dir: string, name: string) => {
      const buf = st(dir);
      const h = header(buf);
      const base = 8 + Number(buf.readBigUInt64LE(0));
      const [a, b] = h[name].data_offsets as [number, number];
      return buf.subarray(base + a, base + b);
    };
    expect(bytesOf(tuned, "model.layers.0.mlp.codebook").equals(bytesOf(rq, "model.layers.0.mlp.codebook"))).toBe(true);
    expect(
      bytesOf(tuned, "model.layers.0.mlp.up_proj.lowrank_A").equals(
        bytesOf(rq, "model.layers.0.mlp.up_proj.lowrank_A"),
      ),
    ).toBe(false);
    expect(ev(tuned)).toBeLessThan(pq);
    // end to end: --train lowrank trains A and B of every matrix
    const trained = path.join(root, "reallm-train");
    const t = cli(
      "train",
      "--model",
      rq,
      "--data",
      TEXT,
      "--out",
      trained,
      "--train",
      "lowrank",
      "--seqlen",
      "128",
      "--max-steps",
      "6",
      "--lr",
      "2e-3",
      "--json",
    );
    expect(t.code, t.stderr).toBe(0);
    const tr = JSON.parse(t.stdout);
    expect(tr.losses.at(-1)).toBeLessThan(tr.losses[0]);
    const h = header(st(rq));
    const numel = (name: string) => (h[name].shape as number[]).reduce((x, y) => x * y, 1);
    const lowRankParams = Object.keys(q.modules).reduce(
      (sum, name) => sum + numel(`${name}.lowrank_A`) + numel(`${name}.lowrank_B`),
      0,
    );
    expect(lowRankParams).toBeGreaterThan(0);
    expect(tr.trainableParams).toBe(lowRankParams);
    // flags that do not apply are usage errors
    const bad = (...args: string[]) =>
      cli("compress", "--model", EXAMPLE, "--out", path.join(root, "never-r"), ...args);
    expect(bad("--bits", "3", "--rank", "2").stderr).toMatch(/--rank applies to --method reallm only/);
    expect(bad("--method", "reallm", "--clusters", "8", "--vector-dim", "4").stderr).toMatch(
      /--clusters applies to --method cluscomp only/,
    );
    expect(bad("--method", "reallm", "--bits", "3", "--rank", "64").stderr).toMatch(
      /low-rank parts and channel scales take \d+\.\d+ bits per weight, leaving none of --bits 3 for the codebooks: raise --bits or lower --rank or give --channel-scales off/,
    );
    expect(fs.existsSync(path.join(root, "never-r"))).toBe(false);
  });

  it("--method llm-codebook: Hessian-weighted k-means with salient channels in fp16; inspect reads it, train --train lora finetunes it; bad use is a usage error", () => {
    const lc = path.join(root, "llm-codebook");
    const calib = ["--calib", TEXT, "--calib-samples", "4", "--calib-seqlen", "64"];
    const r = cli(
      "compress",
      "--model",
      EXAMPLE,
      "--out",
      lc,
      "--method",
      "llm-codebook",
      "--bits",
      "3.5",
      "--salient",
      "2",
      "--iters",
      "3",
      ...calib,
      "--json",
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /plan: channel scales \(fp16, one per output row\) take 0\.\d+; 2 salient input channels per matrix \(fp16\) take 0\.\d+ bits per weight/,
    );
    const q = JSON.parse(fs.readFileSync(path.join(lc, "config.json"), "utf8")).quantization_config;
    expect(q.method).toBe("llm-codebook");
    expect(q.weighting).toBe("hessian");
    expect(q.modules["model.layers.2.self_attn.o_proj"].salient).toBe(2);
    expect(cli("inspect", "--model", lc).stdout).toMatch(/llm-codebook, .*2 salient input channels per matrix/);
    const adapter = path.join(root, "llm-codebook-lora");
    const trainArgs = (out: string) => [
      "--model",
      lc,
      "--data",
      TEXT,
      "--out",
      out,
      "--train",
      "lora",
      "--lora-rank",
      "4",
      "--seqlen",
      "128",
      "--max-steps",
      "4",
      "--lr",
      "2e-3",
      "--json",
    ];
    const t = cli("train", ...trainArgs(adapter));
    expect(t.code, t.stderr).toBe(0);
    const tr = JSON.parse(t.stdout);
    expect(tr.losses.at(-1)).toBeLessThan(tr.losses[0]);
    // the same training merged into a dense model keeps the salient channels and channel scales: it scores as the
    // compressed model with the adapter applied
    const merged = path.join(root, "llm-codebook-merged");
    const tm = cli("train", ...trainArgs(merged), "--merge");
    expect(tm.code, tm.stderr).toBe(0);
    const ppl = (...a: string[]) => {
      const e = cli("eval", ...a, "--data", TEXT, "--seqlen", "128", "--max-windows", "2", "--json");
      expect(e.code, e.stderr).toBe(0);
      return JSON.parse(e.stdout).ppl as number;
    };
    expect(ppl("--model", merged)).toBeCloseTo(ppl("--model", lc, "--adapter", adapter), 3);
    const bad = (...args: string[]) =>
      cli("compress", "--model", EXAMPLE, "--out", path.join(root, "never-lc"), ...args);
    expect(bad("--method", "llm-codebook", "--bits", "3", ...calib, "--weighting", "none").stderr).toMatch(
      /llm-codebook is Hessian-weighted k-means/,
    );
    expect(bad("--method", "llm-codebook", "--bits", "3").stderr).toMatch(/--method llm-codebook needs --calib FILE/);
    expect(bad("--bits", "3", "--salient", "2").stderr).toMatch(/--salient applies to --method llm-codebook only/);
    expect(fs.existsSync(path.join(root, "never-lc"))).toBe(false);
  });

  it("--method gptq: GPTQ in RTN's format, read by eval as RTN is; closer to the original than RTN at the same bits; needs --calib", () => {
    const calib = ["--calib", TEXT, "--calib-samples", "8", "--calib-seqlen", "256"];
    const g = path.join(root, "gptq4");
    const rt = path.join(root, "rtn4");
    const r = cli(
      "compress",
      "--model",
      EXAMPLE,
      "--out",
      g,
      "--method",
      "gptq",
      "--bits",
      "3",
      "--group-size",
      "32",
      ...calib,
      "--json",
    );
    expect(r.code, r.stderr).toBe(0);
    const q = JSON.parse(fs.readFileSync(path.join(g, "config.json"), "utf8")).quantization_config;
    expect(q.method).toBe("gptq");
    expect(q.modules["model.layers.0.mlp.up_proj"]).toEqual({ method: "rtn", bits: 3, group_size: 32 });
    expect(
      cli("compress", "--model", EXAMPLE, "--out", rt, "--method", "rtn", "--bits", "3", "--group-size", "32").code,
    ).toBe(0);
    const kl = (dir: string) =>
      JSON.parse(
        cli(
          "eval",
          "--model",
          dir,
          "--reference",
          EXAMPLE,
          "--data",
          TEXT,
          "--seqlen",
          "256",
          "--max-windows",
          "2",
          "--json",
        ).stdout,
      ).kl as number;
    expect(kl(g)).toBeLessThan(kl(rt));
    const bad = (...args: string[]) =>
      cli(
        "compress",
        "--model",
        EXAMPLE,
        "--out",
        path.join(root, "never-g"),
        "--method",
        "gptq",
        "--bits",
        "3",
        ...args,
      );
    expect(bad().stderr).toMatch(/--method gptq needs --calib FILE/);
    expect(bad(...calib, "--weighting", "hessian").stderr).toMatch(
      /--weighting applies to --method cluscomp, reallm or llm-codebook only/,
    );
    expect(fs.existsSync(path.join(root, "never-g"))).toBe(false);
  });

  it("--weighting hessian and --assignment gptq use the input statistics of --calib and are recorded; bad use is a usage error", () => {
    const hq = path.join(root, "hq3");
    const base = ["compress", "--model", EXAMPLE, "--bits", "3", "--vector-dim", "8", "--iters", "3"];
    const calib = ["--calib", TEXT, "--calib-samples", "2", "--calib-seqlen", "64"];
    const r = cli(...base, "--out", hq, "--weighting", "hessian", ...calib);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/input statistics .*10\/10 window passes/);
    const config = JSON.parse(fs.readFileSync(path.join(hq, "config.json"), "utf8"));
    expect(config.quantization_config.weighting).toBe("hessian");
    const record = JSON.parse(fs.readFileSync(path.join(hq, "cluscomp.json"), "utf8"));
    expect(record.options.weighting).toBe("hessian");
    expect(record.options.assignment).toBe("nearest");
    expect(record.options.calibration).toEqual({ calib: TEXT, samples: 2, seqlen: 64, seed: 0 });
    // the weighting changes the codebooks (same seed, same plan)
    const plain = path.join(root, "plain3");
    expect(cli(...base, "--out", plain).code).toBe(0);
    const plainCodes = fs.readFileSync(path.join(plain, "model.safetensors"));
    expect(fs.readFileSync(path.join(hq, "model.safetensors")).equals(plainCodes)).toBe(false);
    const e = cli("eval", "--model", hq, "--data", TEXT, "--seqlen", "512", "--max-windows", "1", "--json");
    expect(e.code, e.stderr).toBe(0);
    // GPTQ-style codes: same codebook as plain k-means, other codes
    const gq = path.join(root, "gq3");
    const g = cli(...base, "--out", gq, "--assignment", "gptq", ...calib);
    expect(g.stderr).toMatch(
      /note: GPTQ's error feedback estimates each linear's input Hessian from 128 calibration tokens/,
    );
    // compare --run takes the same keys
    const cmp = cli(
      "compare",
      "--model",
      EXAMPLE,
      "--data",
      TEXT,
      "--out",
      path.join(root, "cmp-gptq"),
      "--max-windows",
      "1",
      "--seqlen",
      "64",
      "--run",
      `bits=3 vector-dim=8 iters=3 assignment=gptq calib=${TEXT} calib-samples=2 calib-seqlen=64`,
      "--json",
    );
    expect(cmp.code, cmp.stderr).toBe(0);
    expect(g.code, g.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(gq, "config.json"), "utf8")).quantization_config.assignment).toBe(
      "gptq",
    );
    expect(fs.readFileSync(path.join(gq, "model.safetensors")).equals(plainCodes)).toBe(false);
    expect(cli("eval", "--model", gq, "--data", TEXT, "--seqlen", "512", "--max-windows", "1").code).toBe(0);
    for (const [args, message] of [
      [["--weighting", "hessian"], /--weighting hessian needs --calib/],
      [["--weighting", "fisher", "--calib", TEXT], /--weighting must be none or hessian/],
      [["--assignment", "gptq"], /--assignment gptq needs --calib/],
      [
        ["--assignment", "gptq", "--calib", TEXT, "--codebooks", "2"],
        /--assignment gptq needs one codebook per matrix/,
      ],
      [["--calib", TEXT], /--calib is a stage-2 option/],
      [["--weighting", "hessian", "--calib", TEXT, "--calib-holdout", "1"], /--calib-holdout is a stage-2 option/],
      [["--weighting", "hessian", "--calib", TEXT, "--calib-seqlen", "100000"], /longer than the model's context/],
    ] as const) {
      const bad = cli(...base, "--out", path.join(root, "never"), ...args);
      expect(bad.code, bad.stderr).toBe(2);
      expect(bad.stderr).toMatch(message);
    }
    const rtn = cli(
      "compress",
      "--model",
      EXAMPLE,
      "--out",
      path.join(root, "never"),
      "--method",
      "rtn",
      "--bits",
      "3",
      "--weighting",
      "hessian",
      "--calib",
      TEXT,
    );
    expect(rtn.code).toBe(2);
    expect(rtn.stderr).toMatch(/--weighting applies to --method cluscomp, reallm or llm-codebook only/);
    expect(fs.existsSync(path.join(root, "never"))).toBe(false);
  });

  it("refuses a non-empty output directory and an unreachable target, writing nothing", () => {
    const before = listTree(root);
    const r = cli("compress", "--model", EXAMPLE, "--out", out, "--bits", "3", "--vector-dim", "8");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not empty/);
    // 16-bit codes of 4 weights cost 4 bpw alone; packed codes reach 3 bpw at d 4 but not 0.05
    const u16 = ["compress", "--model", EXAMPLE, "--out", path.join(root, "x"), "--vector-dim", "4"];
    const u = cli(...u16, "--bits", "3", "--code-bits", "16");
    expect(u.code).toBe(1);
    expect(u.stderr).toMatch(/unreachable with --vector-dim 4/);
    const up = cli(...u16, "--bits", "0.25");
    expect(up.code).toBe(1);
    expect(up.stderr).toMatch(
      /--bits 0\.25 \(0\.038 for the codebooks after the channel scales\) is unreachable with --vector-dim 4/,
    );
    const none = cli(...u16, "--bits", "0.05");
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/channel scales take 0\.212 bits per weight, leaving none of --bits 0\.05/);
    const k = cli(
      "compress",
      "--model",
      EXAMPLE,
      "--out",
      path.join(root, "y"),
      "--vector-dim",
      "4",
      "--clusters",
      "70000",
    );
    expect(k.code).toBe(1);
    expect(k.stderr).toMatch(/exceeds 65536/);
    expect(listTree(root)).toEqual(before);
  });

  it("--finetune blockwise runs both stages, reports per-block losses and perplexity before/after", () => {
    const tuned = path.join(root, "tuned");
    const args = [
      "compress",
      "--model",
      EXAMPLE,
      "--out",
      tuned,
      "--bits",
      "4.1",
      "--vector-dim",
      "8",
      "--share",
      "block",
      "--iters",
      "2",
      "--finetune",
      "blockwise",
      "--calib",
      TEXT,
      "--calib-samples",
      "2",
      "--calib-seqlen",
      "16",
      "--epochs",
      "1",
      "--eval-data",
      TEXT,
      "--seqlen",
      "64",
      "--max-windows",
      "2",
    ];
    const r = cli(...args, "--json");
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.blocks).toHaveLength(5);
    for (const b of rep.blocks) expect(b.lossAfter).toBeLessThan(b.lossBefore);
    expect(rep.pplBefore).toBeGreaterThan(1);
    expect(rep.pplAfter).toBeGreaterThan(1);
    expect(rep.pplOriginal).toBeGreaterThan(1);
    expect(rep.pplOriginal).toBeLessThan(rep.pplBefore);
    expect(rep.evalSeqlen).toBe(64);
    expect(rep.bpw).toBeCloseTo(4.1, 1);
    expect(rep.bytes).toBeGreaterThan(0);
    expect(fs.existsSync(`${tuned}.work`)).toBe(false);
    // stage 2 brings calibration text, so stage 1's codes are GPTQ-style by default, its held-out windows unread
    const record = JSON.parse(fs.readFileSync(path.join(tuned, "cluscomp.json"), "utf8"));
    expect(record.options.assignment).toBe("gptq");
    expect(record.options.calibration).toEqual({ calib: TEXT, samples: 2, seqlen: 16, seed: 0, holdout: 2 });
    expect(r.stderr).toMatch(/input statistics .*10\/10 window passes/);
    expect(cli("eval", "--model", tuned, "--data", TEXT, "--seqlen", "64", "--max-windows", "2").code).toBe(0);
    // a stage-1 checkpoint shared across blocks cannot be tuned block by block
    const bad = cli(...args.map((x) => (x === tuned ? path.join(root, "bad") : x === "block" ? "model" : x)));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--share none or block/);
    expect(fs.existsSync(path.join(root, "bad.work"))).toBe(false);
  });

  it("a compress --finetune killed (SIGKILL) after a block resumes to the same checkpoint", async () => {
    const args = (out: string) => [
      CLI,
      "compress",
      "--model",
      EXAMPLE,
      "--out",
      out,
      "--bits",
      "4.1",
      "--vector-dim",
      "8",
      "--share",
      "block",
      "--iters",
      "2",
      "--finetune",
      "blockwise",
      "--calib",
      TEXT,
      "--calib-samples",
      "4",
      "--calib-seqlen",
      "64",
      "--epochs",
      "3",
    ];
    const whole = path.join(root, "whole");
    expect(spawnSync(process.execPath, args(whole)).status).toBe(0);

    const killed = path.join(root, "killed");
    const state = path.join(`${killed}.work`, "tune", "state.json");
    const child = spawn(process.execPath, args(killed), { stdio: "ignore" });
    const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
    for (let i = 0; i < 3000; i++) {
      if (fs.existsSync(state) && JSON.parse(fs.readFileSync(state, "utf8")).nextBlock >= 1) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill("SIGKILL");
    await exited;
    expect(fs.existsSync(killed)).toBe(false); // nothing that looks complete
    const nextBlock = JSON.parse(fs.readFileSync(state, "utf8")).nextBlock;
    expect(nextBlock).toBeGreaterThanOrEqual(1);
    expect(nextBlock).toBeLessThan(5);
    const again = spawnSync(process.execPath, args(killed), { encoding: "utf8" });
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/--resume/);
    const resumed = spawnSync(process.execPath, [...args(killed), "--resume"], { encoding: "utf8" });
    expect(resumed.status, resumed.stderr).toBe(0);
    const sha = (d: string) =>
      createHash("sha256")
        .update(fs.readFileSync(path.join(d, "model.safetensors")))
        .digest("hex");
    expect(sha(killed)).toBe(sha(whole));
    expect(fs.existsSync(`${killed}.work`)).toBe(false);
  });

  it("compare writes a table, JSON and an SVG plot", () => {
    const dir = path.join(root, "cmp");
    const r = cli(
      "compare",
      "--model",
      EXAMPLE,
      "--data",
      TEXT,
      "--out",
      dir,
      "--seqlen",
      "512",
      "--max-windows",
      "2",
      "--run",
      "method=rtn bits=4 group-size=64",
      "--run",
      "bits=3 vector-dim=8 share=model iters=2",
    );
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(fs.readFileSync(path.join(dir, "results.json"), "utf8"));
    expect(res.rows.map((x: { label: string }) => x.label)).toEqual([
      "original",
      "method-rtn-bits-4-group-size-64",
      "bits-3-vector-dim-8-share-model-iters-2",
    ]);
    expect(res.rows[1].bpw).toBeCloseTo(4.514, 3);
    expect(fs.readFileSync(path.join(dir, "results.md"), "utf8")).toMatch(/\| rtn g64 \| 4\.514 \|/);
    const svg = fs.readFileSync(path.join(dir, "bpw_vs_ppl.svg"), "utf8");
    expect(svg.startsWith("<svg")).toBe(true);
    expect((svg.match(/<circle cx=/g) ?? []).length).toBe(2 + 2); // two points + two legend marks
  });

  it("compare reuses a variant only when made from the same model with the same settings; stage-2 keys; --json", () => {
    const dir = path.join(root, "cmp2");
    const runs = [
      "--run",
      "bits=3 iters=1",
      "--run",
      "bits=3 iters=1 finetune=blockwise calib-samples=2 calib-seqlen=16 epochs=1 calib-holdout=1",
    ];
    const args = (model: string) => [
      "compare",
      "--model",
      model,
      "--data",
      TEXT,
      "--out",
      dir,
      "--seqlen",
      "128",
      "--max-windows",
      "1",
      "--json",
    ];
    const calibArg = (xs: string[]) => xs.map((x) => (x.includes("finetune=") ? `${x} calib=${TEXT}` : x));
    const first = cli(...args(EXAMPLE), ...calibArg(runs));
    expect(first.code, first.stderr).toBe(0);
    const out = JSON.parse(first.stdout);
    expect(out.rows.map((r: { method: string }) => r.method)).toEqual([
      "none",
      "cluscomp share=block",
      "cluscomp share=block + stage 2",
    ]);
    expect(out.rows[2].command).toMatch(/--finetune blockwise .*--calib /);
    const tuned = JSON.parse(
      fs.readFileSync(path.join(dir, fs.readdirSync(dir).find((f) => f.includes("finetune"))!, "config.json"), "utf8"),
    );
    expect(tuned.quantization_config.finetune).toMatchObject({
      method: "blockwise",
      calib_samples: 2,
      calib_holdout: 1,
    });
    // the same model again: both reused
    const again = cli(...args(EXAMPLE), ...calibArg(runs));
    expect(again.code, again.stderr).toBe(0);
    expect((again.stderr.match(/^reusing /gm) ?? []).length).toBe(2);
    expect(JSON.parse(again.stdout).rows[1].ppl).toBe(out.rows[1].ppl);
    // another model under the same output: nothing reused
    const other = path.join(root, "other-model");
    fs.cpSync(EXAMPLE, other, { recursive: true });
    const c = JSON.parse(fs.readFileSync(path.join(other, "config.json"), "utf8"));
    c.rms_norm_eps = 1e-6;
    fs.writeFileSync(path.join(other, "config.json"), JSON.stringify(c));
    const third = cli(...args(other), ...calibArg(runs.slice(0, 2)));
    expect(third.code, third.stderr).toBe(0);
    expect(third.stderr).not.toMatch(/^reusing /m);
    expect(third.stderr).toMatch(/not reusing .*: it was made from another model/);
  });
});

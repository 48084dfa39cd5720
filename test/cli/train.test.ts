// cluscomp train from the command line: a run killed (SIGKILL) after a checkpoint and resumed ends with the bytes of
// an uninterrupted run; the adapter it writes works with eval/generate --adapter; flags that do not apply are
// usage errors.

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { CLI, cli, EXAMPLE, TEXT } from "../helpers/cli.js";
import { tmpDir } from "../helpers/tmp.js";

const root = tmpDir();
const q3 = path.join(root, "q3");
const data = path.join(root, "train.txt");
fs.writeFileSync(data, fs.readFileSync(TEXT, "utf8").slice(100_000, 130_000));

describe("cli train", () => {
  it("a run killed after a checkpoint resumes to the uninterrupted run's bytes", async () => {
    expect(cli("compress", "--model", EXAMPLE, "--out", q3, "--bits", "3", "--iters", "2").code).toBe(0);
    const args = (out: string) => [
      "train",
      "--model",
      q3,
      "--data",
      data,
      "--out",
      out,
      "--train",
      "codebooks,norms",
      "--loss",
      "kd",
      "--teacher",
      EXAMPLE,
      "--seqlen",
      "128",
      "--max-steps",
      "14",
      "--lr",
      "2e-3",
      "--checkpoint-every",
      "3",
      "--backend",
      "reference",
      "--json",
    ];
    const ref = path.join(root, "ref");
    const r = cli(...args(ref));
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.losses).toHaveLength(14);
    expect(rep.losses.at(-1)).toBeLessThan(rep.losses[0]);
    const killed = path.join(root, "killed");
    const child = spawn(process.execPath, [CLI, ...args(killed)], { stdio: "ignore" });
    const state = path.join(`${killed}.work`, "state.json");
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        if (fs.existsSync(state) && JSON.parse(fs.readFileSync(state, "utf8")).step >= 6) {
          clearInterval(t);
          child.kill("SIGKILL");
          resolve();
        }
      }, 20);
      child.on("exit", () => {
        clearInterval(t);
        reject(new Error("the run finished before it could be killed"));
      });
    });
    await new Promise((res) => child.on("exit", res));
    expect(fs.existsSync(killed)).toBe(false);
    const again = cli(...args(killed));
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--resume/);
    const resumed = cli(...args(killed), "--resume");
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout).resumedFrom).toBeGreaterThanOrEqual(6);
    for (const f of ["model.safetensors", "config.json"]) {
      expect(fs.readFileSync(path.join(killed, f)).equals(fs.readFileSync(path.join(ref, f))), f).toBe(true);
    }
    expect(fs.existsSync(`${killed}.work`)).toBe(false);
  });

  it("an adapter from train works with eval and generate --adapter", () => {
    const out = path.join(root, "lora");
    const r = cli(
      "train",
      "--model",
      EXAMPLE,
      "--data",
      data,
      "--out",
      out,
      "--train",
      "lora",
      "--lora-rank",
      "4",
      "--lora-targets",
      "q,v",
      "--seqlen",
      "64",
      "--max-steps",
      "4",
      "--lr",
      "1e-2",
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/trained lora \(\d[\d,]* parameters\) for 4 steps/);
    const e = cli(
      "eval",
      "--model",
      EXAMPLE,
      "--adapter",
      out,
      "--data",
      TEXT,
      "--seqlen",
      "64",
      "--max-windows",
      "2",
      "--json",
    );
    const b = cli("eval", "--model", EXAMPLE, "--data", TEXT, "--seqlen", "64", "--max-windows", "2", "--json");
    expect(e.code, e.stderr).toBe(0);
    expect(JSON.parse(e.stdout).ppl).not.toBe(JSON.parse(b.stdout).ppl);
    const g = cli("generate", "--model", EXAMPLE, "--adapter", out, "--prompt", "Once", "--max-new-tokens", "5");
    expect(g.code, g.stderr).toBe(0);
  });

  it("a prompt/completion task: train learns it and eval --task scores it by exact match", () => {
    const item = { prompt: "Q: What is 2 plus 2?\nA:", completion: " 4" };
    const task = path.join(root, "task.jsonl");
    fs.writeFileSync(task, `${JSON.stringify(item)}\n`.repeat(8));
    const score = (model: string) => {
      const r = cli("eval", "--model", model, "--task", task, "--max-examples", "1", "--json");
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { accuracy: number; correct: number; total: number };
    };
    expect(score(EXAMPLE)).toMatchObject({ accuracy: 0, total: 1 });
    const out = path.join(root, "task-model");
    const t = cli(
      "train",
      "--model",
      EXAMPLE,
      "--data",
      task,
      "--out",
      out,
      "--train",
      "all",
      "--lr",
      "1e-2",
      "--epochs",
      "3",
    );
    expect(t.code, t.stderr).toBe(0);
    expect(score(out)).toMatchObject({ accuracy: 1, correct: 1, total: 1 });
    const text = cli("eval", "--model", out, "--task", task);
    expect(text.stdout).toMatch(/^accuracy 100\.00 % \(8 of 8 exact matches\)/);
    for (const extra of [
      ["--seqlen", "64"],
      ["--data", TEXT],
      ["--batch-size", "2"],
    ]) {
      const r = cli("eval", "--model", EXAMPLE, "--task", task, ...extra);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`${extra[0]} does not apply with --task`));
    }
    const m = cli("eval", "--model", EXAMPLE, "--data", TEXT, "--max-examples", "3");
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/--max-examples applies only with --task/);
  });

  it("generate-data writes seeded token-id samples that train reads for distillation", () => {
    const f = path.join(root, "gen.jsonl");
    const r = cli(
      "generate-data",
      "--model",
      EXAMPLE,
      "--out",
      f,
      "--samples",
      "3",
      "--seqlen",
      "40",
      "--seed",
      "4",
      "--json",
    );
    expect(r.code, r.stderr).toBe(0);
    const lines = fs
      .readFileSync(f, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).ids as number[]);
    expect(lines).toHaveLength(3);
    for (const ids of lines) {
      expect(ids.length).toBeGreaterThan(5);
      expect(ids.length).toBeLessThanOrEqual(40);
      expect(ids.slice(0, -1)).not.toContain(2); // an end-of-sequence token only ends a sample
    }
    const f2 = path.join(root, "gen2.jsonl");
    expect(
      cli("generate-data", "--model", EXAMPLE, "--out", f2, "--samples", "3", "--seqlen", "40", "--seed", "4").code,
    ).toBe(0);
    expect(fs.readFileSync(f2, "utf8")).toBe(fs.readFileSync(f, "utf8"));
    expect(cli("generate-data", "--model", EXAMPLE, "--out", f2, "--samples", "3").code).toBe(2); // exists
    const t = cli(
      "train",
      "--model",
      q3,
      "--data",
      f,
      "--out",
      path.join(root, "kd"),
      "--train",
      "codebooks",
      "--loss",
      "kd",
      "--teacher",
      EXAMPLE,
      "--seqlen",
      "40",
      "--epochs",
      "2",
      "--lr",
      "1e-3",
    );
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/trained codebooks .* for 6 steps on 3 ids examples/);
  });

  it("flags that do not apply are usage errors (exit 2), before any work", () => {
    const base = ["train", "--model", EXAMPLE, "--data", data, "--out", path.join(root, "never")];
    const cases: [string[], RegExp][] = [
      [["--train", "all", "--lora-rank", "4"], /--lora-rank needs --train lora/],
      [["--train", "all", "--temperature", "2"], /--temperature needs --loss kd or kd\+ce/],
      [["--train", "weights"], /--train must list codebooks, norms, lowrank, lora, all/],
      [["--train", "all", "--loss", "mse"], /--loss must be ce, kd, kd\+ce/],
      [["--train", "all", "--epochs", "2", "--max-steps", "3"], /--epochs or --max-steps, not both/],
      [["--train", "all", "--eval-every", "2"], /--eval-every needs --eval-data/],
    ];
    for (const [args, message] of cases) {
      const r = cli(...base, ...args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect(fs.existsSync(path.join(root, "never"))).toBe(false);
  });
});

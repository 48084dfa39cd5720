// Tasks with an accuracy: {"prompt", "completion"} training data (loss on the completion and EOS), the seeded
// arithmetic task of the finetuning study (held-out items share no operand pair with training), and exact-match
// evaluation by greedy decoding.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  CpuBackend,
  DataError,
  exactMatch,
  generate,
  loadModel,
  loadTokenizer,
  readDataset,
  readTaskFile,
} from "../../src/index.js";
import { arithmeticTask } from "../../src/train/arithmetic.js";
import { EXAMPLE } from "../helpers/cli.js";
import { tmpDir } from "../helpers/tmp.js";

const root = tmpDir();
const tok = loadTokenizer(EXAMPLE);

function jsonl(name: string, lines: string[]): string {
  const f = path.join(root, name);
  fs.writeFileSync(f, `${lines.join("\n")}\n`);
  return f;
}

describe("prompt/completion data", () => {
  it("the prompt carries no loss; the completion and EOS do", () => {
    const f = jsonl("pc.jsonl", [JSON.stringify({ prompt: "Q: What is 4 plus 5?\nA:", completion: " 9" })]);
    const d = readDataset(f, tok, 64);
    expect(d.format).toBe("completion");
    const [e] = d.examples;
    const p = tok.encode("Q: What is 4 plus 5?\nA:");
    const masked = Array.from(e.labels).filter((x) => x === -100).length;
    // the prompt's tokens, except any the completion merged with across the boundary
    expect(masked).toBeGreaterThan(0);
    expect(masked).toBeLessThanOrEqual(p.length);
    expect(Array.from(e.labels.subarray(masked))).toEqual(Array.from(e.ids.subarray(masked)));
    expect(e.ids.at(-1)).toBe(tok.eosTokenIds[0]);
    expect(tok.decode(Array.from(e.ids.subarray(masked, -1))).trim()).toBe("9");
    expect(d.tokens).toBe(e.ids.length - masked);
  });

  it("task files: bad records are typed errors naming the line", () => {
    expect(() => readTaskFile(jsonl("t1.jsonl", ['{"prompt":"a","completion":"b"}', '{"prompt":"a"}']))).toThrow(
      /t1\.jsonl:2: "completion" must be a string/,
    );
    expect(() => readTaskFile(jsonl("t2.jsonl", ['{"prompt":"a","completion":"  "}']))).toThrow(/is empty/);
    expect(() => readTaskFile(jsonl("t3.jsonl", ["not json"]))).toThrow(DataError);
    expect(() => readTaskFile(path.join(root, "t.txt"))).toThrow(/expected a \.jsonl file/);
    expect(() => readTaskFile(jsonl("t4.jsonl", [""]))).toThrow(/no records/);
  });
});

describe("the arithmetic task", () => {
  const t = arithmeticTask({ train: 4000, test: 500, seed: 0 });

  it("has the asked sizes, correct answers, and is the same for the same seed", () => {
    expect(t.train).toHaveLength(4000);
    expect(t.test).toHaveLength(500);
    for (const x of [...t.train, ...t.test]) {
      const m = /^Q: What is (\d+) (plus|minus) (\d+)\?\nA:$/.exec(x.prompt);
      expect(m).not.toBeNull();
      const [a, b] = [Number(m![1]), Number(m![3])];
      expect(a).toBeLessThan(100);
      expect(b).toBeLessThan(100);
      expect(x.completion).toBe(` ${m![2] === "plus" ? a + b : a - b}`);
    }
    expect(arithmeticTask({ train: 4000, test: 500, seed: 0 })).toEqual(t);
    expect(arithmeticTask({ train: 4000, test: 500, seed: 1 }).test).not.toEqual(t.test);
    const ops = new Set(t.train.map((x) => x.prompt.includes("plus")));
    expect(ops.size).toBe(2);
  });

  it("no held-out item shares its operand pair (in either order) with a training item", () => {
    const key = (p: string) => {
      const [a, b] = (p.match(/\d+/g) ?? []).map(Number);
      return `${Math.min(a, b)},${Math.max(a, b)}`;
    };
    const train = new Set(t.train.map((x) => key(x.prompt)));
    expect(train.size).toBe(4000);
    expect(t.test.filter((x) => train.has(key(x.prompt)))).toEqual([]);
    expect(() => arithmeticTask({ train: 5000, test: 500, seed: 0 })).toThrow(/at most 5050/);
  });
});

describe("exact-match evaluation", () => {
  const be = new CpuBackend({ tier: "reference" });
  const { model } = loadModel(EXAMPLE, be);

  it("scores the model's own greedy continuation as correct and anything else as wrong", async () => {
    const prompts = ["Once upon a time", "The cat sat"];
    const own = [];
    for (const prompt of prompts) {
      const r = await generate(model, tok, prompt, { maxNewTokens: 3, temperature: 0, stop: ["\n"] });
      own.push({ prompt, completion: r.text.slice(tok.decode(tok.encode(prompt)).length) });
    }
    expect(own.every((x) => x.completion.trim().length > 0)).toBe(true);
    const right = await exactMatch(model, tok, own, { maxNewTokens: 3 });
    expect(right).toMatchObject({ accuracy: 1, correct: 2, total: 2, mistakes: [] });
    const wrong = await exactMatch(
      model,
      tok,
      [own[0], { prompt: own[1].prompt, completion: `${own[1].completion}x` }],
      {
        maxNewTokens: 3,
      },
    );
    expect(wrong.correct).toBe(1);
    expect(wrong.accuracy).toBe(0.5);
    expect(wrong.mistakes).toEqual([
      { prompt: own[1].prompt, expected: `${own[1].completion}x`.trim(), got: own[1].completion.trim() },
    ]);
    // one token fewer than the answer needs is wrong, not a prefix match
    const short = await exactMatch(model, tok, [own[0]], { maxNewTokens: 1 });
    expect(short.accuracy).toBe(tok.encode(own[0].completion, { addSpecialTokens: false }).length <= 1 ? 1 : 0);
  });
});

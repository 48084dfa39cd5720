// End-to-end training: each trainable set drives the loss on one window towards zero (overfit checks), the data
// formats put the loss where it belongs (Alpaca responses, assistant turns), a PEFT adapter written by training
// loads back to the same logits, and bad input is a typed error that writes nothing.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  attachLora,
  CpuBackend,
  compressModel,
  loadAdapter,
  loadModel,
  loadTokenizer,
  loraLinears,
  Rng,
  readDataset,
  saveAdapter,
  type TrainOptions,
  trainModel,
} from "../../src/index.js";
import { EXAMPLE } from "../helpers/cli.js";
import { writeSyntheticModel } from "../helpers/synthetic.js";
import { listTree, tmpDir } from "../helpers/tmp.js";

const be = new CpuBackend({ tier: "reference" });
const root = tmpDir();

function jsonl(name: string, records: unknown[]): string {
  const f = path.join(root, name);
  fs.writeFileSync(f, `${records.map((r) => JSON.stringify(r)).join("\n")}\n`);
  return f;
}

const BASE: Omit<TrainOptions, "data" | "sets"> = {
  loss: { kind: "ce" },
  lr: 1e-2,
  schedule: "constant",
  warmup: 0,
  epochs: 1,
  batchSize: 1,
  gradAccum: 1,
  clip: 0,
  weightDecay: 0,
  seed: 0,
  checkpointEvery: 0,
};

describe("overfitting one window, per trainable set", () => {
  // a tiny Llama: every set can fit 16 tokens
  const m = writeSyntheticModel(path.join(root, "tiny"), {
    vocab: 24,
    hidden: 16,
    heads: 2,
    kvHeads: 1,
    intermediate: 24,
    layers: 2,
    seed: 3,
  });
  fs.copyFileSync(path.join(EXAMPLE, "tokenizer.json"), path.join(m.dir, "tokenizer.json"));
  const data = jsonl("one.jsonl", [{ ids: [1, 5, 9, 3, 17, 4, 4, 22, 8, 13, 2, 7, 19, 11, 6, 10] }]);
  const cases: [string, TrainOptions["sets"], Partial<TrainOptions>, string, number][] = [
    ["all", ["all"], { lr: 1e-2 }, m.dir, 0.05],
    // LoRA alone cannot reach zero here: the frozen head and norms bound the logits (it plateaus at 11 %)
    [
      "lora (r 8, every linear)",
      ["lora"],
      { lr: 2e-2, lora: { rank: 8, alpha: 16, targets: ["q", "k", "v", "o", "gate", "up", "down"] } },
      m.dir,
      0.15,
    ],
    [
      "lora + norms",
      ["lora", "norms"],
      { lr: 2e-2, lora: { rank: 8, alpha: 16, targets: ["q", "k", "v", "o", "gate", "up", "down"] } },
      m.dir,
      0.02,
    ],
    ["norms", ["norms"], { lr: 5e-2 }, m.dir, 0.6],
  ];
  for (const [name, sets, extra, dir, ratio] of cases) {
    it(`${name}: the loss falls to ${ratio * 100} % of where it started`, async () => {
      const r = await trainModel(be, dir, path.join(root, `fit-${name.replace(/\W+/g, "-")}`), {
        ...BASE,
        data,
        sets,
        maxSteps: 200,
        ...extra,
      });
      expect(r.losses.length).toBe(200);
      expect(r.losses.at(-1)!).toBeLessThan(ratio * r.losses[0]);
    });
  }

  it("codebooks of a ClusComp model (K = 16, d = 2)", async () => {
    const cdir = path.join(root, "tiny-cb");
    await compressModel(be, m.dir, cdir, { method: "cluscomp", vectorDim: 2, clusters: 16, share: "block", iters: 5 });
    const r = await trainModel(be, cdir, path.join(root, "fit-codebooks"), {
      ...BASE,
      data,
      sets: ["codebooks"],
      maxSteps: 150,
      lr: 2e-2,
    });
    expect(r.losses.at(-1)!).toBeLessThan(0.3 * r.losses[0]);
  });
});

describe("data formats", () => {
  const tok = loadTokenizer(EXAMPLE);

  it("instruction records: the Alpaca prompt carries no loss, the response and EOS do", () => {
    const f = jsonl("alpaca.jsonl", [
      { instruction: "Say hi.", output: "Hi there." },
      { instruction: "Add", input: "2 and 3", output: "5" },
    ]);
    const d = readDataset(f, tok, 256);
    expect(d.format).toBe("instruction");
    const [e] = d.examples;
    const prompt = tok.encode(
      "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nSay hi.\n\n### Response:\n",
    );
    expect(Array.from(e.labels.subarray(0, prompt.length)).every((x) => x === -100)).toBe(true);
    expect(Array.from(e.labels.subarray(prompt.length))).toEqual(Array.from(e.ids.subarray(prompt.length)));
    expect(e.ids.at(-1)).toBe(tok.eosTokenIds[0]);
    expect(tok.decode(Array.from(e.ids.subarray(prompt.length)))).toBe("Hi there.");
  });

  it("chat records through the model's chat_template: loss on the assistant turns only", () => {
    const dir = path.join(root, "chat-model");
    fs.cpSync(EXAMPLE, dir, { recursive: true });
    const tc = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
    tc.chat_template =
      "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}";
    fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(tc));
    const ctok = loadTokenizer(dir);
    const f = jsonl("chat.jsonl", [
      {
        messages: [
          { role: "user", content: "Hello" },
          { role: "assistant", content: "Hi Tom" },
          { role: "user", content: "Bye" },
          { role: "assistant", content: "See you" },
        ],
      },
    ]);
    const d = readDataset(f, ctok, 256);
    expect(d.format).toBe("chat");
    const e = d.examples[0];
    const learned = ctok.decode(Array.from(e.ids).filter((_, i) => e.labels[i] >= 0));
    expect(learned).toMatch(/Hi Tom/);
    expect(learned).toMatch(/See you/);
    expect(learned).not.toMatch(/Hello|Bye/);
    // a model without a template refuses chat data
    expect(() => readDataset(f, tok, 256)).toThrow(
      /chat data \(messages\), but the model's tokenizer_config\.json has no chat_template/,
    );
  });
});

describe("adapters", () => {
  it("saved in PEFT's layout and loaded back, an adapter gives the in-memory model's logits exactly", async () => {
    const { model } = loadModel(EXAMPLE, be);
    attachLora(model, { rank: 3, alpha: 5, targets: ["k", "o", "gate"] }, 11);
    const rng = new Rng(12);
    for (const { lin } of loraLinears(model)) {
      const B = lin.lora!.B;
      lin.lora!.B = be.upload(
        Float32Array.from({ length: B.shape[0] * B.shape[1] }, () => 0.1 * rng.normal()),
        B.shape,
      );
    }
    const ids = Int32Array.from([1, 7, 300, 45, 9]);
    const inMemory = await be.read(model.forward(ids, 1, 5).logits);
    const dir = path.join(root, "saved-adapter");
    await saveAdapter(model, { rank: 3, alpha: 5, targets: ["k", "o", "gate"] }, dir, EXAMPLE);
    const { model: fresh } = loadModel(EXAMPLE, be);
    const s = loadAdapter(fresh, dir);
    expect(s).toEqual({ rank: 3, alpha: 5, targets: ["k", "o", "gate"] });
    expect(Array.from(await be.read(fresh.forward(ids, 1, 5).logits))).toEqual(Array.from(inMemory));
  });

  it("a PEFT-layout adapter written by train loads back to the in-memory model's logits", async () => {
    const out = path.join(root, "adapter");
    const text = path.join(root, "text.txt");
    fs.writeFileSync(
      text,
      fs.readFileSync(path.join(EXAMPLE, "..", "data", "tinystories-excerpt.txt"), "utf8").slice(0, 20_000),
    );
    await trainModel(be, EXAMPLE, out, {
      ...BASE,
      data: text,
      sets: ["lora"],
      seqlen: 64,
      maxSteps: 6,
      lr: 1e-2,
      lora: { rank: 4, alpha: 8, targets: ["q", "v", "down"] },
    });
    expect(listTree(out)).toEqual(["adapter_config.json", "adapter_model.safetensors", "train.json"]);
    const cfg = JSON.parse(fs.readFileSync(path.join(out, "adapter_config.json"), "utf8"));
    expect(cfg).toMatchObject({
      peft_type: "LORA",
      r: 4,
      lora_alpha: 8,
      target_modules: ["q_proj", "v_proj", "down_proj"],
    });
    const st = openNames(path.join(out, "adapter_model.safetensors"));
    expect(st).toContain("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
    expect(st).toContain("base_model.model.model.layers.4.mlp.down_proj.lora_B.weight");
    const ids = Int32Array.from([1, 400, 29, 300, 50, 88]);
    const { model: base } = loadModel(EXAMPLE, be);
    const plain = await be.read(base.forward(ids, 1, 6).logits);
    loadAdapter(base, out);
    const adapted = await be.read(base.forward(ids, 1, 6).logits);
    expect(adapted).not.toEqual(plain);
    // the same trained adapter in memory: train again with the same seed and options → same logits
    const again = path.join(root, "adapter2");
    await trainModel(be, EXAMPLE, again, {
      ...BASE,
      data: text,
      sets: ["lora"],
      seqlen: 64,
      maxSteps: 6,
      lr: 1e-2,
      lora: { rank: 4, alpha: 8, targets: ["q", "v", "down"] },
    });
    expect(
      fs
        .readFileSync(path.join(again, "adapter_model.safetensors"))
        .equals(fs.readFileSync(path.join(out, "adapter_model.safetensors"))),
    ).toBe(true);
  });
});

describe("lora with other sets", () => {
  it("writes the trained tensors and the adapter together: neither is lost", async () => {
    const out = path.join(root, "norms-lora");
    const text = path.join(root, "text2.txt");
    fs.writeFileSync(
      text,
      fs.readFileSync(path.join(EXAMPLE, "..", "data", "tinystories-excerpt.txt"), "utf8").slice(0, 20_000),
    );
    const r = await trainModel(be, EXAMPLE, out, {
      ...BASE,
      data: text,
      sets: ["norms", "lora"],
      seqlen: 64,
      maxSteps: 4,
      lr: 1e-2,
      lora: { rank: 2, alpha: 4, targets: ["q", "down"] },
    });
    expect(r.output).toBe("checkpoint+adapter");
    const files = listTree(out);
    for (const f of ["adapter_config.json", "adapter_model.safetensors", "config.json", "model.safetensors"])
      expect(files).toContain(f);
    const ids = Int32Array.from([1, 400, 29, 300, 50, 88]);
    const logits = async (dir: string, adapter?: string) => {
      const { model } = loadModel(dir, be);
      if (adapter) loadAdapter(model, adapter);
      return Array.from(await be.read(model.forward(ids, 1, 6).logits));
    };
    const original = await logits(EXAMPLE);
    const trainedNorms = await logits(out);
    const both = await logits(out, out);
    const adapterOnOriginal = await logits(EXAMPLE, out);
    expect(trainedNorms).not.toEqual(original); // the norms were written
    expect(both).not.toEqual(trainedNorms); // the adapter was written
    expect(both).not.toEqual(adapterOnOriginal);
  });
});

function openNames(file: string): string[] {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  return Object.keys(JSON.parse(buf.subarray(8, 8 + n).toString("utf8"))).filter((k) => k !== "__metadata__");
}

describe("bad input: a typed error, nothing written", () => {
  const text = path.join(root, "t.txt");
  fs.writeFileSync(text, "Once upon a time there was a cat. ".repeat(200));
  const run = (o: Partial<TrainOptions> & { model?: string }, name: string) =>
    trainModel(be, o.model ?? EXAMPLE, path.join(root, `bad-${name}`), {
      ...BASE,
      data: text,
      sets: ["all"],
      seqlen: 64,
      maxSteps: 1,
      ...o,
    });
  const cases: [string, Partial<TrainOptions> & { model?: string }, RegExp][] = [
    ["empty dataset", { data: jsonl("empty.jsonl", []) }, /holds no records|is empty/],
    [
      "records missing their fields",
      { data: jsonl("nofield.jsonl", [{ instruction: "x" }]) },
      /"output" must be a string/,
    ],
    [
      "a sequence longer than --seqlen",
      { data: jsonl("long.jsonl", [{ ids: Array.from({ length: 100 }, (_, i) => i % 50) }]) },
      /has 100 tokens, more than --seqlen 64/,
    ],
    ["--seqlen beyond the context", { seqlen: 4096 }, /--seqlen must be an integer in 2\.\.512/],
    [
      "a LoRA rank beyond the matrices",
      { sets: ["lora"], lora: { rank: 100, alpha: 1, targets: ["k"] } },
      /--lora-rank 100 exceeds/,
    ],
    [
      "a teacher with another vocabulary",
      { loss: { kind: "kd" }, teacher: "llama" },
      /the teacher's vocabulary has 8192 tokens and the model's 512/,
    ],
    ["kd without a teacher", { loss: { kind: "kd" } }, /needs --teacher/],
  ];
  for (const [name, o, message] of cases) {
    it(name, async () => {
      const opts = { ...o };
      if (opts.teacher === "llama") opts.teacher = path.resolve(EXAMPLE, "../../../shared/models/llama-en-26m");
      await expect(run(opts, name.replace(/\W+/g, "-"))).rejects.toThrow(message);
      expect(fs.existsSync(path.join(root, `bad-${name.replace(/\W+/g, "-")}`))).toBe(false);
    });
  }

  it("--train all on a compressed model, and a LoRA target that does not exist", async () => {
    const q = path.join(root, "q");
    await compressModel(be, EXAMPLE, q, { method: "cluscomp", bits: 3, iters: 1 });
    await expect(run({ model: q }, "all-compressed")).rejects.toThrow(
      /--train all trains every weight of a dense model; this model is compressed/,
    );
    const { parseLoraTargets } = await import("../../src/index.js");
    expect(() => parseLoraTargets("q,attn")).toThrow(/"attn" is not a linear of the model/);
  });
});

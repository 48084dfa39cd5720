// The library side of the first-hour features: KL divergence against a reference (checked against a float64
// computation from the full logits), decompress (same tensors as the original model, same logits as the
// compressed one, sharded output), generation's repetition penalty, stop strings and context end, and model
// locations in the Hugging Face cache.

import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  applyRepetitionPenalty,
  ConfigError,
  CpuBackend,
  compressModel,
  decompressModel,
  divergence,
  generate,
  INDEX_FILE,
  inspectModel,
  loadModel,
  loadTokenizer,
  openCheckpoint,
  perplexity,
  readModelConfig,
  resolveHubModel,
  resolveModelPath,
} from "../../src/index.js";
import { EXAMPLE, TEXT } from "../helpers/cli.js";
import { tmpDir } from "../helpers/tmp.js";

const be = new CpuBackend({ tier: "reference" });
const root = tmpDir();
const q3 = path.join(root, "q3");
const text = fs.readFileSync(TEXT, "utf8");

beforeAll(async () => {
  await compressModel(be, EXAMPLE, q3, { method: "cluscomp", bits: 3, iters: 3 });
});

/** KL(P ‖ Q), NLL and top-1 over the scored positions, in float64 from the models' full logits. */
async function oracle(ids: number[], L: number, windows: number) {
  const { model: q } = loadModel(q3, be);
  const { model: p } = loadModel(EXAMPLE, be);
  const V = q.config.vocabSize;
  let kl = 0;
  let agree = 0;
  let nll = 0;
  for (let w = 0; w < windows; w++) {
    const input = Int32Array.from(ids.slice(w * L, (w + 1) * L));
    const zq = await be.read(q.forward(input, 1, L).logits);
    const zp = await be.read(p.forward(input, 1, L).logits);
    for (let t = 0; t < L - 1; t++) {
      const lsm = (z: Float32Array) => {
        const row = Array.from(z.subarray(t * V, (t + 1) * V));
        const m = Math.max(...row);
        const lse = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
        return row.map((x) => x - lse);
      };
      const a = lsm(zp);
      const b = lsm(zq);
      kl += a.reduce((s, lp, v) => s + Math.exp(lp) * (lp - b[v]), 0);
      if (a.indexOf(Math.max(...a)) === b.indexOf(Math.max(...b))) agree++;
      nll -= b[input[t + 1]];
    }
  }
  const n = windows * (L - 1);
  return { kl: kl / n, top1: agree / n, ppl: Math.exp(nll / n) };
}

describe("divergence from a reference model", () => {
  it("equals a float64 computation from the full logits (2 windows of 96, stories260K vs its 3-bit copy)", async () => {
    const ids = loadTokenizer(EXAMPLE).encode(text.slice(0, 4000));
    const { model: q } = loadModel(q3, be);
    const { model: p } = loadModel(EXAMPLE, be);
    const r = await divergence(q, p, ids, { seqlen: 96, maxWindows: 2 });
    const o = await oracle(ids, 96, 2);
    expect(r.scored).toBe(190);
    expect(Math.abs(r.kl - o.kl) / o.kl).toBeLessThan(1e-4);
    expect(r.top1).toBeCloseTo(o.top1, 10);
    expect(Math.abs(r.ppl - o.ppl) / o.ppl).toBeLessThan(1e-5);
    expect(r.kl).toBeGreaterThan(0.05);
    expect(r.klMedian).toBeLessThanOrEqual(r.klP99);
    expect(r.klP99).toBeLessThanOrEqual(r.klMax);
    // the reference's own perplexity is the plain perplexity of the same windows
    const base = await perplexity(p, ids, { seqlen: 96, maxWindows: 2 });
    expect(Math.abs(r.referencePpl - base.ppl) / base.ppl).toBeLessThan(1e-6);
  });

  it("is 0 with full agreement for a model against itself", async () => {
    const ids = loadTokenizer(EXAMPLE).encode(text.slice(0, 3000));
    const { model: p } = loadModel(EXAMPLE, be);
    const r = await divergence(p, p, ids, { seqlen: 64, maxWindows: 2 });
    expect(r.kl).toBeLessThan(1e-12);
    expect(r.top1).toBe(1);
  });
});

describe("decompress", () => {
  it("writes the original model's tensors (names, shapes, dtypes) and computes what the compressed model does", async () => {
    const dense = path.join(root, "dense");
    const r = await decompressModel(q3, dense);
    expect(r.dtype).toBe("F32");
    const a = openCheckpoint(EXAMPLE);
    const b = openCheckpoint(dense);
    expect(b.names().sort()).toEqual(a.names().sort());
    for (const n of a.names()) {
      expect(b.info(n)!.shape, n).toEqual(a.info(n)!.shape);
      expect(b.info(n)!.dtype, n).toBe(a.info(n)!.dtype);
    }
    const cfg = JSON.parse(fs.readFileSync(path.join(dense, "config.json"), "utf8"));
    expect(cfg.quantization_config).toBeUndefined();
    expect(cfg.dtype).toBe("float32");
    expect(fs.existsSync(path.join(dense, "tokenizer.json"))).toBe(true);
    expect(fs.existsSync(path.join(dense, "cluscomp.json"))).toBe(false);
    expect(inspectModel(dense).quantization).toBeUndefined();
    const ids = Int32Array.from(loadTokenizer(EXAMPLE).encode(text.slice(0, 600)).slice(0, 48));
    const zq = await be.read(loadModel(q3, be).model.forward(ids, 1, 48).logits);
    const zd = await be.read(loadModel(dense, be).model.forward(ids, 1, 48).logits);
    let max = 0;
    for (let i = 0; i < zq.length; i++) max = Math.max(max, Math.abs(zq[i] - zd[i]));
    expect(max).toBeLessThan(1e-5);
  });

  it("converts to BF16 and shards past maxShardBytes with an index; refuses a dense model", async () => {
    const dense = path.join(root, "dense-bf16");
    const r = await decompressModel(q3, dense, { dtype: "BF16", maxShardBytes: 200_000 });
    expect(r.shards).toBeGreaterThan(1);
    const index = JSON.parse(fs.readFileSync(path.join(dense, INDEX_FILE), "utf8"));
    expect(Object.keys(index.weight_map).length).toBe(r.tensors);
    const src = openCheckpoint(dense);
    expect(new Set(src.names().map((n) => src.info(n)!.dtype))).toEqual(new Set(["BF16"]));
    expect(readModelConfig(dense).raw.dtype).toBe("bfloat16");
    const ids = loadTokenizer(EXAMPLE).encode(text.slice(0, 8000));
    const pq = (await perplexity(loadModel(q3, be).model, ids, { seqlen: 256, maxWindows: 2 })).ppl;
    const pd = (await perplexity(loadModel(dense, be).model, ids, { seqlen: 256, maxWindows: 2 })).ppl;
    expect(Math.abs(pd - pq) / pq).toBeLessThan(0.05);
    await expect(decompressModel(EXAMPLE, path.join(root, "x"))).rejects.toThrow(/not a cluscomp checkpoint/);
  });
});

describe("generate options", () => {
  const { model } = loadModel(EXAMPLE, be);
  const tok = loadTokenizer(EXAMPLE);

  it("repetition penalty divides positive and multiplies negative logits of seen tokens (transformers' rule)", () => {
    const z = Float32Array.from([2, -2, 1, 0.5]);
    applyRepetitionPenalty(z, [0, 1], 2);
    expect(Array.from(z)).toEqual([1, -4, 1, 0.5]);
  });

  it("a strong repetition penalty changes the greedy text and repeats fewer tokens", async () => {
    const plain = await generate(model, tok, "Once upon a time", { maxNewTokens: 60 });
    const pen = await generate(model, tok, "Once upon a time", { maxNewTokens: 60, repetitionPenalty: 1.5 });
    const distinct = (ids: number[]) => new Set(ids.slice(plain.promptTokens)).size;
    expect(pen.ids).not.toEqual(plain.ids);
    expect(distinct(pen.ids)).toBeGreaterThan(distinct(plain.ids));
  });

  it("stops at a stop string, which is neither returned nor streamed", async () => {
    let streamed = "";
    const r = await generate(model, tok, "Once upon a time", {
      maxNewTokens: 60,
      stop: ["Lily"],
      onText: (t) => (streamed += t),
    });
    expect(r.stoppedBy).toBe("stop");
    expect(r.text).toBe("Once upon a time, there was a little girl named ");
    expect(streamed).toBe(r.text);
  });

  it("says when the model's context ended the text", async () => {
    // seed 3 samples no end-of-sequence token within the 512-token context
    const r = await generate(model, tok, "Once upon a time", { maxNewTokens: 2000, temperature: 1, seed: 3 });
    expect(r.stoppedBy).toBe("context");
    expect(r.contextLength).toBe(512);
    // every position of the context was fed to the model; the last token is predicted from position 511
    expect(r.ids.length).toBe(513);
    const short = await generate(model, tok, "Once upon a time", { maxNewTokens: 5 });
    expect(short.stoppedBy).toBe("length");
  });
});

describe("model locations", () => {
  it("resolves a hub id in the Hugging Face cache layout (refs/main → snapshot of symlinks to blobs)", async () => {
    const cache = path.join(root, "hub");
    const repo = path.join(cache, "models--tiny--stories");
    const rev = "0123456789abcdef0123456789abcdef01234567";
    fs.mkdirSync(path.join(repo, "refs"), { recursive: true });
    fs.mkdirSync(path.join(repo, "blobs"));
    fs.mkdirSync(path.join(repo, "snapshots", rev), { recursive: true });
    fs.writeFileSync(path.join(repo, "refs", "main"), rev);
    for (const f of fs.readdirSync(EXAMPLE)) {
      fs.copyFileSync(path.join(EXAMPLE, f), path.join(repo, "blobs", `blob-${f}`));
      fs.symlinkSync(`../../blobs/blob-${f}`, path.join(repo, "snapshots", rev, f));
    }
    const dir = resolveHubModel("tiny/stories", cache);
    expect(dir).toBe(path.join(repo, "snapshots", rev));
    expect(resolveHubModel(`tiny/stories@${rev}`, cache)).toBe(dir);
    const { model } = loadModel(dir, be);
    expect(model.config.hiddenSize).toBe(64);
    expect(() => resolveHubModel("tiny/absent", cache)).toThrow(/hf download tiny\/absent/);
    expect(() => resolveHubModel("tiny/stories@v9", cache)).toThrow(/revision v9 is not in the Hugging Face cache/);
  });

  it("a path is used as it is; a file is refused", () => {
    expect(resolveModelPath(EXAMPLE)).toBe(EXAMPLE);
    expect(() => resolveModelPath(path.join(EXAMPLE, "config.json"))).toThrow(ConfigError);
  });
});

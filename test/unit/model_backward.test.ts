// Model-level gradients against float64 central differences of an independent float64 model
// (test/helpers/naive_llama.ts) on tiny random models — Llama with GQA (untied), Qwen2 with q/k/v biases, a tied
// Llama: cross-entropy with ignored labels, distillation (τ = 2) mixed with cross-entropy, LoRA A and B over dense,
// ClusComp-codebook and RTN bases, codebook gradients through the whole model, and a tied embedding receiving both
// its input and its head gradient.

import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  CpuBackend,
  compressModel,
  decodeWeight,
  LAYER_LINEARS,
  type LlamaModel,
  linearWeight,
  loadModel,
  Rng,
  vectorLayout,
} from "../../src/index.js";
import { batchGradients } from "../../src/train/gradients.js";
import { attachLora } from "../../src/train/lora.js";
import type { LossSpec } from "../../src/train/losses.js";
import { GradAccumulator, modelTrainableParams, paramSet, type TrainSet } from "../../src/train/trainable.js";
import { type NaiveConfig, type NaiveTensors, naiveForward } from "../helpers/naive_llama.js";
import { type SyntheticSpec, writeSyntheticModel } from "../helpers/synthetic.js";
import { tmpDir } from "../helpers/tmp.js";

const be = new CpuBackend({ tier: "reference" });
const B = 2;
const T = 5;

function naiveConfig(cfg: Record<string, unknown>): NaiveConfig {
  const n = (k: string) => cfg[k] as number;
  return {
    hidden: n("hidden_size"),
    layers: n("num_hidden_layers"),
    heads: n("num_attention_heads"),
    kvHeads: n("num_key_value_heads"),
    headDim: n("head_dim"),
    vocab: n("vocab_size"),
    eps: n("rms_norm_eps"),
    theta: n("rope_theta"),
    tied: cfg.tie_word_embeddings === true,
    slidingWindow: null,
  };
}

function lsm(row: number[], tau: number): number[] {
  const z = row.map((v) => v / tau);
  const m = Math.max(...z);
  const l = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
  return z.map((v) => v - l);
}

/** The loss in float64, as train/losses.ts defines it. */
function naiveLoss(
  t: NaiveTensors,
  c: NaiveConfig,
  ids: Int32Array,
  labels: Int32Array,
  spec: LossSpec,
  teacher?: number[][][],
): number {
  const tau = spec.temperature ?? 1;
  let nll = 0;
  let count = 0;
  let kd = 0;
  for (let b = 0; b < B; b++) {
    const logits = naiveForward(t, c, Array.from(ids.subarray(b * T, (b + 1) * T)));
    for (let i = 0; i + 1 < T; i++) {
      const target = labels[b * T + i + 1];
      if (target < 0) continue;
      const lq = lsm(logits[i], 1);
      nll -= lq[target];
      count++;
      if (teacher) {
        const a = lsm(teacher[b][i], tau);
        const q = lsm(logits[i], tau);
        kd += a.reduce((s, lp, v) => s + Math.exp(lp) * (lp - q[v]), 0);
      }
    }
  }
  const ceWeight = spec.kind === "ce" ? 1 : spec.kind === "kd+ce" ? (spec.ceWeight ?? 1) : 0;
  return (ceWeight * nll) / count + (spec.kind === "ce" ? 0 : (tau * tau * kd) / B);
}

/** The model's weights as the naive model reads them: dense (decoded for compressed linears, LoRA folded in). */
async function naiveTensors(model: LlamaModel): Promise<NaiveTensors> {
  const t: NaiveTensors = new Map();
  const w = model.weights;
  const put = async (name: string, x: { shape: readonly number[] }, data?: Float32Array) =>
    t.set(name, { shape: [...x.shape], data: Float64Array.from(data ?? (await be.read(x as never))) });
  await put("model.embed_tokens.weight", w.embedTokens);
  await put("model.norm.weight", w.norm);
  if (w.lmHead) await put("lm_head.weight", linearWeight(be, w.lmHead));
  for (let l = 0; l < w.layers.length; l++) {
    const layer = w.layers[l];
    const p = `model.layers.${l}`;
    await put(`${p}.input_layernorm.weight`, layer.inputLayernorm);
    await put(`${p}.post_attention_layernorm.weight`, layer.postAttentionLayernorm);
    for (const [module, key] of LAYER_LINEARS) {
      const lin = layer[key];
      // channel scales applied in float64 (the differences below would otherwise see float32 rounding)
      const wt =
        lin.kind === "codebook" && lin.channelScale
          ? be.codebook_decode(lin.codes, lin.codebooks, lin.layout)
          : linearWeight(be, lin);
      const dense = Float64Array.from(await be.read(wt));
      if (lin.kind === "codebook" && lin.channelScale) {
        const sc = await be.read(lin.channelScale);
        for (let o = 0; o < lin.outFeatures; o++)
          for (let i = 0; i < lin.inFeatures; i++) dense[o * lin.inFeatures + i] *= sc[o];
      }
      if (lin.lora) {
        const A = await be.read(lin.lora.A);
        const Bm = await be.read(lin.lora.B);
        const r = lin.lora.A.shape[0];
        for (let o = 0; o < lin.outFeatures; o++)
          for (let i = 0; i < lin.inFeatures; i++) {
            let s = 0;
            for (let k = 0; k < r; k++) s += Bm[o * r + k] * A[k * lin.inFeatures + i];
            dense[o * lin.inFeatures + i] += lin.lora.scale * s;
          }
      }
      t.set(`${p}.${module}.weight`, { shape: [lin.outFeatures, lin.inFeatures], data: dense });
      if (lin.bias) await put(`${p}.${module}.bias`, lin.bias);
    }
  }
  return t;
}

/**
 * Central differences of the float64 loss w.r.t. `count` entries of the tensor `param` (a model tensor whose host
 * array is mutated in place, then the naive weights rebuilt): [index, derivative] pairs.
 */
async function finiteDifferences(
  model: LlamaModel,
  param: { shape: readonly number[] },
  loss: (t: NaiveTensors) => number,
  count: number,
  seed: number,
  h = 1e-4,
): Promise<[number, number][]> {
  const data = (param as unknown as { data: Float32Array }).data;
  const rng = new Rng(seed);
  const idx = Array.from({ length: Math.min(count, data.length) }, () => rng.int(data.length));
  const out: [number, number][] = [];
  for (const i of idx) {
    const keep = data[i];
    data[i] = keep + h;
    const plus = loss(await naiveTensors(model));
    data[i] = keep - h;
    const minus = loss(await naiveTensors(model));
    data[i] = keep;
    out.push([i, (plus - minus) / (2 * h)]);
  }
  return out;
}

const SPECS: [string, SyntheticSpec][] = [
  [
    "llama GQA 4/2, untied",
    { vocab: 13, hidden: 8, heads: 4, kvHeads: 2, headDim: 2, intermediate: 10, layers: 2, seed: 21 },
  ],
  [
    "qwen2 q/k/v biases",
    {
      architecture: "Qwen2ForCausalLM",
      vocab: 11,
      hidden: 8,
      heads: 2,
      kvHeads: 1,
      headDim: 4,
      intermediate: 9,
      layers: 2,
      seed: 22,
    },
  ],
  [
    "llama tied embeddings",
    { vocab: 12, hidden: 8, heads: 2, kvHeads: 2, headDim: 4, intermediate: 10, layers: 2, tied: true, seed: 23 },
  ],
];

function batch(vocab: number, seed: number) {
  const rng = new Rng(seed);
  const ids = Int32Array.from({ length: B * T }, () => rng.int(vocab));
  const labels = Int32Array.from(ids);
  labels[2] = -100; // an ignored target in each row
  labels[T + 4] = -100;
  return { ids, labels };
}

/** Our gradients of every trainable tensor, and the comparison with differences on sampled entries. */
async function check(
  model: LlamaModel,
  sets: TrainSet[],
  spec: LossSpec,
  c: NaiveConfig,
  teacher?: { model: LlamaModel; logits: number[][][] },
  seed = 1,
) {
  const { ids, labels } = batch(c.vocab, seed);
  const params = modelTrainableParams(model, sets);
  const acc = new GradAccumulator(be);
  const r = await batchGradients(model, { ids, labels, B, T }, spec, paramSet(params), acc, {
    teacher: teacher?.model,
    chunk: 2,
  });
  const lossFn = (t: NaiveTensors) => naiveLoss(t, c, ids, labels, spec, teacher?.logits);
  expect(Math.abs(r.loss - lossFn(await naiveTensors(model)))).toBeLessThan(1e-5 * (1 + Math.abs(r.loss)));
  let compared = 0;
  let magnitude = 0;
  for (const [k, p] of params.entries()) {
    const g = await be.read(acc.get(p.tensor)!);
    const fd = await finiteDifferences(model, p.tensor, lossFn, 6, seed * 100 + k);
    let scale = 0;
    for (const v of g) scale = Math.max(scale, Math.abs(v));
    for (const [i, d] of fd) {
      expect(Math.abs(g[i] - d), `${p.name}[${i}]: ours ${g[i]}, differences ${d}`).toBeLessThan(2e-4 * scale + 2e-6);
      magnitude += Math.abs(d);
      compared++;
    }
  }
  acc.dispose();
  // the differences really moved the loss (a perturbation that never reached the naive model would give zeros)
  expect(magnitude / compared).toBeGreaterThan(1e-3);
  return compared;
}

async function teacherOf(dir: string, c: NaiveConfig, seed: number) {
  const teacher = loadModel(dir, be).model;
  const t = await naiveTensors(teacher);
  const { ids } = batch(c.vocab, seed);
  const logits = Array.from({ length: B }, (_, b) => naiveForward(t, c, Array.from(ids.subarray(b * T, (b + 1) * T))));
  return { model: teacher, logits };
}

describe.each(SPECS)("model gradients vs float64 finite differences: %s", (_name, spec) => {
  const root = tmpDir();
  const m = writeSyntheticModel(path.join(root, "model"), spec);
  const t = writeSyntheticModel(path.join(root, "teacher"), { ...spec, seed: (spec.seed ?? 1) + 50 });
  const c = naiveConfig(m.config);

  it("every parameter, cross-entropy with ignored labels", async () => {
    const { model } = loadModel(m.dir, be);
    expect(await check(model, ["all"], { kind: "ce" }, c)).toBeGreaterThan(40);
  });

  it("every parameter, distillation at τ = 2 mixed with cross-entropy (weight 0.5)", async () => {
    const { model } = loadModel(m.dir, be);
    const teacher = await teacherOf(t.dir, c, 1);
    expect(await check(model, ["all"], { kind: "kd+ce", temperature: 2, ceWeight: 0.5 }, c, teacher)).toBeGreaterThan(
      40,
    );
  });

  it("LoRA A and B over a dense base (B random, not PEFT's zero, so A's gradient is not zero), with norms", async () => {
    const { model } = loadModel(m.dir, be);
    attachLora(model, { rank: 2, alpha: 3, targets: ["q", "v", "down"] }, 5);
    const rng = new Rng(9);
    for (const layer of model.weights.layers)
      for (const [, key] of LAYER_LINEARS) {
        const lora = layer[key].lora;
        if (lora)
          lora.B = be.upload(
            Float32Array.from({ length: lora.B.shape[0] * lora.B.shape[1] }, () => 0.3 * rng.normal()),
            lora.B.shape,
          );
      }
    expect(await check(model, ["lora", "norms"], { kind: "ce" }, c)).toBeGreaterThan(20);
  });
});

describe("through compressed bases", () => {
  const root = tmpDir();
  const spec = SPECS[0][1];
  const m = writeSyntheticModel(path.join(root, "model"), spec);
  const c = naiveConfig(m.config);

  it("codebook gradients through the whole model (block-shared codebooks), and LoRA over them", async () => {
    const dir = path.join(root, "cb");
    await compressModel(be, m.dir, dir, { method: "cluscomp", vectorDim: 2, clusters: 5, share: "block", iters: 3 });
    const { model } = loadModel(dir, be);
    // the naive model sees decode(codes, codebook): check that decoding on the host agrees with the model's
    const lin = model.weights.layers[0].qProj;
    if (lin.kind !== "codebook") throw new Error("expected a codebook linear");
    const codes = await be.readInt(lin.codes);
    const decoded = decodeWeight(
      codes,
      await be.read(lin.codebooks),
      vectorLayout(lin.outFeatures, lin.inFeatures, 2),
      5,
    );
    // with the channel scales (compress's default) row o is scaled by s[o]
    expect(lin.channelScale).toBeDefined();
    const s = await be.read(lin.channelScale!);
    const scaled = decoded.map((v, i) => Math.fround(v * s[Math.floor(i / lin.inFeatures)]));
    expect(Array.from(await be.read(linearWeight(be, lin)))).toEqual(Array.from(scaled));
    expect(await check(model, ["codebooks"], { kind: "ce" }, c)).toBeGreaterThan(10);
    attachLora(model, { rank: 2, alpha: 2, targets: ["k", "up"] }, 3);
    for (const layer of model.weights.layers)
      for (const [, key] of LAYER_LINEARS) {
        const lora = layer[key].lora;
        if (lora)
          lora.B = be.upload(
            Float32Array.from({ length: lora.B.shape[0] * lora.B.shape[1] }, (_, i) => 0.1 * Math.sin(i + 1)),
            lora.B.shape,
          );
      }
    expect(await check(model, ["codebooks", "lora"], { kind: "ce" }, c, undefined, 2)).toBeGreaterThan(20);
  });

  it("LoRA A and B over an RTN base (the QLoRA-style baseline)", async () => {
    const dir = path.join(root, "rtn");
    await compressModel(be, m.dir, dir, { method: "rtn", bits: 4, groupSize: 4 });
    const { model } = loadModel(dir, be);
    attachLora(model, { rank: 2, alpha: 4, targets: ["q", "k", "v", "o", "gate", "up", "down"] }, 4);
    for (const layer of model.weights.layers)
      for (const [, key] of LAYER_LINEARS) {
        const lora = layer[key].lora!;
        lora.B = be.upload(
          Float32Array.from({ length: lora.B.shape[0] * lora.B.shape[1] }, (_, i) => 0.2 * Math.cos(i)),
          lora.B.shape,
        );
      }
    expect(await check(model, ["lora"], { kind: "ce" }, c, undefined, 3)).toBeGreaterThan(40);
  });
});

// The decoder-layer backward and the codebook gradient against float64 central differences of an independent
// float64 layer (test/helpers/naive_llama.ts), on tiny random layers: Llama with GQA, Llama with every bias, and
// a Qwen2-style layer (q/k/v biases). Loss: mean((layer(x) − target)²).

import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  type CodebookLinear,
  CpuBackend,
  type DecoderLayer,
  decoderLayerBackward,
  decoderLayerForward,
  LAYER_LINEARS,
  type LinearKey,
  loadModel,
  Rng,
} from "../../src/index.js";
import { trainableGrads, trainableParams } from "../../src/train/trainable.js";
import { expectRelClose } from "../helpers/golden.js";
import { type NaiveConfig, type NaiveTensors, naiveLayer } from "../helpers/naive_llama.js";
import { finiteDifferenceVjp } from "../helpers/oracle.js";
import { type SyntheticSpec, writeSyntheticModel } from "../helpers/synthetic.js";
import { tmpDir } from "../helpers/tmp.js";

const CASES: [string, SyntheticSpec][] = [
  ["llama GQA 4/2", { hidden: 8, heads: 4, kvHeads: 2, headDim: 4, intermediate: 12, seed: 5 }],
  [
    "llama attention_bias + mlp_bias",
    { hidden: 8, heads: 2, kvHeads: 1, intermediate: 10, attentionBias: true, mlpBias: true, seed: 6 },
  ],
  [
    "qwen2 q/k/v biases",
    { architecture: "Qwen2ForCausalLM", hidden: 12, heads: 3, kvHeads: 1, intermediate: 10, seed: 7 },
  ],
];
const T = 5;
const P = "model.layers.0";

function rand(n: number, seed: number, scale = 1): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => scale * r.normal());
}

function naiveConfig(cfg: Record<string, unknown>): NaiveConfig {
  const n = (k: string) => cfg[k] as number;
  return {
    hidden: n("hidden_size"),
    layers: 1,
    heads: n("num_attention_heads"),
    kvHeads: n("num_key_value_heads"),
    headDim: n("head_dim"),
    vocab: n("vocab_size"),
    eps: n("rms_norm_eps"),
    theta: n("rope_theta"),
    tied: false,
    slidingWindow: null,
  };
}

/** Float64 loss of the naive layer with the given parameter values (and x). */
function naiveLoss(params: NaiveTensors, c: NaiveConfig, x: ArrayLike<number>, target: Float32Array): number {
  const C = c.hidden;
  const xs = Array.from({ length: T }, (_, t) => Array.from({ length: C }, (_, k) => x[t * C + k]));
  const ys = naiveLayer(params, c, P, xs);
  let s = 0;
  ys.forEach((row, t) => {
    row.forEach((v, k) => {
      s += (v - target[t * C + k]) ** 2;
    });
  });
  return s / (T * C);
}

describe.each(CASES)("layer backward vs float64 finite differences: %s", (_name, spec) => {
  const m = writeSyntheticModel(path.join(tmpDir(), "model"), { layers: 1, ...spec });
  const c = naiveConfig(m.config);
  const C = c.hidden;
  const x = rand(T * C, 11);
  const target = rand(T * C, 12, 0.5);

  async function ourGrads() {
    const be = new CpuBackend();
    const { config, model } = loadModel(m.dir, be);
    const layer = model.weights.layers[0];
    const { cos, sin } = model.ropeFor(T);
    const ctx = { cos, sin, past: 0 };
    const { y, saved } = decoderLayerForward(be, config, layer, be.upload(x, [1, T, C]), ctx, true);
    const { loss, grad } = be.mse(y, be.upload(target, [1, T, C]));
    return {
      be,
      layer,
      loss: (await be.read(loss))[0],
      grads: decoderLayerBackward(be, config, layer, saved!, grad, ctx),
    };
  }

  it("loss, d/dx and every parameter gradient", async () => {
    const { be, loss, grads } = await ourGrads();
    const names = [...m.tensors.keys()].filter((n) => n.startsWith(`${P}.`));
    const params: NaiveTensors = new Map(
      names.map((n) => [n, { shape: m.tensors.get(n)!.shape, data: m.tensors.get(n)!.data }]),
    );
    expect(Math.abs(loss - naiveLoss(params, c, x, target))).toBeLessThan(1e-6 * (1 + loss));

    const [gx] = finiteDifferenceVjp(([xs]) => [naiveLoss(params, c, xs, target)], [x], [1]);
    expectRelClose("d/dx", await be.read(grads.dx), gx, 1e-4);
    let checked = 0;
    for (const name of names) {
      const base = m.tensors.get(name)!;
      const [g] = finiteDifferenceVjp(
        ([w]) => [naiveLoss(new Map([...params, [name, { shape: base.shape, data: w }]]), c, x, target)],
        [base.data],
        [1],
      );
      const rel = name.slice(P.length + 1);
      let ours: Float32Array;
      if (rel === "input_layernorm.weight") ours = await be.read(grads.inputLayernorm!);
      else if (rel === "post_attention_layernorm.weight") ours = await be.read(grads.postAttentionLayernorm!);
      else {
        const entry = LAYER_LINEARS.find(([module]) => rel.startsWith(`${module}.`));
        if (!entry) throw new Error(`unexpected parameter ${name}`);
        const lg = grads.linears[entry[1]];
        const t = rel.endsWith(".bias") ? lg.bias : lg.weight;
        if (!t) throw new Error(`no gradient for ${name}`);
        ours = await be.read(t);
      }
      expectRelClose(name, ours, g, 1e-4);
      checked++;
    }
    expect(checked).toBe(names.length);
    expect(checked).toBeGreaterThanOrEqual(9);
  });

  for (const scaled of [false, true])
    it(`codebook gradient (shared q/k/v/o codebook, padded MLP vectors${scaled ? ", channel scales" : ""}) equals d loss / d centroid`, async () => {
      const be = new CpuBackend();
      const { config, model } = loadModel(m.dir, be);
      const layer: DecoderLayer = model.weights.layers[0];
      // replace each linear by a codebook linear: one d=3 attention codebook shared by q/k/v/o, one MLP codebook
      // with m = 2 parts (out = 10 or 12 rows → padded when not a multiple of 3)
      const d = 3;
      const K = 4;
      const r = new Rng(21);
      const books = { attention: rand(1 * K * d, 22, 0.3), mlp: rand(2 * K * d, 23, 0.3) };
      const bookTensors = { attention: be.upload(books.attention, [1, K, d]), mlp: be.upload(books.mlp, [2, K, d]) };
      const codes = new Map<LinearKey, Int32Array>();
      // channel scales in [0.5, 2): W = diag(s)·decode(codes)
      const scales = new Map<LinearKey, Float32Array>();
      for (const [module, key] of LAYER_LINEARS) {
        const lin = layer[key];
        const family = module.startsWith("self_attn") ? "attention" : "mlp";
        const parts = family === "attention" ? 1 : 2;
        const nb = Math.ceil(lin.outFeatures / d);
        const cs = Int32Array.from({ length: lin.inFeatures * nb }, () => r.int(K));
        codes.set(key, cs);
        const sc = Float32Array.from({ length: lin.outFeatures }, () => 0.5 + 1.5 * r.next());
        scales.set(key, sc);
        const cl: CodebookLinear = {
          kind: "codebook",
          codes: be.uploadInt(cs, [lin.inFeatures, nb]),
          codebooks: bookTensors[family],
          codebookName: `${P}.${family}.codebook`,
          layout: { out: lin.outFeatures, in: lin.inFeatures, d, nb, K, partCols: Math.ceil(nb / parts) },
          bias: lin.bias,
          inFeatures: lin.inFeatures,
          outFeatures: lin.outFeatures,
          ...(scaled ? { channelScale: be.upload(sc, [lin.outFeatures]) } : {}),
        };
        layer[key] = cl;
      }
      const { cos, sin } = model.ropeFor(T);
      const ctx = { cos, sin, past: 0 };
      const { y, saved } = decoderLayerForward(be, config, layer, be.upload(x, [1, T, C]), ctx, true);
      const { loss, grad } = be.mse(y, be.upload(target, [1, T, C]));
      const grads = decoderLayerBackward(be, config, layer, saved!, grad, ctx);
      const params = trainableParams(layer, P, false);
      // each codebook at its first use, each linear's channel scales after it
      const scaleNames = (prefix: string) =>
        scaled
          ? LAYER_LINEARS.filter(([module]) => module.startsWith(prefix)).map(
              ([module]) => `${P}.${module}.channel_scale`,
            )
          : [];
      expect(params.map((p) => p.name)).toEqual([
        `${P}.attention.codebook`,
        ...scaleNames("self_attn"),
        `${P}.mlp.codebook`,
        ...scaleNames("mlp"),
      ]);
      const ours = trainableGrads(be, layer, grads, params);
      const gAttn = ours[params.findIndex((p) => p.name === `${P}.attention.codebook`)];
      const gMlp = ours[params.findIndex((p) => p.name === `${P}.mlp.codebook`)];

      // float64: decode the weights from the (perturbed) codebooks independently, then the naive layer's loss
      const decode = (key: LinearKey, book: ArrayLike<number>, sc: ArrayLike<number> = scales.get(key)!) => {
        const lin = layer[key] as CodebookLinear;
        const { out, in: inp, nb, partCols } = lin.layout;
        const cs = codes.get(key)!;
        const w = new Float64Array(out * inp);
        for (let o = 0; o < out; o++)
          for (let i = 0; i < inp; i++) {
            const j = Math.floor(o / d);
            const v = book[(Math.floor(j / partCols) * K + cs[i * nb + j]) * d + (o % d)];
            w[o * inp + i] = scaled ? sc[o] * v : v;
          }
        return w;
      };
      const lossOf = (attn: ArrayLike<number>, mlp: ArrayLike<number>, sc?: Map<LinearKey, ArrayLike<number>>) => {
        const params64: NaiveTensors = new Map();
        for (const [n, t] of m.tensors) if (n.startsWith(`${P}.`)) params64.set(n, t);
        for (const [module, key] of LAYER_LINEARS) {
          const lin = layer[key];
          params64.set(`${P}.${module}.weight`, {
            shape: [lin.outFeatures, lin.inFeatures],
            data: decode(key, module.startsWith("self_attn") ? attn : mlp, sc?.get(key)),
          });
        }
        return naiveLoss(params64, c, x, target);
      };
      // the forward itself (channel scales applied) against the float64 layer
      expect((await be.read(loss))[0]).toBeCloseTo(lossOf(books.attention, books.mlp), 5);
      const [fdAttn, fdMlp] = finiteDifferenceVjp(([a, b]) => [lossOf(a, b)], [books.attention, books.mlp], [1]);
      expectRelClose("attention codebook", await be.read(gAttn), fdAttn, 1e-4);
      expectRelClose("mlp codebook", await be.read(gMlp), fdMlp, 1e-4);
      if (!scaled) return;
      // d loss / d s of every linear's channel scales
      const keys = LAYER_LINEARS.map(([, key]) => key);
      const fdScales = finiteDifferenceVjp(
        (ss) => [lossOf(books.attention, books.mlp, new Map(keys.map((k, j) => [k, ss[j]])))],
        keys.map((k) => scales.get(k)!),
        [1],
      );
      for (const [j, [module]] of LAYER_LINEARS.entries()) {
        const g = ours[params.findIndex((p) => p.name === `${P}.${module}.channel_scale`)];
        expectRelClose(`${module} channel scales`, await be.read(g), fdScales[j], 1e-4);
      }
    });

  it("ReALLM low-rank factors: stage 2 trains only A and B, whose gradients equal d loss / d factor", async () => {
    const be = new CpuBackend();
    const { config, model } = loadModel(m.dir, be);
    const layer: DecoderLayer = model.weights.layers[0];
    const rank = 2;
    const factors = new Map<LinearKey, { A: Float32Array; B: Float32Array }>();
    LAYER_LINEARS.forEach(([, key], j) => {
      const lin = layer[key];
      const A = rand(rank * lin.inFeatures, 40 + j, 0.3);
      const B = rand(lin.outFeatures * rank, 60 + j, 0.3);
      factors.set(key, { A, B });
      lin.lowrank = { A: be.upload(A, [rank, lin.inFeatures]), B: be.upload(B, [lin.outFeatures, rank]), scale: 1 };
    });
    const { cos, sin } = model.ropeFor(T);
    const ctx = { cos, sin, past: 0 };
    const { y, saved } = decoderLayerForward(be, config, layer, be.upload(x, [1, T, C]), ctx, true);
    const { grad } = be.mse(y, be.upload(target, [1, T, C]));
    const grads = decoderLayerBackward(be, config, layer, saved!, grad, ctx);
    const params = trainableParams(layer, P, false);
    expect(params.map((p) => p.name)).toEqual(
      LAYER_LINEARS.flatMap(([module]) => [`${P}.${module}.lowrank_A`, `${P}.${module}.lowrank_B`]),
    );
    const ours = trainableGrads(be, layer, grads, params);
    // float64: W + B·A for every linear, perturbing one linear's factors at a time
    const lossWith = (key: LinearKey, A: ArrayLike<number>, B: ArrayLike<number>) => {
      const params64: NaiveTensors = new Map();
      for (const [n, t] of m.tensors) if (n.startsWith(`${P}.`)) params64.set(n, t);
      for (const [module, k] of LAYER_LINEARS) {
        const lin = layer[k];
        const f = k === key ? { A, B } : factors.get(k)!;
        const base = m.tensors.get(`${P}.${module}.weight`)!.data;
        const w = Float64Array.from({ length: lin.outFeatures * lin.inFeatures }, (_, idx) => {
          const o = Math.floor(idx / lin.inFeatures);
          const i = idx % lin.inFeatures;
          let s = base[idx];
          for (let r = 0; r < rank; r++) s += f.B[o * rank + r] * f.A[r * lin.inFeatures + i];
          return s;
        });
        params64.set(`${P}.${module}.weight`, { shape: [lin.outFeatures, lin.inFeatures], data: w });
      }
      return naiveLoss(params64, c, x, target);
    };
    for (const [j, [module, key]] of LAYER_LINEARS.entries()) {
      const f = factors.get(key)!;
      const [fdA, fdB] = finiteDifferenceVjp(([A, B]) => [lossWith(key, A, B)], [f.A, f.B], [1]);
      expectRelClose(`${module}.lowrank_A`, await be.read(ours[2 * j]), fdA, 1e-4);
      expectRelClose(`${module}.lowrank_B`, await be.read(ours[2 * j + 1]), fdB, 1e-4);
    }
  });
});

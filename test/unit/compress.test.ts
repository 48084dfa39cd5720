// Stage 1 end to end on random models: the compressed directory loads, its forward equals the dense forward of
// the decoded weights, bits are counted honestly (shared codebooks once), and bad settings fail before writing.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  CompressionError,
  CpuBackend,
  compressModel,
  type DType,
  decodeWeight,
  f16ToF32,
  listLinears,
  loadModel,
  openCheckpoint,
  parseModelConfig,
  parseQuantizationConfig,
  Rng,
  readCodebookCodes,
  type TensorToWrite,
  unpackBits,
  vectorLayout,
  writeSafetensors,
} from "../../src/index.js";
import { expectClose } from "../helpers/golden.js";
import { writeSyntheticModel } from "../helpers/synthetic.js";
import { listTree, tmpDir } from "../helpers/tmp.js";

const be = new CpuBackend();

/** Writes a plain dense checkpoint holding the decoded weights of a compressed one. */
function dequantizeToDir(qdir: string, out: string): void {
  const cfg = JSON.parse(fs.readFileSync(path.join(qdir, "config.json"), "utf8"));
  const q = parseQuantizationConfig(cfg)!;
  const shapes = new Map(listLinears(parseModelConfig(cfg)).map((x) => [x.name, [x.out, x.in] as const]));
  const src = openCheckpoint(qdir);
  const tensors: TensorToWrite[] = [];
  const consumed = new Set<string>();
  for (const [name, m] of Object.entries(q.modules)) {
    const [out, inp] = shapes.get(name)!;
    let w: Float32Array;
    if (m.method === "cluscomp") {
      const l = vectorLayout(out, inp, m.d, m.m);
      w = decodeWeight(readCodebookCodes(src, name, m, inp, l.nb), src.readFloat32(m.codebook), l, m.K);
      consumed.add(`${name}.codes`).add(m.codebook);
      if (m.channel_scale) {
        // row o of the decoded codes times channel_scale[o]
        const sc = src.readFloat32(`${name}.channel_scale`);
        expect(sc.length).toBe(out);
        for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) w[o * inp + i] *= sc[o];
        consumed.add(`${name}.channel_scale`);
      }
      if (m.rank !== undefined) {
        // ReALLM: W = B·A + the decoded residual
        const A = src.readFloat32(`${name}.lowrank_A`);
        const B = src.readFloat32(`${name}.lowrank_B`);
        expect(A.length).toBe(m.rank * inp);
        for (let o = 0; o < out; o++)
          for (let i = 0; i < inp; i++) {
            let s = 0;
            for (let r = 0; r < m.rank; r++) s += B[o * m.rank + r] * A[r * inp + i];
            w[o * inp + i] += s;
          }
        consumed.add(`${name}.lowrank_A`).add(`${name}.lowrank_B`);
      }
    } else {
      const ng = Math.ceil(inp / m.group_size);
      const qv = unpackBits(src.readRaw(`${name}.qweight`) as Uint8Array, out * inp, m.bits);
      const s = src.readRaw(`${name}.scales`) as Uint16Array;
      const z = src.readRaw(`${name}.zeros`) as Uint16Array;
      w = new Float32Array(out * inp);
      for (let o = 0; o < out; o++)
        for (let i = 0; i < inp; i++) {
          const g = o * ng + Math.floor(i / m.group_size);
          w[o * inp + i] = qv[o * inp + i] * f16ToF32(s[g]) + f16ToF32(z[g]);
        }
      consumed.add(`${name}.qweight`).add(`${name}.scales`).add(`${name}.zeros`);
    }
    tensors.push({ name: `${name}.weight`, dtype: "F32", shape: [out, inp], data: w });
  }
  for (const n of src.names()) {
    if (consumed.has(n)) continue;
    const info = src.info(n)!;
    tensors.push({ name: n, dtype: info.dtype as DType, shape: info.shape, data: src.readRaw(n) });
  }
  fs.mkdirSync(out);
  writeSafetensors(path.join(out, "model.safetensors"), tensors);
  delete cfg.quantization_config;
  fs.writeFileSync(path.join(out, "config.json"), JSON.stringify(cfg));
}

async function logitsOf(dir: string): Promise<Float32Array> {
  const { model } = loadModel(dir, be);
  const r = new Rng(3);
  const ids = Int32Array.from({ length: 2 * 10 }, () => r.int(48));
  return be.read(model.forward(ids, 2, 10).logits);
}

const VARIANTS: [string, Parameters<typeof compressModel>[3]][] = [
  ["cluscomp share none, m=2", { method: "cluscomp", vectorDim: 4, clusters: 12, codebooks: 2, iters: 4 }],
  ["cluscomp share block, --bits", { method: "cluscomp", bits: 5, vectorDim: 4, share: "block", iters: 4 }],
  [
    "cluscomp share block, --bits, no channel scales",
    { method: "cluscomp", bits: 5, vectorDim: 4, share: "block", iters: 4, channelScales: false },
  ],
  [
    "cluscomp share model, d=3 (padding), BF16 centroids",
    { method: "cluscomp", vectorDim: 3, clusters: 30, share: "model", centroidDtype: "BF16" },
  ],
  ["rtn 3-bit g16", { method: "rtn", bits: 3, groupSize: 16 }],
  ["reallm --rank 2, share block", { method: "reallm", bits: 6, rank: 2, vectorDim: 4, share: "block", iters: 4 }],
  ["reallm, rank share chosen by the probes", { method: "reallm", bits: 8, share: "none", iters: 4 }],
];

describe.each(VARIANTS)("compress %s", (_name, opts) => {
  it("loads, and its forward equals the dense forward of the decoded weights", async () => {
    const root = tmpDir();
    const src = writeSyntheticModel(path.join(root, "src"), {
      architecture: "Qwen2ForCausalLM",
      hidden: 24,
      intermediate: 40,
    });
    const report = await compressModel(be, src.dir, path.join(root, "q"), opts);
    expect(listTree(root).some((f) => f.includes(".tmp-"))).toBe(false);
    dequantizeToDir(path.join(root, "q"), path.join(root, "dense"));
    // a low-rank part runs as two thin matmuls beside the codebook product, channel scales multiply the codebook
    // product's outputs: equal up to float32 rounding; otherwise exactly
    const scaled = opts.method !== "rtn" && opts.channelScales !== false;
    const tol = opts.method === "reallm" || scaled ? 1e-5 : 0;
    expectClose("logits", await logitsOf(path.join(root, "q")), await logitsOf(path.join(root, "dense")), tol);
    // bits: recompute from the stored tensors (shared codebooks stored once)
    const st = openCheckpoint(path.join(root, "q"));
    let bits = 0;
    for (const n of st.names()) {
      const quantized = [
        ".codes",
        ".codebook",
        ".scales",
        ".zeros",
        ".qweight",
        ".lowrank_A",
        ".lowrank_B",
        ".channel_scale",
      ].some((s) => n.endsWith(s));
      if (quantized) bits += st.info(n)!.byteLength * 8;
    }
    st.close();
    // RTN's packed codes round up to whole bytes per matrix
    expect(Math.abs(bits / report.compressedParams - report.bpw)).toBeLessThan(opts.method === "rtn" ? 0.01 : 1e-12);
    if (opts.bits !== undefined && opts.method !== "rtn") expect(report.bpw).toBeLessThanOrEqual(opts.bits);
    if (opts.method !== "rtn") {
      const q = parseQuantizationConfig(JSON.parse(fs.readFileSync(path.join(root, "q", "config.json"), "utf8")))!;
      const flags = Object.values(q.modules).map((m) => m.method === "cluscomp" && m.channel_scale === true);
      expect(flags.every((f) => f === scaled)).toBe(true);
      expect(q.channel_scales).toBe(scaled);
    }
    if (opts.method === "reallm") {
      const q = parseQuantizationConfig(JSON.parse(fs.readFileSync(path.join(root, "q", "config.json"), "utf8")))!;
      expect(q.method).toBe("reallm");
      const ranks = Object.values(q.modules).map((m) => (m.method === "cluscomp" ? (m.rank ?? 0) : -1));
      if (opts.rank !== undefined) expect(ranks.every((r) => r === opts.rank)).toBe(true);
      else {
        // the probes: every share tried is reported, the kept one has the least reconstruction error
        const probes = report.sideProbes!;
        expect(probes.length).toBeGreaterThanOrEqual(2);
        const best = probes.reduce((a, b) => (b.error < a.error ? b : a));
        expect(report.sideShare).toBe(best.share);
        expect(ranks.some((r) => r > 0)).toBe(best.share > 0);
      }
    }
    expect(report.bytes).toBeGreaterThan(0);
  });
});

describe("compress is reproducible", () => {
  it("the same seed gives a byte-identical checkpoint; another seed does not", async () => {
    const root = tmpDir();
    const src = writeSyntheticModel(path.join(root, "src"), {}).dir;
    const opts = { method: "cluscomp" as const, vectorDim: 4, clusters: 16, iters: 5 };
    await compressModel(be, src, path.join(root, "a"), { ...opts, seed: 7 });
    await compressModel(be, src, path.join(root, "b"), { ...opts, seed: 7 });
    await compressModel(be, src, path.join(root, "c"), { ...opts, seed: 8 });
    const bytes = (d: string) => fs.readFileSync(path.join(root, d, "model.safetensors"));
    expect(bytes("b").equals(bytes("a"))).toBe(true);
    expect(bytes("c").equals(bytes("a"))).toBe(false);
  });
});

describe("compress rejects bad settings and writes nothing", () => {
  const setup = () => {
    const root = tmpDir();
    const src = writeSyntheticModel(path.join(root, "src"), {});
    return { root, src: src.dir, out: path.join(root, "out") };
  };
  const cases: [string, Parameters<typeof compressModel>[3], RegExp][] = [
    ["K > 65536", { method: "cluscomp", vectorDim: 1, clusters: 70000 }, /exceeds 65536/],
    ["d < 1", { method: "cluscomp", vectorDim: 0, clusters: 4 }, /--vector-dim must be an integer ≥ 1/],
    [
      "K larger than the number of vectors",
      { method: "cluscomp", vectorDim: 8, clusters: 5000 },
      /larger than the number of vectors/,
    ],
    ["target bits unreachable", { method: "cluscomp", bits: 2, vectorDim: 4, codeBits: "16" }, /unreachable/],
    ["both --bits and --clusters", { method: "cluscomp", bits: 3, vectorDim: 4, clusters: 3 }, /exactly one of/],
    ["rtn bits out of range", { method: "rtn", bits: 9, groupSize: 16 }, /1\.\.8/],
  ];
  for (const [name, opts, msg] of cases) {
    it(name, async () => {
      const { root, src, out } = setup();
      const before = listTree(root);
      await expect(compressModel(be, src, out, opts)).rejects.toThrow(msg);
      await expect(compressModel(be, src, out, opts)).rejects.toBeInstanceOf(CompressionError);
      expect(listTree(root)).toEqual(before);
    });
  }

  it("several codebooks per matrix with a shared codebook", async () => {
    const { root, src, out } = setup();
    const before = listTree(root);
    const opts = { method: "cluscomp" as const, vectorDim: 4, clusters: 4, codebooks: 2, share: "block" as const };
    await expect(compressModel(be, src, out, opts)).rejects.toThrow(/--codebooks 2 needs --share none/);
    expect(listTree(root)).toEqual(before);
  });

  it("a model that is already compressed", async () => {
    const { root, src, out } = setup();
    await compressModel(be, src, out, { method: "rtn", bits: 4, groupSize: 8 });
    const again = path.join(root, "again");
    await expect(compressModel(be, out, again, { method: "rtn", bits: 4, groupSize: 8 })).rejects.toThrow(
      /already quantized/,
    );
    expect(fs.existsSync(again)).toBe(false);
  });

  it("output directory not empty", async () => {
    const { root, src, out } = setup();
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, "keep.txt"), "mine");
    const before = listTree(root);
    await expect(compressModel(be, src, out, { method: "rtn", bits: 4, groupSize: 8 })).rejects.toThrow(/is not empty/);
    expect(listTree(root)).toEqual(before);
  });

  it("a run interrupted mid-way leaves no output and no temporary directory", async () => {
    const { root, src, out } = setup();
    const before = listTree(root);
    let calls = 0;
    const run = compressModel(be, src, out, {
      method: "cluscomp",
      vectorDim: 4,
      clusters: 8,
      iters: 3,
      onProgress: () => {
        if (++calls === 5) throw new Error("interrupted");
      },
    });
    await expect(run).rejects.toThrow("interrupted");
    expect(listTree(root)).toEqual(before);
  });

  it("an empty existing output directory is used", async () => {
    const { src, out } = setup();
    fs.mkdirSync(out);
    await compressModel(be, src, out, { method: "rtn", bits: 4, groupSize: 8 });
    expect(fs.readdirSync(out).sort()).toEqual(["cluscomp.json", "config.json", "model.safetensors"]);
  });
});

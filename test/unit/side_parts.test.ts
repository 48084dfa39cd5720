// LLM-Codebook's salient channels and ReALLM's low-rank part as compress writes them, on the bundled stories260K:
// the salient input channels are those of largest hᵢ·Σ W[:, i]², stored exactly (up to fp16) beside the codes;
// the checkpoint decompresses to W = VQ + side part and evaluates as its dense decoding does; bits are counted.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  CpuBackend,
  compressModel,
  decompressModel,
  loadModel,
  ModelError,
  openCheckpoint,
  parseQuantizationConfig,
  Rng,
  readModelConfig,
  salientChannels,
  salientPartBits,
  type TensorToWrite,
  writeSafetensors,
} from "../../src/index.js";
import { EXAMPLE, TEXT } from "../helpers/cli.js";
import { tmpDir } from "../helpers/tmp.js";

const be = new CpuBackend();

describe("salientChannels", () => {
  it("picks the k channels of largest h·Σ w², ascending; h reorders them", () => {
    // W [2, 5]: channel energies Σ w² = 1, 4, 0.25, 9, 2.25
    const w = Float32Array.from([1, 2, 0.5, 3, 1.5, 0, 0, 0, 0, 0]);
    expect(Array.from(salientChannels(w, 2, 5, [1, 1, 1, 1, 1], 2))).toEqual([1, 3]);
    expect(Array.from(salientChannels(w, 2, 5, [1, 1, 100, 1, 1], 2))).toEqual([2, 3]);
  });
});

describe("compress --method llm-codebook", () => {
  it("stores the salient channels exactly (to fp16), counts their bits, and decompresses to what it evaluates", async () => {
    const root = tmpDir();
    const out = path.join(root, "lc");
    const k = 3;
    const report = await compressModel(be, EXAMPLE, out, {
      method: "llm-codebook",
      bits: 3.5,
      salient: k,
      weighting: "hessian",
      iters: 4,
      calibration: { calib: TEXT, samples: 4, seqlen: 64, seed: 0 },
    });
    expect(report.bpw).toBeLessThanOrEqual(3.5);
    const q = parseQuantizationConfig(readModelConfig(out).raw)!;
    expect(q.method).toBe("llm-codebook");
    const src = openCheckpoint(EXAMPLE);
    const st = openCheckpoint(out);
    let sideBits = 0;
    let params = 0;
    const dense = path.join(root, "dense");
    await decompressModel(out, dense, { dtype: "F32" });
    const dst = openCheckpoint(dense);
    for (const [name, m] of Object.entries(q.modules)) {
      if (m.method !== "cluscomp") throw new Error("codebook modules expected");
      expect(m.salient).toBe(k);
      const W = src.readFloat32(`${name}.weight`);
      const [o, i] = src.info(`${name}.weight`)!.shape;
      params += o * i;
      sideBits += salientPartBits(k, o);
      const S = Array.from(st.readRaw(`${name}.salient_index`) as Int32Array);
      expect(S).toHaveLength(k);
      const Wd = dst.readFloat32(`${name}.weight`);
      const maxAbs = W.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
      let salientErr = 0;
      let otherErr = 0;
      for (let r = 0; r < o; r++)
        for (let c = 0; c < i; c++) {
          const e = Math.abs(Wd[r * i + c] - W[r * i + c]);
          if (S.includes(c)) salientErr = Math.max(salientErr, e);
          else otherErr = Math.max(otherErr, e);
        }
      expect(salientErr).toBeLessThan(2e-3 * maxAbs);
      expect(otherErr).toBeGreaterThan(10 * salientErr);
    }
    // the reported bpw holds the salient channels' bits: more than the codebooks alone would give
    expect(report.bpw * params).toBeGreaterThan(sideBits);
    for (const s of [src, st, dst]) s.close();
    // the compressed model's logits equal its dense decoding's (float32 rounding of the side matmul)
    const logits = async (dir: string) => {
      const { model } = loadModel(dir, be);
      const r = new Rng(2);
      const ids = Int32Array.from({ length: 24 }, () => r.int(512));
      const l = await be.read(model.forward(ids, 1, 24).logits);
      model.dispose();
      return l;
    };
    const [a, b] = [await logits(out), await logits(dense)];
    let max = 0;
    for (let j = 0; j < a.length; j++) max = Math.max(max, Math.abs(a[j] - b[j]));
    expect(max).toBeLessThan(1e-4);

    // a salient index out of range or repeated is refused on load, naming the tensor
    const broken = path.join(root, "broken");
    fs.cpSync(out, broken, { recursive: true });
    const f = path.join(broken, "model.safetensors");
    const bst = openCheckpoint(broken);
    const name = "model.layers.0.mlp.up_proj.salient_index";
    const tensors: TensorToWrite[] = bst.names().map((n) => {
      const info = bst.info(n)!;
      const data = n === name ? Int32Array.from([5, 5, 7]) : bst.readRaw(n).slice();
      return { name: n, dtype: info.dtype, shape: info.shape, data };
    });
    bst.close();
    writeSafetensors(f, tensors);
    expect(() => loadModel(broken, be)).toThrow(ModelError);
    expect(() => loadModel(broken, be)).toThrow(/salient_index" holds 5 at \[1\]/);
  });

  it("--share model (codebooks across blocks): the statistics of every block at once, salient share probed", async () => {
    const out = path.join(tmpDir(), "lc-model");
    const report = await compressModel(be, EXAMPLE, out, {
      method: "llm-codebook",
      bits: 3,
      share: "model",
      weighting: "hessian",
      iters: 3,
      calibration: { calib: TEXT, samples: 4, seqlen: 64, seed: 0 },
    });
    expect(report.bpw).toBeLessThanOrEqual(3);
    expect(report.sideProbes!.length).toBeGreaterThanOrEqual(2);
    expect(parseQuantizationConfig(readModelConfig(out).raw)!.hessian_inputs).toBe("original");
  });
});

// Stage 2 end to end on the bundled stories260K: block-wise tuning lowers every block's loss, writes a loadable
// checkpoint that differs from stage 1 only in its codebooks, resumes after a crash to the very same bytes, spills
// its activation streams to disk with the same result, and refuses what it cannot tune.

import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type BlockwiseOptions,
  type BlockwiseReport,
  CompressionError,
  CpuBackend,
  compressModel,
  finetuneBlockwise,
  loadModel,
  openCheckpoint,
  parseQuantizationConfig,
  readModelConfig,
  WebGpuBackend,
} from "../../src/index.js";
import { reportWebGpuSkip, WEBGPU } from "../helpers/backends.js";
import { EXAMPLE, TEXT } from "../helpers/cli.js";
import { nmse } from "../helpers/oracle.js";
import { tmpDir } from "../helpers/tmp.js";

const be = new CpuBackend();
const TUNE: BlockwiseOptions = { calib: TEXT, calibSamples: 3, calibSeqlen: 24, epochs: 2, seed: 1 };

function sha(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

describe("block-wise codebook tuning (stories260K)", () => {
  const root = tmpDir();
  const stage1 = path.join(root, "stage1");
  beforeAll(async () => {
    await compressModel(be, EXAMPLE, stage1, { method: "cluscomp", bits: 4.1, vectorDim: 8, share: "block", iters: 3 });
  });

  let reference = "";
  let cpuRun: BlockwiseReport | null = null;
  it("lowers the loss of every block and changes only the codebooks and channel scales", async () => {
    const out = path.join(root, "tuned");
    const r = await finetuneBlockwise(be, EXAMPLE, stage1, out, `${out}.work`, TUNE);
    const L = readModelConfig(EXAMPLE).numHiddenLayers;
    expect(r.blocks.map((b) => b.block)).toEqual([...Array(L).keys()]);
    for (const b of r.blocks) {
      expect(b.lossAfter, `block ${b.block}`).toBeLessThan(b.lossBefore);
      expect(b.epochLosses).toHaveLength(2);
    }
    expect(r.streamsOnDisk).toBe(false);
    expect(fs.existsSync(`${out}.work`)).toBe(false);

    const q = parseQuantizationConfig(readModelConfig(out).raw)!;
    expect(q.finetune).toMatchObject({ method: "blockwise", epochs: 2, calib_samples: 3, calib_seqlen: 24 });
    const before = openCheckpoint(stage1);
    const after = openCheckpoint(out);
    expect(after.names().sort()).toEqual(before.names().sort());
    // stage 2 trains the codebooks and the channel scales
    const codebooks = new Set(Object.values(q.modules).map((m) => (m.method === "cluscomp" ? m.codebook : "")));
    const scales = new Set(
      Object.entries(q.modules).flatMap(([name, m]) =>
        m.method === "cluscomp" && m.channel_scale ? [`${name}.channel_scale`] : [],
      ),
    );
    expect(scales.size).toBe(7 * L);
    let changed = 0;
    for (const n of before.names()) {
      const same = Buffer.from(before.readRaw(n).buffer).equals(Buffer.from(after.readRaw(n).buffer));
      if (codebooks.has(n) || scales.has(n)) {
        expect(after.info(n)!.dtype).toBe("F16");
        if (!same) changed++;
      } else {
        expect(same, n).toBe(true);
      }
    }
    expect(changed).toBe(codebooks.size + scales.size);
    const { model } = loadModel(out, be);
    expect(model.weights.layers).toHaveLength(L);
    reference = sha(path.join(out, "model.safetensors"));
    cpuRun = r;
  });

  reportWebGpuSkip("stage 1 and stage 2");
  it.runIf(WEBGPU instanceof WebGpuBackend)(
    "on webgpu: stage 1 gives the CPU's codes and stage 2 the CPU's losses and codebooks, to float tolerance",
    async () => {
      const gpu = WEBGPU as WebGpuBackend;
      const gpuStage1 = path.join(root, "stage1-webgpu");
      await compressModel(gpu, EXAMPLE, gpuStage1, {
        method: "cluscomp",
        bits: 4.1,
        vectorDim: 8,
        share: "block",
        iters: 3,
      });
      const [a, b] = [openCheckpoint(stage1), openCheckpoint(gpuStage1)];
      const q = parseQuantizationConfig(readModelConfig(stage1).raw)!;
      let codes = 0;
      let same = 0;
      for (const [name, m] of Object.entries(q.modules)) {
        if (m.method !== "cluscomp") continue;
        const [x, y] = [a.readRaw(`${name}.codes`), b.readRaw(`${name}.codes`)];
        expect(y.length).toBe(x.length);
        for (let i = 0; i < x.length; i++) if (x[i] === y[i]) same++;
        codes += x.length;
      }
      // float32 sums in another order may flip near-ties in the assignment, and k-means then drifts a little
      expect(same / codes).toBeGreaterThan(0.98);

      // stage 2 from the CPU's stage 1 (the same codes): the same losses and tuned codebooks
      const out = path.join(root, "tuned-webgpu");
      const r = await finetuneBlockwise(gpu, EXAMPLE, stage1, out, `${out}.work`, TUNE);
      for (const [i, blk] of r.blocks.entries()) {
        const ref = cpuRun!.blocks[i];
        expect(Math.abs(blk.lossBefore - ref.lossBefore) / ref.lossBefore, `block ${i} before`).toBeLessThan(1e-4);
        expect(Math.abs(blk.lossAfter - ref.lossAfter) / ref.lossAfter, `block ${i} after`).toBeLessThan(1e-3);
      }
      const [tc, tg] = [openCheckpoint(path.join(root, "tuned")), openCheckpoint(out)];
      for (const m of Object.values(q.modules)) {
        if (m.method !== "cluscomp") continue;
        const [x, y] = [tc.readFloat32(m.codebook), tg.readFloat32(m.codebook)];
        expect(y.length).toBe(x.length);
        // AdamW's update ≈ lr·sign(g) where g ≈ 0, so float32 noise in tiny gradients moves a few centroids apart
        expect(nmse(y, x), m.codebook).toBeLessThan(1e-5);
      }
    },
    300_000,
  );

  it("resumes after a crash mid-block and ends with the same checkpoint", async () => {
    const out = path.join(root, "resumed");
    const work = `${out}.work`;
    await expect(
      finetuneBlockwise(be, EXAMPLE, stage1, out, work, {
        ...TUNE,
        onProgress: (p) => {
          if (p.phase === "train" && p.block === 2 && p.epoch === 2) throw new Error("simulated crash");
        },
      }),
    ).rejects.toThrow(/simulated crash/);
    expect(fs.existsSync(out)).toBe(false);
    expect(JSON.parse(fs.readFileSync(path.join(work, "state.json"), "utf8")).nextBlock).toBe(2);
    await expect(finetuneBlockwise(be, EXAMPLE, stage1, out, work, TUNE)).rejects.toThrow(/--resume/);
    await expect(
      finetuneBlockwise(be, EXAMPLE, stage1, out, work, { ...TUNE, resume: true, lr: 5e-3 }),
    ).rejects.toThrow(/other settings/);
    const r = await finetuneBlockwise(be, EXAMPLE, stage1, out, work, { ...TUNE, resume: true });
    expect(r.blocks.map((b) => b.block)).toEqual([0, 1, 2, 3, 4]);
    expect(sha(path.join(out, "model.safetensors"))).toBe(reference);
  });

  it("keeps the activation streams on disk past --max-memory, with the same result", async () => {
    const out = path.join(root, "disk");
    const r = await finetuneBlockwise(be, EXAMPLE, stage1, out, `${out}.work`, { ...TUNE, maxMemory: 1000 });
    expect(r.streamsOnDisk).toBe(true);
    expect(sha(path.join(out, "model.safetensors"))).toBe(reference);
  });

  it("--train-norms also trains the RMSNorm weights, stored in their dtype", async () => {
    const out = path.join(root, "norms");
    const r = await finetuneBlockwise(be, EXAMPLE, stage1, out, `${out}.work`, {
      ...TUNE,
      epochs: 1,
      trainNorms: true,
    });
    for (const b of r.blocks) expect(b.lossAfter).toBeLessThan(b.lossBefore);
    const before = openCheckpoint(stage1);
    const after = openCheckpoint(out);
    for (const n of ["model.layers.0.input_layernorm.weight", "model.layers.4.post_attention_layernorm.weight"]) {
      expect(after.info(n)!.dtype).toBe(before.info(n)!.dtype);
      expect(Buffer.from(after.readRaw(n).buffer).equals(Buffer.from(before.readRaw(n).buffer)), n).toBe(false);
    }
    expect(parseQuantizationConfig(readModelConfig(out).raw)!.finetune).toMatchObject({ train_norms: true });
  });

  it("keeps a block's stage-1 codebooks when tuning raised its held-out loss, and reports it", async () => {
    // an absurd learning rate throws the centroids off: the guard must undo it block by block
    const out = path.join(root, "guarded");
    const progress: number[] = [];
    let total = 0;
    const r = await finetuneBlockwise(be, EXAMPLE, stage1, out, `${out}.work`, {
      ...TUNE,
      lr: 3,
      calibHoldout: 2,
      onProgress: (p) => {
        progress.push(p.workDone);
        total = p.workTotal;
      },
    });
    const reverted = r.blocks.filter((b) => b.kept === "stage1");
    expect(reverted.length).toBeGreaterThan(0);
    for (const b of r.blocks) {
      if (b.kept === "stage1") {
        expect(b.heldoutTuned).toBeGreaterThan(b.heldoutBefore);
        expect(b.lossAfter).toBeCloseTo(b.lossBefore, 9); // the block computes what stage 1 did
      } else {
        expect(b.heldoutTuned).toBeLessThanOrEqual(b.heldoutBefore);
      }
    }
    const q = parseQuantizationConfig(readModelConfig(out).raw)!;
    const before = openCheckpoint(stage1);
    const after = openCheckpoint(out);
    for (const b of r.blocks) {
      const names = new Set(
        Object.entries(q.modules)
          .filter(([n, m]) => n.startsWith(`model.layers.${b.block}.`) && m.method === "cluscomp")
          .map(([, m]) => (m.method === "cluscomp" ? m.codebook : "")),
      );
      for (const n of names) {
        const same = Buffer.from(before.readRaw(n).buffer).equals(Buffer.from(after.readRaw(n).buffer));
        expect(same, `${n} (block ${b.block} kept ${b.kept})`).toBe(b.kept === "stage1");
      }
    }
    // one overall progress: never backwards, ending at the total
    for (let i = 1; i < progress.length; i++) expect(progress[i]).toBeGreaterThanOrEqual(progress[i - 1]);
    expect(progress.at(-1)).toBe(total);
    // without held-out windows there is no guard: every block keeps what tuning gave
    const off = path.join(root, "unguarded");
    const u = await finetuneBlockwise(be, EXAMPLE, stage1, off, `${off}.work`, { ...TUNE, lr: 3, calibHoldout: 0 });
    expect(u.blocks.every((b) => b.kept === "tuned" && Number.isNaN(b.heldoutBefore))).toBe(true);
  });

  it("refuses codebooks shared across blocks, RTN checkpoints and bad options, writing nothing", async () => {
    const shared = path.join(root, "model-shared");
    await compressModel(be, EXAMPLE, shared, { method: "cluscomp", bits: 4.1, vectorDim: 8, share: "model", iters: 1 });
    const rtn = path.join(root, "rtn");
    await compressModel(be, EXAMPLE, rtn, { method: "rtn", bits: 4, groupSize: 64 });
    const out = path.join(root, "never");
    const run = (dir: string, o: Partial<BlockwiseOptions> = {}) =>
      finetuneBlockwise(be, EXAMPLE, dir, out, `${out}.work`, { ...TUNE, ...o });
    await expect(run(shared)).rejects.toThrow(/shared by blocks 0 and 1/);
    await expect(run(rtn)).rejects.toThrow(CompressionError);
    await expect(run(stage1, { calibSeqlen: 100_000 })).rejects.toThrow(/calib-seqlen/);
    await expect(run(stage1, { epochs: -1 })).rejects.toThrow(/epochs/);
    await expect(run(stage1, { calib: path.join(root, "missing.txt") })).rejects.toThrow(/no such file/);
    await expect(finetuneBlockwise(be, EXAMPLE, stage1, stage1, `${out}.work`, TUNE)).rejects.toThrow(/not empty/);
    await expect(finetuneBlockwise(be, rtn, stage1, out, `${out}.work`, TUNE)).rejects.toThrow(/itself compressed/);
    expect(fs.existsSync(out)).toBe(false);
  });
});

// Channel scales (compress/scales.ts): one fp16 scale per output row, the codebook fitting the normalised rows.
// The scales themselves, and what they buy on a real model at the same --bits.

import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  CpuBackend,
  channelScales,
  compressModel,
  f16ToF32,
  f32ToF16,
  loadModel,
  openCheckpoint,
  Rng,
  scaleRows,
} from "../../src/index.js";
import { MODELS } from "../helpers/golden.js";
import { tmpDir } from "../helpers/tmp.js";

describe("channel scales", () => {
  it("are each row's largest |w| over the channels not ignored, fp16-rounded, 1 for an all-zero row", () => {
    const out = 4;
    const inp = 5;
    const w = Float32Array.from([0.1, -0.7, 0.3, 0.2, 0.05, 0, 0, 0, 0, 0, 3.3, 1, -9.1, 2, 0, 1e-9, -2e-9, 0, 0, 0]);
    const r = (v: number) => f16ToF32(f32ToF16(v));
    expect(Array.from(channelScales(w, out, inp, "F16"))).toEqual([r(0.7), 1, r(9.1), 1]);
    // channel 2 ignored (LLM-Codebook's salient channels): row 2's scale comes from the rest
    expect(Array.from(channelScales(w, out, inp, "F16", [2]))).toEqual([r(0.7), 1, r(3.3), 1]);
  });

  it("divide and multiply rows back to the same weight", () => {
    const rng = new Rng(5);
    const w = Float32Array.from({ length: 6 * 7 }, () => rng.normal());
    const s = channelScales(w, 6, 7, "BF16");
    const n = scaleRows(w, s, 7, true);
    // within bf16 rounding of the largest |w| (8 significant bits)
    for (let i = 0; i < n.length; i++) expect(Math.abs(n[i])).toBeLessThanOrEqual(1 + 2 ** -8);
    const back = scaleRows(n, s, 7);
    for (let i = 0; i < w.length; i++) expect(back[i]).toBeCloseTo(w[i], 6);
  });

  it("lower stories260K's weight reconstruction error at the same --bits, scales counted in bpw", async () => {
    const be = new CpuBackend();
    const root = tmpDir();
    const run = (channelScales: boolean) =>
      compressModel(be, MODELS.stories260K, path.join(root, String(channelScales)), {
        method: "cluscomp",
        bits: 4,
        channelScales,
      });
    const on = await run(true);
    const off = await run(false);
    const error = (r: typeof on) => r.groups!.reduce((s, g) => s + g.reconstructionError, 0);
    expect(on.bpw).toBeLessThanOrEqual(4);
    expect(off.bpw).toBeLessThanOrEqual(4);
    // measured: 0.73× the error without scales (deterministic: seed 0)
    expect(error(on)).toBeLessThan(0.8 * error(off));
    const st = openCheckpoint(path.join(root, "true"));
    const scales = st.names().filter((n) => n.endsWith(".channel_scale"));
    expect(scales.length).toBe(35);
    st.close();
    // the loaded linear's weight is diag(s)·decode(codes)
    const { model } = loadModel(path.join(root, "true"), be);
    const lin = model.weights.layers[0].qProj;
    expect(lin.kind === "codebook" && lin.channelScale !== undefined).toBe(true);
  });
});

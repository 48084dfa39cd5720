// Rotary-embedding frequencies and cos/sin tables, as transformers' rope init functions compute them
// (default, linear, llama3), in float32 like HF: inv_freq = 1 / θ^(2i/D), freqs = pos · inv_freq.

import type { RopeScaling } from "../io/hf_config.js";

const f = Math.fround;

/** inv_freq[i], i < D/2, after scaling. */
export function ropeInvFreq(headDim: number, theta: number, scaling: RopeScaling): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(theta ** f((2 * i) / headDim)));
  if (scaling.type === "linear") {
    for (let i = 0; i < half; i++) inv[i] = f(inv[i] / scaling.factor);
  } else if (scaling.type === "llama3") {
    // transformers _compute_llama3_parameters
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: oldCtx } = scaling;
    const lowFreqWavelen = oldCtx / lowFreqFactor;
    const highFreqWavelen = oldCtx / highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      let v = wavelen > lowFreqWavelen ? inv[i] / factor : inv[i];
      const isMedium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
      if (isMedium) {
        const smooth = (oldCtx / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        v = (1 - smooth) * (v / factor) + smooth * v;
      }
      inv[i] = f(v);
    }
  }
  return inv;
}

/** cos and sin tables [positions, D/2] for positions 0..positions−1. */
export function ropeTables(invFreq: Float32Array, positions: number): { cos: Float32Array; sin: Float32Array } {
  const half = invFreq.length;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const a = f(p * invFreq[i]);
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}

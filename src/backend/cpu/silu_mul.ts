// silu_mul: out = silu(gate) · up = gate / (1 + e^−gate) · up (the Llama MLP's gated activation).

export function silu_mul_forward(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    out[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
}

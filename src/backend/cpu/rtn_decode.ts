// rtn_decode: asymmetric round-to-nearest dequantization, w[o, i] = q[o, i]·scale[o, g] + zero[o, g] with
// g = ⌊i / group⌋. q: b-bit codes packed LSB-first into 32-bit words (bit stream over row-major [out, in]);
// scales and zeros [out, ⌈in/group⌉] → W [out, in].

export function rtn_decode_forward(
  w: Float32Array,
  packed: Int32Array,
  scales: Float32Array,
  zeros: Float32Array,
  out: number,
  inp: number,
  bits: number,
  group: number,
): void {
  const ng = Math.ceil(inp / group);
  const mask = 2 ** bits - 1;
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inp; i++) {
      const bit = (o * inp + i) * bits;
      const word = bit >>> 5;
      const shift = bit & 31;
      let q = packed[word] >>> shift;
      if (shift + bits > 32) q |= packed[word + 1] << (32 - shift);
      const g = o * ng + Math.floor(i / group);
      w[o * inp + i] = (q & mask) * scales[g] + zeros[g];
    }
  }
}

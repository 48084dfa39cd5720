// rtn_decode: w[o, i] = q[o, i]·scale[o, g] + zero[o, g], g = ⌊i / group⌋; q are b-bit codes packed LSB-first
// into 32-bit words (a bit stream over row-major [out, in]). One thread per weight.

struct Params { out: u32, inp: u32, bits: u32, group: u32, ng: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> packed: array<u32>;
@group(0) @binding(2) var<storage, read> scales: array<f32>;
@group(0) @binding(3) var<storage, read> zeros: array<f32>;
@group(0) @binding(4) var<storage, read_write> w: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * 256u;
  if (e >= p.out * p.inp) { return; }
  let bit = e * p.bits;
  let word = bit >> 5u;
  let shift = bit & 31u;
  var q = packed[word] >> shift;
  if (shift + p.bits > 32u) { q |= packed[word + 1u] << (32u - shift); }
  q &= (1u << p.bits) - 1u;
  let g = (e / p.inp) * p.ng + (e % p.inp) / p.group;
  w[e] = f32(q) * scales[g] + zeros[g];
}

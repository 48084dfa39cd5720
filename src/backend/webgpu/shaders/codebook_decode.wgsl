// codebook_decode: W[j·d + k, i] = codebooks[part(j), codes[i, j], k] for output rows o = j·d + k < out;
// part(j) = ⌊j / partCols⌋. codes i32 [in, nb], codebooks [m, K, d] → W [out, in]. One thread per element of W.

struct Params { out: u32, inp: u32, d: u32, nb: u32, K: u32, partCols: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> codes: array<i32>;
@group(0) @binding(2) var<storage, read> books: array<f32>;
@group(0) @binding(3) var<storage, read_write> w: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * 256u;
  if (e >= p.out * p.inp) { return; }
  let o = e / p.inp;
  let i = e % p.inp;
  let j = o / p.d;
  w[e] = books[((j / p.partCols) * p.K + u32(codes[i * p.nb + j])) * p.d + o % p.d];
}

// codebook_linear: y = x·Wᵀ + b with W [out, in] read straight from codes i32 [in, nb] and codebooks [m, K, d]:
// W[o, i] = codebooks[part(j), codes[i, j], o mod d] with j = ⌊o / d⌋, part(j) = ⌊j / partCols⌋. x [M, in].
// Matrix shape (prefill): the operands below feed matmul_tiles.wgsl (entry `main`), decoding W's tile as it is
// staged. Vector shape (decode, M ≤ VM rows): `vector_partial` gives each thread one output vector j and a slice
// of the inputs, accumulating M·D outputs (D = d, prepended) from one code and one centroid per input; the
// slices' partial sums [slices, M, out] are added (with the bias) by `vector_reduce`.

struct Params { M: u32, K: u32, N: u32, nb: u32, Kc: u32, d: u32, partCols: u32, slices: u32, sliceLen: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> codes: array<i32>;
@group(0) @binding(3) var<storage, read> books: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;
@group(0) @binding(7) var<storage, read> partialIn: array<f32>;

fn load_a(m: u32, k: u32) -> f32 { return x[m * p.K + k]; }
fn load_b(k: u32, n: u32) -> f32 {
  let j = n / p.d;
  return books[((j / p.partCols) * p.Kc + u32(codes[k * p.nb + j])) * p.d + n % p.d];
}
fn bias_at(n: u32) -> f32 { return bias[n]; }
fn store(m: u32, n: u32, v: f32) { y[m * p.N + n] = v; }

@compute @workgroup_size(64)
fn vector_partial(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let j = gid.x;
  let s = wid.y;
  if (j >= p.nb) { return; }
  var acc: array<f32, VM * D>;
  let i0 = s * p.sliceLen;
  let i1 = min(i0 + p.sliceLen, p.K);
  let part = (j / p.partCols) * p.Kc;
  for (var i = i0; i < i1; i++) {
    let base = (part + u32(codes[i * p.nb + j])) * D;
    var c: array<f32, D>;
    for (var k = 0u; k < D; k++) { c[k] = books[base + k]; }
    for (var r = 0u; r < VM; r++) {
      if (r < p.M) {
        let xv = x[r * p.K + i];
        for (var k = 0u; k < D; k++) { acc[r * D + k] = fma(xv, c[k], acc[r * D + k]); }
      }
    }
  }
  for (var r = 0u; r < VM; r++) {
    for (var k = 0u; k < D; k++) {
      let o = j * D + k;
      if (r < p.M && o < p.N) { partial[(s * p.M + r) * p.N + o] = acc[r * D + k]; }
    }
  }
}

@compute @workgroup_size(256)
fn vector_reduce(@builtin(global_invocation_id) gid: vec3u) {
  let e = gid.x; // r·N + o
  if (e >= p.M * p.N) { return; }
  var v = 0.0;
  if (HAS_BIAS) { v = bias[e % p.N]; }
  for (var s = 0u; s < p.slices; s++) { v += partialIn[s * p.M * p.N + e]; }
  y[e] = v;
}

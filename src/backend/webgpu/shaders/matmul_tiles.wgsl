// matmul_tiles: the tiled product C = A·B (+ bias) shared by matmul and codebook_linear's matrix shape.
// The including shader defines the operands: load_a(m, k), load_b(k, n), bias_at(n), store(m, n, v) and
// p.M, p.K, p.N; the backend prepends TM, TN (outputs per thread along M and N), BK, A_K_CONTIGUOUS,
// B_K_CONTIGUOUS (which index runs fastest in memory, for coalesced tile loads) and HAS_BIAS.
// A 16×16 workgroup computes a (16·TM)×(16·TN) tile of C, staging BK-deep slices of A and B in workgroup memory;
// thread (y, x) owns rows y + 16·i and columns x + 16·j. Out-of-range loads read 0, stores are masked.

const BM: u32 = 16u * TM;
const BN: u32 = 16u * TN;
var<workgroup> As: array<f32, BK * BM>; // [k][m]
var<workgroup> Bs: array<f32, BK * BN>; // [k][n]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let m0 = wid.y * BM;
  let n0 = wid.x * BN;
  var acc: array<f32, TM * TN>;
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    for (var e = li; e < BM * BK; e += 256u) {
      var mm: u32;
      var kk: u32;
      if (A_K_CONTIGUOUS) { kk = e % BK; mm = e / BK; } else { mm = e % BM; kk = e / BM; }
      let m = m0 + mm;
      let k = k0 + kk;
      var v = 0.0;
      if (m < p.M && k < p.K) { v = load_a(m, k); }
      As[kk * BM + mm] = v;
    }
    for (var e = li; e < BN * BK; e += 256u) {
      var nn: u32;
      var kk: u32;
      if (B_K_CONTIGUOUS) { kk = e % BK; nn = e / BK; } else { nn = e % BN; kk = e / BN; }
      let n = n0 + nn;
      let k = k0 + kk;
      var v = 0.0;
      if (n < p.N && k < p.K) { v = load_b(k, n); }
      Bs[kk * BN + nn] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var a: array<f32, TM>;
      var b: array<f32, TN>;
      for (var i = 0u; i < TM; i++) { a[i] = As[kk * BM + lid.y + 16u * i]; }
      for (var j = 0u; j < TN; j++) { b[j] = Bs[kk * BN + lid.x + 16u * j]; }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) { acc[i * TN + j] = fma(a[i], b[j], acc[i * TN + j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < TM; i++) {
    let m = m0 + lid.y + 16u * i;
    for (var j = 0u; j < TN; j++) {
      let n = n0 + lid.x + 16u * j;
      if (m < p.M && n < p.N) {
        var v = acc[i * TN + j];
        if (HAS_BIAS) { v += bias_at(n); }
        store(m, n, v);
      }
    }
  }
}

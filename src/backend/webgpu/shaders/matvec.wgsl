// matvec: C [M, N] = A [M, K] · B (+ bias [N]) for a few rows (M ≤ MV, prepended), the decode shape of a linear,
// where a 2-D tile would leave most threads idle. A is stored [M, K] (or [K, M] with TRANS_A).
// The operands (bindings, load_a, bias_at, store) are matmul.wgsl's, included after this file.
// `rows`: B stored [N, K] (a linear's weight, x·Wᵀ): one workgroup of 64 threads per output column n; the threads
// stride along the contiguous row n of B (coalesced), each accumulating all M rows, then a tree reduction.
// `cols`: B stored [K, N]: one thread per output column n loops over k; neighbouring threads read neighbouring n.

var<workgroup> sums: array<f32, 64 * MV>;

@compute @workgroup_size(64)
fn rows(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let n = wid.x + wid.y * nwg.x; // uniform across the workgroup
  var acc: array<f32, MV>;
  if (n < p.N) {
    for (var k = li; k < p.K; k += 64u) {
      let w = load_b(k, n);
      for (var m = 0u; m < p.M; m++) { acc[m] = fma(load_a(m, k), w, acc[m]); }
    }
  }
  for (var m = 0u; m < MV; m++) { sums[m * 64u + li] = acc[m]; }
  workgroupBarrier();
  for (var half = 32u; half > 0u; half >>= 1u) {
    if (li < half) {
      for (var m = 0u; m < MV; m++) { sums[m * 64u + li] += sums[m * 64u + li + half]; }
    }
    workgroupBarrier();
  }
  if (n < p.N && li < p.M) {
    var v = sums[li * 64u];
    if (HAS_BIAS) { v += bias_at(n); }
    store(li, n, v);
  }
}

@compute @workgroup_size(64)
fn cols(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let n = gid.x + gid.y * nwg.x * 64u;
  if (n >= p.N) { return; }
  var acc: array<f32, MV>;
  for (var k = 0u; k < p.K; k++) {
    let w = load_b(k, n);
    for (var m = 0u; m < p.M; m++) { acc[m] = fma(load_a(m, k), w, acc[m]); }
  }
  for (var m = 0u; m < p.M; m++) {
    var v = acc[m];
    if (HAS_BIAS) { v += bias_at(n); }
    store(m, n, v);
  }
}

// kmeans_assign: nearest centroid of each vector by ‖x‖² − 2x·c + ‖c‖², ties to the lowest index, never
// materializing N×K. x [N, D], centroids [K, D] → codes i32 [N], distances [N] (clamped at 0).
// The backend prepends D (vector length), VPT (vectors per thread) and TILE (centroids per workgroup tile).
// A workgroup of 128 threads owns 128·VPT vectors held in registers; it walks the centroids in tiles staged in
// workgroup memory with their squared norms, each thread keeping a running (best score, index) per vector —
// the distance matmul fused with its argmin. Centroids are scanned in increasing order, so `<` keeps the first.

const WG: u32 = 128u;
struct Params { N: u32, K: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> centroids: array<f32>;
@group(0) @binding(3) var<storage, read_write> codes: array<i32>;
@group(0) @binding(4) var<storage, read_write> distances: array<f32>;

var<workgroup> cs: array<f32, TILE * D>;
var<workgroup> cn: array<f32, TILE>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let base = (wid.x + wid.y * nwg.x) * WG * VPT;
  var xv: array<f32, VPT * D>;
  var best: array<f32, VPT>;
  var bi: array<u32, VPT>;
  for (var v = 0u; v < VPT; v++) {
    let n = base + li + WG * v;
    for (var j = 0u; j < D; j++) {
      if (n < p.N) { xv[v * D + j] = x[n * D + j]; }
    }
    best[v] = 0x1.fffffep+127f;
  }
  for (var k0 = 0u; k0 < p.K; k0 += TILE) {
    let kn = min(TILE, p.K - k0);
    for (var e = li; e < kn * D; e += WG) { cs[e] = centroids[k0 * D + e]; }
    workgroupBarrier();
    for (var e = li; e < kn; e += WG) {
      var s = 0.0;
      for (var j = 0u; j < D; j++) { s = fma(cs[e * D + j], cs[e * D + j], s); }
      cn[e] = s;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < kn; kk++) {
      var c: array<f32, D>;
      for (var j = 0u; j < D; j++) { c[j] = cs[kk * D + j]; }
      let norm = cn[kk];
      for (var v = 0u; v < VPT; v++) {
        var dot = 0.0;
        for (var j = 0u; j < D; j++) { dot = fma(xv[v * D + j], c[j], dot); }
        let score = norm - 2.0 * dot;
        if (score < best[v]) {
          best[v] = score;
          bi[v] = k0 + kk;
        }
      }
    }
    workgroupBarrier();
  }
  for (var v = 0u; v < VPT; v++) {
    let n = base + li + WG * v;
    if (n < p.N) {
      var xx = 0.0;
      for (var j = 0u; j < D; j++) { xx = fma(xv[v * D + j], xv[v * D + j], xx); }
      codes[n] = i32(bi[v]);
      distances[n] = max(0.0, xx + best[v]);
    }
  }
}

// attention: causal grouped-query attention softmax(q·kᵀ/√D)·v. q [B, T, H·D]; k, v [B, S, Hkv·D] (rows below
// kvLength used) → out [B, T, H·D]. Query t (position queryOffset + t) attends keys j ≤ its position, j < kvLength
// and, with a sliding window W (window > 0), j > position − W. Query head h reads kv head ⌊h / (H / Hkv)⌋.
// One workgroup of 64 threads per (b, t, h): keys in chunks of 64, one score per thread, an online softmax (running
// max and sum, rescaled per chunk) and the output held as D ≤ 256 values over the threads (4 each). Includes
// reduce.wgsl.

const WG: u32 = 64u;
struct Params { B: u32, T: u32, S: u32, H: u32, Hkv: u32, D: u32, kvLength: u32, queryOffset: u32, window: u32,
                scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> qs: array<f32, 256>;
var<workgroup> ps: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let row = wid.x + wid.y * nwg.x; // (b·T + t)·H + h
  let valid = row < p.B * p.T * p.H;
  let h = row % p.H;
  let bt = row / p.H;
  let b = bt / p.T;
  let pos = p.queryOffset + bt % p.T;
  let kvh = h / (p.H / p.Hkv);
  let qo = row * p.D;
  var jEnd = 0u;
  var jStart = 0u;
  if (valid) {
    jEnd = min(pos + 1u, p.kvLength);
    if (p.window > 0u && pos + 1u > p.window) { jStart = pos + 1u - p.window; }
  }
  for (var d = li; d < p.D; d += WG) { qs[d] = q[qo + d]; }
  workgroupBarrier();
  var m = -0x1.fffffep+127f;
  var l = 0.0;
  var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  for (var j0 = jStart; j0 < jEnd; j0 += WG) {
    let j = j0 + li;
    var s = -0x1.fffffep+127f;
    if (j < jEnd) {
      let ko = ((b * p.S + j) * p.Hkv + kvh) * p.D;
      var dot = 0.0;
      for (var d = 0u; d < p.D; d++) { dot = fma(qs[d], k[ko + d], dot); }
      s = dot * p.scale;
    }
    let mNew = max(m, reduce_max(s, li));
    var e = 0.0;
    if (j < jEnd) { e = exp(s - mNew); }
    ps[li] = e;
    let alpha = exp(m - mNew);
    l = l * alpha + reduce_sum(e, li); // reduce_sum's barriers also publish ps
    let cnt = min(WG, jEnd - j0);
    for (var r = 0u; r < 4u; r++) {
      let d = li + WG * r;
      if (d < p.D) {
        var a = acc[r] * alpha;
        for (var jj = 0u; jj < cnt; jj++) {
          a = fma(ps[jj], v[((b * p.S + j0 + jj) * p.Hkv + kvh) * p.D + d], a);
        }
        acc[r] = a;
      }
    }
    m = mNew;
    workgroupBarrier();
  }
  if (valid) {
    for (var r = 0u; r < 4u; r++) {
      let d = li + WG * r;
      if (d < p.D) { out[qo + d] = acc[r] / l; }
    }
  }
}

// attention_backward: gradients of attention (same masks as attention.wgsl) given dout [B, T, H·D].
// With P = softmax(S), S = q·kᵀ·scale:  dP = dout·vᵀ,  dS = P ∘ (dP − rowsum(P ∘ dP)),
//   dq = scale·dS·k,  dk = scale·dSᵀ·q,  dv = Pᵀ·dout   (summed over the query heads sharing a kv head).
// `rows`: one workgroup of 64 per (b, t, h) recomputes its scores' max and sum, writes P and dS for every key
// j < S (0 where masked) into the scratch buffers prob and dscore [B, H, T, S], and writes dq.
// `keys`: one workgroup per (b, j, kv head) sums dk and dv over its query heads and queries, reading P and dS.
// Includes reduce.wgsl.

const WG: u32 = 64u;
struct Params { B: u32, T: u32, S: u32, H: u32, Hkv: u32, D: u32, kvLength: u32, queryOffset: u32, window: u32,
                scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> prob: array<f32>;
@group(0) @binding(6) var<storage, read_write> dscore: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;
@group(0) @binding(8) var<storage, read> probIn: array<f32>;
@group(0) @binding(9) var<storage, read> dscoreIn: array<f32>;
@group(0) @binding(10) var<storage, read_write> dk: array<f32>;
@group(0) @binding(11) var<storage, read_write> dv: array<f32>;

var<workgroup> qs: array<f32, 256>;
var<workgroup> ds: array<f32, 256>;

fn score(b: u32, j: u32, kvh: u32) -> f32 {
  let ko = ((b * p.S + j) * p.Hkv + kvh) * p.D;
  var dot = 0.0;
  for (var d = 0u; d < p.D; d++) { dot = fma(qs[d], k[ko + d], dot); }
  return dot * p.scale;
}

@compute @workgroup_size(WG)
fn rows(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let row = wid.x + wid.y * nwg.x; // (b·T + t)·H + h
  let valid = row < p.B * p.T * p.H;
  let h = row % p.H;
  let bt = row / p.H;
  let b = bt / p.T;
  let t = bt % p.T;
  let pos = p.queryOffset + t;
  let kvh = h / (p.H / p.Hkv);
  let qo = row * p.D;
  var jEnd = 0u;
  var jStart = 0u;
  if (valid) {
    jEnd = min(pos + 1u, p.kvLength);
    if (p.window > 0u && pos + 1u > p.window) { jStart = pos + 1u - p.window; }
  }
  for (var d = li; d < p.D; d += WG) {
    qs[d] = q[qo + d];
    ds[d] = dout[qo + d];
  }
  workgroupBarrier();
  var mx = -0x1.fffffep+127f;
  for (var j = jStart + li; j < jEnd; j += WG) { mx = max(mx, score(b, j, kvh)); }
  mx = reduce_max(mx, li);
  var l = 0.0;
  for (var j = jStart + li; j < jEnd; j += WG) { l += exp(score(b, j, kvh) - mx); }
  l = reduce_sum(l, li);
  let po = ((b * p.H + h) * p.T + t) * p.S; // this row of prob and dscore
  var delta = 0.0;
  if (valid) {
    for (var j = li; j < p.S; j += WG) {
      var pj = 0.0;
      var dpj = 0.0;
      if (j >= jStart && j < jEnd) {
        pj = exp(score(b, j, kvh) - mx) / l;
        let vo = ((b * p.S + j) * p.Hkv + kvh) * p.D;
        for (var d = 0u; d < p.D; d++) { dpj = fma(ds[d], v[vo + d], dpj); }
      }
      prob[po + j] = pj;
      dscore[po + j] = dpj;
      delta += pj * dpj;
    }
  }
  delta = reduce_sum(delta, li);
  if (valid) {
    for (var j = li; j < p.S; j += WG) { dscore[po + j] = prob[po + j] * (dscore[po + j] - delta); }
  }
  storageBarrier();
  workgroupBarrier();
  if (valid) {
    for (var d = li; d < p.D; d += WG) {
      var g = 0.0;
      for (var j = jStart; j < jEnd; j++) { g = fma(dscore[po + j], k[((b * p.S + j) * p.Hkv + kvh) * p.D + d], g); }
      dq[qo + d] = g * p.scale;
    }
  }
}

@compute @workgroup_size(WG)
fn keys(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let row = wid.x + wid.y * nwg.x; // (b·S + j)·Hkv + kvh
  if (row >= p.B * p.S * p.Hkv) { return; }
  let kvh = row % p.Hkv;
  let bj = row / p.Hkv;
  let b = bj / p.S;
  let j = bj % p.S;
  let group = p.H / p.Hkv;
  for (var d = li; d < p.D; d += WG) {
    var gk = 0.0;
    var gv = 0.0;
    for (var h = kvh * group; h < (kvh + 1u) * group; h++) {
      for (var t = 0u; t < p.T; t++) {
        let po = ((b * p.H + h) * p.T + t) * p.S + j;
        let qo = ((b * p.T + t) * p.H + h) * p.D + d;
        gk = fma(dscoreIn[po], q[qo], gk);
        gv = fma(probIn[po], dout[qo], gv);
      }
    }
    dk[row * p.D + d] = gk * p.scale;
    dv[row * p.D + d] = gv;
  }
}

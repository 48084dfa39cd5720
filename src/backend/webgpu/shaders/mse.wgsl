// mse: loss = Σ (pred − expected)² / n and grad = 2·(pred − expected) / n. `partial`: one thread per element writes
// grad, each workgroup its sum of squares into partials; `total`: one workgroup sums the partials → loss [1]
// (includes reduce.wgsl).

const WG: u32 = 256u;
struct Params { n: u32, groups: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> expected: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
@group(0) @binding(5) var<storage, read> partialsIn: array<f32>;
@group(0) @binding(6) var<storage, read_write> loss: array<f32>;

@compute @workgroup_size(WG)
fn partial(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) li: u32) {
  let g = wid.x + wid.y * nwg.x;
  let i = g * WG + li;
  var e = 0.0;
  if (i < p.n) {
    e = pred[i] - expected[i];
    grad[i] = 2.0 * e / f32(p.n);
  }
  let s = reduce_sum(e * e, li);
  if (li == 0u && g < p.groups) { partials[g] = s; }
}

@compute @workgroup_size(WG)
fn total(@builtin(local_invocation_index) li: u32) {
  var s = 0.0;
  for (var g = li; g < p.groups; g += WG) { s += partialsIn[g]; }
  let t = reduce_sum(s, li);
  if (li == 0u) { loss[0] = t / f32(p.n); }
}

// kmeans_update: per-cluster sums [K, d] and member counts [K] of x [N, d] grouped by codes [N].
// `accumulate`: one thread per vector adds it into its cluster's sums (a float add by compare-and-swap on the
// bits, WGSL having no float atomics; the order of the adds varies between runs, so the last bits of a sum may
// too) and counts members with an integer atomic; the backend zeroes both first. `finish`: counts as f32.

struct Params { N: u32, d: u32, K: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> codes: array<i32>;
@group(0) @binding(3) var<storage, read_write> sums: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read> countsIn: array<u32>;
@group(0) @binding(6) var<storage, read_write> countsOut: array<f32>;

fn add_f32(i: u32, v: f32) {
  var old = atomicLoad(&sums[i]);
  loop {
    let r = atomicCompareExchangeWeak(&sums[i], old, bitcast<u32>(bitcast<f32>(old) + v));
    if (r.exchanged) { break; }
    old = r.old_value;
  }
}

@compute @workgroup_size(256)
fn accumulate(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let n = gid.x + gid.y * nwg.x * 256u;
  if (n >= p.N) { return; }
  let k = u32(codes[n]);
  atomicAdd(&counts[k], 1u);
  for (var j = 0u; j < p.d; j++) { add_f32(k * p.d + j, x[n * p.d + j]); }
}

@compute @workgroup_size(256)
fn finish(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = gid.x + gid.y * nwg.x * 256u;
  if (k < p.K) { countsOut[k] = f32(countsIn[k]); }
}

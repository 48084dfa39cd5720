// kmeans_update: per-cluster sums [K, d] and member counts [K] of x [N, d] grouped by codes [N].
// `max_abs` (from fixed_sum.wgsl, included), then `accumulate`: one thread per vector adds it into its cluster's
// fixed-point sums and counts it with an integer atomic, so the result is the same in every run whatever the
// order of the threads; `finish`: sums as f32, counts as f32. The backend zeroes acc, counts and maxBits first.

struct Params { N: u32, d: u32, K: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> codes: array<i32>;
@group(0) @binding(3) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> maxBits: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> sums: array<f32>;
@group(0) @binding(7) var<storage, read_write> countsOut: array<f32>;

fn fixed_input(i: u32) -> f32 { return x[i]; }
fn fixed_count() -> u32 { return p.N * p.d; }
fn fixed_bound() -> u32 { return p.N; }

@compute @workgroup_size(256)
fn accumulate(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let n = gid.x + gid.y * nwg.x * 256u;
  if (n >= p.N) { return; }
  let k = u32(codes[n]);
  atomicAdd(&counts[k], 1u);
  let step = fixed_step();
  for (var j = 0u; j < p.d; j++) { fixed_add(k * p.d + j, x[n * p.d + j], step); }
}

@compute @workgroup_size(256)
fn finish(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * 256u;
  if (t >= p.K * p.d) { return; }
  sums[t] = fixed_value(t, fixed_step());
  if (t % p.d == 0u) { countsOut[t / p.d] = f32(atomicLoad(&counts[t / p.d])); }
}

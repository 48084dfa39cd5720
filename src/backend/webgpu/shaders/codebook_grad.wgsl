// codebook_grad: the adjoint of codebook_decode. Each dW[j·d + k, i] (output rows < out) is added into element k
// of centroid codes[i, j] of codebook part ⌊j / partCols⌋. dW [out, in], codes i32 [in, nb] → grad [m, K, d].
// `max_abs` (from fixed_sum.wgsl, included), then `accumulate`: one thread per element of dW adds it into its
// centroid's fixed-point sum, so the gradient is the same in every run whatever the order of the threads;
// `finish`: the sums as f32. The backend zeroes acc and maxBits first.

struct Params { out: u32, inp: u32, d: u32, nb: u32, K: u32, partCols: u32, slots: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dW: array<f32>;
@group(0) @binding(2) var<storage, read> codes: array<i32>;
@group(0) @binding(3) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> maxBits: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> grad: array<f32>;

fn fixed_input(i: u32) -> f32 { return dW[i]; }
fn fixed_count() -> u32 { return p.out * p.inp; }
fn fixed_bound() -> u32 { return p.out * p.inp; }

@compute @workgroup_size(256)
fn accumulate(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * 256u;
  if (e >= p.out * p.inp) { return; }
  let o = e / p.inp;
  let i = e % p.inp;
  let j = o / p.d;
  fixed_add(((j / p.partCols) * p.K + u32(codes[i * p.nb + j])) * p.d + o % p.d, dW[e], fixed_step());
}

@compute @workgroup_size(256)
fn finish(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * 256u;
  if (t < p.slots) { grad[t] = fixed_value(t, fixed_step()); }
}

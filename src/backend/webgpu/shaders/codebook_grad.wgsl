// codebook_grad: the adjoint of codebook_decode. Each dW[j·d + k, i] (output rows < out) is added into element k
// of centroid codes[i, j] of codebook part ⌊j / partCols⌋. dW [out, in], codes i32 [in, nb] → grad [m, K, d].
// One thread per element of dW; the adds are compare-and-swap float adds on the bits (no float atomics in WGSL),
// so their order, and the last bits of a sum, may vary between runs. The backend zeroes grad first.

struct Params { out: u32, inp: u32, d: u32, nb: u32, K: u32, partCols: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dW: array<f32>;
@group(0) @binding(2) var<storage, read> codes: array<i32>;
@group(0) @binding(3) var<storage, read_write> grad: array<atomic<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * 256u;
  if (e >= p.out * p.inp) { return; }
  let o = e / p.inp;
  let i = e % p.inp;
  let j = o / p.d;
  let g = ((j / p.partCols) * p.K + u32(codes[i * p.nb + j])) * p.d + o % p.d;
  let v = dW[e];
  var old = atomicLoad(&grad[g]);
  loop {
    let r = atomicCompareExchangeWeak(&grad[g], old, bitcast<u32>(bitcast<f32>(old) + v));
    if (r.exchanged) { break; }
    old = r.old_value;
  }
}

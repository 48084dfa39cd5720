// add: out[i] = a[i] + b[(i / div) % modulus], elementwise with b broadcast (one thread per element; the grid may be
// 2-D, ≤ 65535 per dim): b has a's shape (div 1, modulus n), one term per column (div 1, modulus C, a bias) or one
// per row (div C, modulus rows).

struct Params { n: u32, div: u32, modulus: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.n) { out[i] = a[i] + b[(i / p.div) % p.modulus]; }
}

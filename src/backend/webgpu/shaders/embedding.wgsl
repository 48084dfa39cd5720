// embedding: out[r, c] = table[ids[r], c]. ids i32 [R] (checked in range on the host), table [V, C].

struct Params { n: u32, C: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * 256u;
  if (e < p.n) { out[e] = table[u32(ids[e / p.C]) * p.C + e % p.C]; }
}

// silu_mul_backward: for y = silu(g)·u with silu(g) = g·σ(g):
//   dg = dy·u·σ(g)·(1 + g·(1 − σ(g)))        du = dy·g·σ(g)

struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dgate: array<f32>;
@group(0) @binding(5) var<storage, read_write> dup: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.n) {
    let g = gate[i];
    let s = 1.0 / (1.0 + exp(-g));
    dgate[i] = dy[i] * up[i] * s * (1.0 + g * (1.0 - s));
    dup[i] = dy[i] * g * s;
  }
}

// matmul: dense operands for matmul_tiles.wgsl. C [M, N] = A [M, K] · B [K, N] (+ bias [N]); with TRANS_A, a is
// stored [K, M]; with TRANS_B, b is stored [N, K] (linear: x·Wᵀ). Without a bias the backend binds a dummy.

struct Params { M: u32, K: u32, N: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

fn load_a(m: u32, k: u32) -> f32 {
  if (TRANS_A) { return a[k * p.M + m]; }
  return a[m * p.K + k];
}
fn load_b(k: u32, n: u32) -> f32 {
  if (TRANS_B) { return b[n * p.K + k]; }
  return b[k * p.N + n];
}
fn bias_at(n: u32) -> f32 { return bias[n]; }
fn store(m: u32, n: u32, v: f32) { c[m * p.N + n] = v; }

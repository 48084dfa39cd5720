// adamw: one torch.optim.AdamW step in place (amsgrad off); the step's scalars come from the host:
//   p ← p·decay;  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²;  p ← p − stepSize·m / (√v / bc2 + ε)
// with 1 − β from the host (in float64), decay = 1 − lr·λ, stepSize = lr / (1 − β1^t), bc2 = √(1 − β2^t).

struct Params { n: u32, beta1: f32, oneMinusBeta1: f32, beta2: f32, oneMinusBeta2: f32, eps: f32, decay: f32,
                stepSize: f32, bc2: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.n) {
    let g = grad[i];
    let mi = p.beta1 * m[i] + p.oneMinusBeta1 * g;
    let vi = p.beta2 * v[i] + p.oneMinusBeta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * p.decay - p.stepSize * mi / (sqrt(vi) / p.bc2 + p.eps);
  }
}

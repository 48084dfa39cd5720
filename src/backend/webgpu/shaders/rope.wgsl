// rope: rotary position embedding, HF rotate-half layout. For each head vector x = [x1 | x2] (halves of D/2):
// out = [x1·cos − x2·sin | x2·cos + x1·sin] at table row startPos + t; sign = −1 rotates backwards (rope's
// backward). x [B, T, heads·D]; cos, sin [P, D/2]. One thread per (row, head, i < D/2).

struct Params { rows: u32, T: u32, heads: u32, half: u32, startPos: u32, sign: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> cosT: array<f32>;
@group(0) @binding(3) var<storage, read> sinT: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * 256u;
  if (e >= p.rows * p.heads * p.half) { return; }
  let i = e % p.half;
  let rh = e / p.half; // row·heads + head
  let t = (rh / p.heads) % p.T;
  let o = rh * 2u * p.half;
  let to = (p.startPos + t) * p.half + i;
  let c = cosT[to];
  let s = p.sign * sinT[to];
  let x1 = x[o + i];
  let x2 = x[o + p.half + i];
  out[o + i] = x1 * c - x2 * s;
  out[o + p.half + i] = x2 * c + x1 * s;
}

// fixed_sum: scatter-adds whose result does not depend on the order of the adds (so a run gives the same bits
// every time, as on the CPU). Each value v is added as the 64-bit fixed-point integer ⌊v·2^e⌋ into a pair of u32
// atomics (low word, then the high word plus the low word's carry): integer addition is associative, so any
// order of the threads gives the same sum. e is the most fractional bits that keep every possible sum below 2^60:
// from the largest |v| (the `max_abs` pass, an atomicMax on the bits of non-negative floats, which order like
// the floats) and a bound on how many values one sum can take. Inputs must be finite.
// The including shader defines fixed_input(i) and fixed_count() (the values to add, for max_abs),
// fixed_bound() (the most values one sum can take), and the bindings `acc: array<atomic<u32>>` (two words per
// sum, zeroed) and `maxBits: array<atomic<u32>>` (one word, zeroed).

var<workgroup> fixedMax: array<f32, 256>;

@compute @workgroup_size(256)
fn max_abs(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + li;
  var m = 0.0;
  if (i < fixed_count()) { m = abs(fixed_input(i)); }
  fixedMax[li] = m;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) { fixedMax[li] = max(fixedMax[li], fixedMax[li + s]); }
    workgroupBarrier();
  }
  if (li == 0u) { atomicMax(&maxBits[0], bitcast<u32>(fixedMax[0])); }
}

/** 2^(e − 32): a value times this is its sum's high word (integer part) and fraction (the low word). */
fn fixed_step() -> f32 {
  let m = bitcast<f32>(atomicLoad(&maxBits[0]));
  if (m == 0.0) { return 1.0; }
  let e = 60 - i32(ceil(log2(m))) - i32(ceil(log2(f32(max(fixed_bound(), 1u)))));
  return exp2(f32(clamp(e - 32, -126, 126)));
}

fn fixed_add(slot: u32, v: f32, step: f32) {
  let s = v * step;
  var hi = floor(s);
  var frac = (s - hi) * 4294967296.0;
  if (frac >= 4294967296.0) { // s just below an integer: s − ⌊s⌋ rounded up to 1
    hi += 1.0;
    frac = 0.0;
  }
  let lo = u32(frac);
  let old = atomicAdd(&acc[2u * slot], lo);
  let carry = select(0u, 1u, old > 0xffffffffu - lo);
  atomicAdd(&acc[2u * slot + 1u], bitcast<u32>(i32(hi)) + carry);
}

fn fixed_value(slot: u32, step: f32) -> f32 {
  let hi = bitcast<i32>(atomicLoad(&acc[2u * slot + 1u]));
  let lo = atomicLoad(&acc[2u * slot]);
  return (f32(hi) + f32(lo) * (1.0 / 4294967296.0)) / step;
}

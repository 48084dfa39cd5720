// row_lse: a row's maximum and log-sum-exp, for the shaders that normalize rows of `x` [rows, C] one workgroup
// per row (softmax, log_softmax, cross_entropy). Needs the including shader's `x` and `const WG`, and reduce.wgsl;
// call from uniform control (`valid` masks the loads of a workgroup past the last row).

fn row_max_lse(o: u32, C: u32, valid: bool, li: u32) -> vec2f {
  var mx = -0x1.fffffep+127f;
  if (valid) { for (var c = li; c < C; c += WG) { mx = max(mx, x[o + c]); } }
  mx = reduce_max(mx, li);
  var s = 0.0;
  if (valid) { for (var c = li; c < C; c += WG) { s += exp(x[o + c] - mx); } }
  return vec2f(mx, mx + log(reduce_sum(s, li)));
}

// embedding: out[i, :] = table[ids[i], :] (table [V, C]). Returns the first out-of-range id's index, or −1.

export function embedding_forward(
  out: Float32Array,
  ids: Int32Array,
  table: Float32Array,
  V: number,
  C: number,
): number {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id < 0 || id >= V) return i;
    out.set(table.subarray(id * C, (id + 1) * C), i * C);
  }
  return -1;
}

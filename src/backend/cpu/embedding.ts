// embedding: out[i, :] = table[ids[i], :] (table [V, C]; ids checked in [0, V) by the backend).

export function embedding_forward(out: Float32Array, ids: Int32Array, table: Float32Array, C: number): void {
  for (let i = 0; i < ids.length; i++) out.set(table.subarray(ids[i] * C, (ids[i] + 1) * C), i * C);
}

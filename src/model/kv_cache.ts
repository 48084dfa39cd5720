// Key/value cache for incremental decoding: per layer, K and V tensors [B, capacity, Hkv·D] on the backend.

import type { Backend, Tensor } from "../backend/backend.js";
import type { ModelConfig } from "../io/hf_config.js";

export class KVCache {
  readonly keys: Tensor[] = [];
  readonly values: Tensor[] = [];
  readonly batch: number;
  readonly capacity: number;
  /** Positions already written (the next token's position). */
  length = 0;
  private readonly backend: Backend;

  constructor(backend: Backend, config: ModelConfig, batch: number, capacity: number) {
    this.backend = backend;
    this.batch = batch;
    this.capacity = capacity;
    const shape = [batch, capacity, config.numKeyValueHeads * config.headDim];
    for (let l = 0; l < config.numHiddenLayers; l++) {
      this.keys.push(backend.zeros(shape));
      this.values.push(backend.zeros(shape));
    }
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values]) this.backend.dispose(t);
  }
}

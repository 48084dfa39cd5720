// The WebAssembly kernels of the CPU backend's fast tier (one file per op beside this one).
export { kmeansAssign } from "./kmeans_assign";
export { matmul } from "./matmul";

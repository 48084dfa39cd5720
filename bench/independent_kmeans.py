# An independent k-means compression of llama-en-26m, outside this code base, to cross-check stage 1 (see
# docs/results.md, "Against the reference points"). NumPy Lloyd k-means per matrix (K random distinct
# initial points, 20 iterations, f32 distances, empty clusters re-seeded at random points, fp16 centroids) on the
# issue's layout (Wᵀ rows cut into d consecutive output channels, zero-padded), K exact for the target bpw
# (POW2=1: rounded down to a power of two). Writes a dense f32 checkpoint to evaluate with `cluscomp eval`:
#   SEED=0 python3 bench/independent_kmeans.py 6 3.0 out/np-d6 [out|in]
#   node dist/cli/main.js eval --model out/np-d6 --data ../shared/data/wikitext2/wiki.test.raw --seqlen 512 --max-windows 8
# Needs python3 and numpy (not part of the toolkit or CI).
import json, struct, sys, os, numpy as np, shutil
src = os.environ.get("MODEL", os.path.join(os.path.dirname(__file__), "../../shared/models/llama-en-26m"))
d = int(sys.argv[1]); bpw = float(sys.argv[2]); out_dir = sys.argv[3]; axis = sys.argv[4] if len(sys.argv) > 4 else "out"
pow2 = os.environ.get("POW2") == "1"
def read_st(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8+n]); base = 8+n; out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]; raw = b[base+s:base+e]
        if v["dtype"] == "BF16":
            a = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif v["dtype"] == "F32": a = np.frombuffer(raw, np.float32)
        else: raise Exception(v["dtype"])
        out[k] = a.reshape(v["shape"]).copy()
    return out
tensors = {}
for f in sorted(os.listdir(src)):
    if f.endswith(".safetensors"): tensors.update(read_st(os.path.join(src, f)))
rng = np.random.default_rng(int(os.environ.get("SEED","0")))
def kmeans(X, K, iters=20):
    N = X.shape[0]
    C = X[rng.choice(N, K, replace=False)].copy()
    for it in range(iters + 1):
        cn = (C*C).sum(1)
        a = np.empty(N, np.int64); obj = 0.0
        for s in range(0, N, 8192):
            x = X[s:s+8192]; dd = cn[None, :] - 2 * x @ C.T
            a[s:s+8192] = dd.argmin(1)
        obj = ((X - C[a])**2).sum()
        if it == iters: break
        cnt = np.bincount(a, minlength=K); S = np.zeros_like(C); np.add.at(S, a, X)
        nz = cnt > 0; C[nz] = S[nz] / cnt[nz, None]
        for k in np.where(~nz)[0]: C[k] = X[rng.integers(N)]
    return C.astype(np.float16).astype(np.float32), a, obj
tot_e = 0; tot_n = 0
for name in sorted(tensors):
    if not any(p in name for p in ["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"]): continue
    W = tensors[name]; o, i = W.shape
    K = int((bpw - 16/d) * i * o / (16*d))
    if pow2: K = 1 << (K.bit_length() - 1)
    if axis == "out":
        Wt = W.T; po = -(-o // d) * d; P = np.zeros((i, po), np.float32); P[:, :o] = Wt
        X = P.reshape(-1, d)
        C, a, obj = kmeans(X, K); R = C[a].reshape(i, po)[:, :o].T
    else:
        pi = -(-i // d) * d; P = np.zeros((o, pi), np.float32); P[:, :i] = W
        X = P.reshape(-1, d); C, a, obj = kmeans(X, K); R = C[a].reshape(o, pi)[:, :i]
    e = ((W-R)**2).sum(); n = (W**2).sum(); tot_e += e; tot_n += n
    print(name, W.shape, "K", K, "rel", round(e/n, 4), flush=True)
    tensors[name] = R.astype(np.float32)
print("total rel", tot_e/tot_n)
os.makedirs(out_dir, exist_ok=True)
hdr = {}; off = 0; blobs = []
for k in sorted(tensors):
    a = np.ascontiguousarray(tensors[k], np.float32); bb = a.tobytes()
    hdr[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off+len(bb)]}; off += len(bb); blobs.append(bb)
hj = json.dumps(hdr).encode(); hj += b" " * ((8 - len(hj) % 8) % 8)
with open(os.path.join(out_dir, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(hj))); f.write(hj)
    for bb in blobs: f.write(bb)
for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"]:
    shutil.copy(os.path.join(src, f), out_dir)

#!/usr/bin/env python3
"""The same training recipe as bench/train.bench.ts in PyTorch, for the side-by-side benchmark.

A small Llama of our own (embedding, RMSNorm, rotate-half RoPE, GQA causal attention, SiLU MLP, untied or tied
head), loaded from a Hugging Face safetensors directory — dense, or a cluscomp checkpoint whose codebook linears
are rebuilt as W = codebook[codes] on every forward so that autograd trains the centroids — trained with
next-token cross-entropy and AdamW, batch 1, for one trainable set. Debian's python3-torch (CPU).

  python3 bench/torch_train.py --model DIR --set all|lora|codebooks|norms [--seqlen 512] [--steps 6] [--warmup 2]

Prints one JSON line: {engine, set, seqlen, tokensPerSecond (median over steps), peakRssMiB, ...}.
"""
import argparse
import json
import math
import os
import resource
import struct
import time

import numpy as np
import torch

DT = {"F32": np.float32, "F16": np.float16, "U16": np.uint16, "U8": np.uint8, "I32": np.int32, "BF16": np.uint16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, en = e["data_offsets"]
        a = np.frombuffer(data[b:en], dtype=DT[e["dtype"]]).reshape(e["shape"])
        if e["dtype"] == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a
    return out


def read_dir(d):
    tensors = {}
    index = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else [
        f for f in sorted(os.listdir(d)) if f.endswith(".safetensors")]
    for f in files:
        tensors.update(read_safetensors(os.path.join(d, f)))
    return tensors


class Codebook(torch.nn.Module):
    """W [out, in] = decode(codes [in, nb], codebook [m, K, d]) (m = 1), rebuilt on every forward."""

    def __init__(self, codes, codebook, out):
        super().__init__()
        self.register_buffer("codes", torch.from_numpy(codes.astype(np.int64)))
        self.codebook = codebook  # a shared nn.Parameter [1, K, d]
        self.out = out

    def weight(self):
        inp, nb = self.codes.shape
        v = self.codebook[0][self.codes]  # [in, nb, d]
        return v.reshape(inp, -1)[:, : self.out].t()


class Linear(torch.nn.Module):
    def __init__(self, w=None, b=None, cb=None, lora_rank=0):
        super().__init__()
        self.cb = cb
        self.w = torch.nn.Parameter(torch.from_numpy(w.astype(np.float32).copy())) if w is not None else None
        self.b = torch.nn.Parameter(torch.from_numpy(b.astype(np.float32).copy())) if b is not None else None
        out, inp = (self.w.shape if self.w is not None else (cb.out, cb.codes.shape[0]))
        self.lora = None
        if lora_rank:
            a = torch.empty(lora_rank, inp)
            torch.nn.init.kaiming_uniform_(a, a=math.sqrt(5))
            self.A = torch.nn.Parameter(a)
            self.B = torch.nn.Parameter(torch.zeros(out, lora_rank))
            self.scale = 2.0  # alpha = 2r
            self.lora = True

    def forward(self, x):
        w = self.w if self.w is not None else self.cb.weight()
        y = torch.nn.functional.linear(x, w, self.b)
        if self.lora:
            y = y + self.scale * ((x @ self.A.t()) @ self.B.t())
        return y


def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin):  # x [T, H, D]
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


class Llama(torch.nn.Module):
    def __init__(self, d, lora_rank=0):
        super().__init__()
        cfg = json.load(open(os.path.join(d, "config.json")))
        t = read_dir(d)
        q = cfg.get("quantization_config", {}).get("modules", {}) if cfg.get("quantization_config") else {}
        self.cfg = cfg
        C, H = cfg["hidden_size"], cfg["num_attention_heads"]
        self.H, self.Hkv = H, cfg.get("num_key_value_heads", H)
        self.D = cfg.get("head_dim", C // H)
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        theta = (cfg.get("rope_parameters") or {}).get("rope_theta", cfg.get("rope_theta", 10000.0))
        self.inv = 1.0 / theta ** (torch.arange(0, self.D, 2, dtype=torch.float32) / self.D)
        P = torch.nn.Parameter
        self.embed = P(torch.from_numpy(t["model.embed_tokens.weight"].astype(np.float32).copy()))
        books = {}

        def lin(name):
            m = q.get(name)
            b = t.get(f"{name}.bias")
            if m:
                if m["codebook"] not in books:
                    books[m["codebook"]] = P(torch.from_numpy(t[m["codebook"]].astype(np.float32).copy()))
                out = {"q_proj": H * self.D, "k_proj": self.Hkv * self.D, "v_proj": self.Hkv * self.D,
                       "o_proj": C, "gate_proj": cfg["intermediate_size"], "up_proj": cfg["intermediate_size"],
                       "down_proj": C}[name.split(".")[-1]]
                return Linear(b=b, cb=Codebook(t[f"{name}.codes"], books[m["codebook"]], out), lora_rank=lora_rank)
            return Linear(t[f"{name}.weight"], b, lora_rank=lora_rank)

        self.layers = torch.nn.ModuleList()
        for l in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{l}"
            layer = torch.nn.Module()
            layer.n1 = P(torch.from_numpy(t[f"{p}.input_layernorm.weight"].astype(np.float32).copy()))
            layer.n2 = P(torch.from_numpy(t[f"{p}.post_attention_layernorm.weight"].astype(np.float32).copy()))
            for k in ["q_proj", "k_proj", "v_proj", "o_proj"]:
                setattr(layer, k, lin(f"{p}.self_attn.{k}"))
            for k in ["gate_proj", "up_proj", "down_proj"]:
                setattr(layer, k, lin(f"{p}.mlp.{k}"))
            self.layers.append(layer)
        self.books = torch.nn.ParameterList(list(books.values()))
        self.norm = P(torch.from_numpy(t["model.norm.weight"].astype(np.float32).copy()))
        self.head = None if cfg.get("tie_word_embeddings") else P(torch.from_numpy(t["lm_head.weight"].astype(np.float32).copy()))

    def forward(self, ids):  # ids [T]
        T = ids.shape[0]
        freqs = torch.arange(T, dtype=torch.float32)[:, None] * self.inv[None]
        cos, sin = freqs.cos()[:, None], freqs.sin()[:, None]
        h = self.embed[ids]
        mask = torch.full((T, T), float("-inf")).triu(1)
        g = self.H // self.Hkv
        for layer in self.layers:
            n = rms(h, layer.n1, self.eps)
            qh = rope(layer.q_proj(n).view(T, self.H, self.D), cos, sin)
            kh = rope(layer.k_proj(n).view(T, self.Hkv, self.D), cos, sin)
            vh = layer.v_proj(n).view(T, self.Hkv, self.D)
            kh = kh.repeat_interleave(g, 1)
            vh = vh.repeat_interleave(g, 1)
            s = torch.einsum("thd,shd->hts", qh, kh) / math.sqrt(self.D) + mask
            a = torch.einsum("hts,shd->thd", s.softmax(-1), vh).reshape(T, self.H * self.D)
            h = h + layer.o_proj(a)
            n = rms(h, layer.n2, self.eps)
            h = h + layer.down_proj(torch.nn.functional.silu(layer.gate_proj(n)) * layer.up_proj(n))
        n = rms(h, self.norm, self.eps)
        return n @ (self.embed if self.head is None else self.head).t()


def trainable(model, which):
    names = []
    for name, p in model.named_parameters():
        keep = (which == "all" or (which == "lora" and (name.endswith(".A") or name.endswith(".B")))
                or (which == "codebooks" and (name.startswith("books.") or name.endswith(".codebook"))) or (which == "norms" and (
                    name.endswith(".n1") or name.endswith(".n2") or name == "norm")))
        p.requires_grad_(keep)
        if keep:
            names.append(p)
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="../shared/models/llama-en-26m")
    ap.add_argument("--data", default="../shared/data/tinystories/excerpt.txt")
    ap.add_argument("--ids", help="token ids (a .json list) instead of tokenizing (no tokenizer in this script)")
    ap.add_argument("--set", default="all")
    ap.add_argument("--seqlen", type=int, default=512)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Llama(a.model, lora_rank=8 if a.set == "lora" else 0)
    params = trainable(model, a.set)
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    ids = torch.tensor(json.load(open(a.ids)), dtype=torch.long)
    T = a.seqlen
    times = []
    for s in range(a.warmup + a.steps):
        w = ids[s * T:(s + 1) * T]
        t0 = time.perf_counter()
        logits = model(w)
        loss = torch.nn.functional.cross_entropy(logits[:-1], w[1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if s >= a.warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({"engine": "pytorch " + torch.__version__, "set": a.set, "seqlen": T,
                      "trainableParams": sum(p.numel() for p in params), "stepSeconds": med,
                      "tokensPerSecond": T / med, "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "threads": a.threads}))


if __name__ == "__main__":
    main()

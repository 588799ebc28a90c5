"""`ccpipe train-smoke`: does a release train? A GPT of a few hundred thousand parameters, a few hundred steps.

The point is the hand-off, not the model: the release's `.bin` shards go through `pipeline.train.loader` exactly
as a trainer would read them (seeded shuffling of shards and windows on the training split, the validation
shard in order), and the loss must fall. A 50,257-row GPT-2 embedding alone would be 3.2 M parameters at
width 64, so the model predicts a compact vocabulary: the 2,047 most frequent tokens of the training split
plus one "other" class (on the bench release they cover 77% of tokens). Width 64, 2 layers, 4 heads,
tied embeddings, context 64: 235 k parameters, ~45 ms a step on one busy CPU core.

Needs PyTorch: `pip install 'ccpipe[train]'`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pipeline.finalize.shards import read_tokens
from pipeline.release.manifest import bin_files
from pipeline.train.loader import BinLoader, TorchBinLoader


def compact_vocab(files: list[Path], size: int, cover: list[Path] = ()) -> tuple[np.ndarray, float]:
    """A lookup table token id -> class: the `size - 1` most frequent tokens of `files`, then "other".
    The table has a row for every id in `files` and `cover` (32-bit shards: up to the largest id seen).

    Returns the table and the share of the files' tokens it keeps distinct.
    """
    n_ids = max([1 << 16] + [int(read_tokens(p).max(initial=0)) + 1 for p in [*files, *cover]])
    counts = np.zeros(n_ids, dtype=np.int64)
    for path in files:
        counts += np.bincount(read_tokens(path), minlength=n_ids)
    top = np.argsort(-counts, kind="stable")[:size - 1]  # ties: lower id first, so the table is deterministic
    table = np.full(n_ids, size - 1, dtype=np.int64)
    table[top] = np.arange(len(top))
    return table, float(counts[top].sum() / max(1, counts.sum()))


def tiny_gpt(vocab: int, context: int, width: int = 64, layers: int = 2, heads: int = 4):
    """nanoGPT's shape, shrunk: pre-norm blocks of causal self-attention and a 4x MLP, tied embeddings."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
            self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = (t.view(B, T, heads, C // heads).transpose(1, 2) for t in self.qkv(self.ln_1(x)).split(C, dim=2))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
            x = x + self.proj(y)
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(vocab, width), nn.Embedding(context, width)
            self.blocks = nn.ModuleList(Block() for _ in range(layers))
            self.ln_f = nn.LayerNorm(width)
            for module in self.modules():  # GPT-2's init: with N(0, 1) tied embeddings the first loss is ~40
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(module.weight, std=0.02)
                if isinstance(module, nn.Linear):
                    nn.init.zeros_(module.bias)

        def forward(self, idx, targets):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
            for block in self.blocks:
                x = block(x)
            logits = self.ln_f(x) @ self.wte.weight.T
            return F.cross_entropy(logits.view(-1, vocab), targets.reshape(-1))

    return GPT()


def train_smoke(release_dir: str | Path, steps: int = 200, device: str = "auto", *, batch_size: int = 16,
                context: int = 64, vocab: int = 2048, lr: float = 3e-3, seed: int = 0, eval_batches: int = 8,
                threads: int = 1, language: str | None = None, log=print) -> dict:
    """Train on the release's training shards for `steps`; returns the losses. Validation loss is measured on
    the first `eval_batches` batches of the validation shard, before training and every 10% of the steps."""
    import torch  # optional (the `train` extra) and ~1 s to import: only for train-smoke

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    train_files = bin_files(release_dir, "train", language)
    val_files = bin_files(release_dir, "validation", language)
    table, coverage = compact_vocab(train_files, vocab, cover=val_files)
    lookup = torch.from_numpy(table).to(device)
    train = TorchBinLoader(BinLoader(train_files, batch_size, context, shuffle_shards=True, shuffle_positions=True,
                                     seed=seed), device)
    val_loader = BinLoader(val_files, batch_size, context)
    n_eval = min(eval_batches, val_loader.batches_per_epoch())
    model = tiny_gpt(vocab, context).to(device)
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    log(f"model: {params:,} parameters; vocabulary: the {vocab - 1:,} most frequent training tokens + other "
        f"({coverage:.1%} of training tokens); device {device}; {steps} steps of {batch_size}x{context} tokens")

    @torch.no_grad()
    def val_loss() -> float:
        model.eval()
        val = TorchBinLoader(val_loader, device)
        val_loader.reset()
        total = sum(model(lookup[x], lookup[y]).item() for x, y in (val.next_batch() for _ in range(n_eval)))
        model.train()
        return total / n_eval

    every = max(1, steps // 10)
    history = {"device": device, "parameters": params, "coverage": coverage, "train_loss": [],
               "val_loss": {0: val_loss()}}
    log(f"step {0:>5} | val loss {history['val_loss'][0]:.3f}")
    started = time.monotonic()
    for step in range(1, steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, step / 10)  # 10 warm-up steps, then constant
        x, y = train.next_batch()
        loss = model(lookup[x], lookup[y])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history["train_loss"].append(loss.item())
        if step % every == 0 or step == steps:
            history["val_loss"][step] = val_loss()
            log(f"step {step:>5} | train loss {loss.item():.3f} | val loss {history['val_loss'][step]:.3f} | "
                f"{1000 * (time.monotonic() - started) / step:.1f} ms/step")
    return history

"""Batches for a trainer from llm.c `.bin` shards, the way llm.c's `DistributedDataLoader` reads them.

Rank r of W reads B×T tokens (+1 for the targets) at `r·B·T` in a shard, and every step all ranks move on by
`W·B·T`: each step reads one window of W·B·T tokens, rank r its r-th slice, so ranks never overlap and
together cover the shard. A shard has `(n_tokens - 1) // (W·B·T)` windows; the tail after the last one
(fewer than W·B·T tokens) is skipped, as llm.c does. After the last shard the loader starts the next epoch.
One departure: llm.c tests the end of a shard with each rank's own position, so rank r > 0 can leave a shard
one window before rank 0 and the ranks fall out of step; here all ranks test the window's start.

    loader = BinLoader("releases/bench-1.0.0/bin/en_train_*.bin", B=16, T=64, rank=0, world_size=1)
    x, y = loader.next_batch()        # int64 arrays of shape (B, T); y is x shifted by one token
    state = loader.state_dict()       # the same on every rank; load_state_dict(state) resumes exactly

Shuffling (seeded, the same on every rank so they stay disjoint): `shuffle_shards` permutes the shard order
of each epoch, `shuffle_positions` the order of the windows within each shard. Headers are validated as
llm.c does (magic 20240520, version 1, size = 1024 + 2·tokens; or the 32-bit format, 20240801, version 7,
1024 + 4·tokens: stages/tokens/binformat.py): a bad file is refused by name.

`TorchBinLoader` wraps it for PyTorch (`pip install 'ccpipe[train]'`): the same batches as tensors on a device.
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np

from pipeline.finalize.shards import ShardError, read_header, read_tokens

STATE_VERSION = 1


class BinLoader:
    """Batches of B×T inputs and targets for rank `rank` of `world_size` from `.bin` shards (numpy only)."""

    def __init__(self, files: str | Path | list, B: int, T: int, rank: int = 0, world_size: int = 1, *,
                 shuffle_shards: bool = False, shuffle_positions: bool = False, seed: int = 0):
        if isinstance(files, (str, Path)):
            pattern = str(files)
            files = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
        self.files = [str(f) for f in files]
        if not self.files:
            raise ShardError("no .bin shards given (an empty list or a pattern that matches nothing)")
        if B < 1 or T < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need B >= 1, T >= 1 and 0 <= rank < world_size; got B={B}, T={T}, "
                             f"rank={rank}, world_size={world_size}")
        self.B, self.T, self.rank, self.world_size = B, T, rank, world_size
        self.shuffle_shards, self.shuffle_positions, self.seed = shuffle_shards, shuffle_positions, seed
        self.window = world_size * B * T
        self.sizes = []
        for path in self.files:
            n = read_header(path)  # ShardError naming the file: bad magic, version or size
            if n < self.window + 1:
                raise ShardError(f"{path}: {n} tokens, fewer than world_size·B·T + 1 = {self.window + 1}")
            self.sizes.append(n)
        self.reset()

    def reset(self) -> None:
        """Back to the first batch of epoch 0."""
        self.epoch, self.shard, self.step = 0, 0, 0
        self._cache: dict = {}

    def _shard_order(self) -> np.ndarray:
        if "order" not in self._cache or self._cache["order"][0] != self.epoch:
            order = np.arange(len(self.files))
            if self.shuffle_shards:
                order = np.random.default_rng([self.seed, self.epoch]).permutation(order)
            self._cache["order"] = (self.epoch, order)
        return self._cache["order"][1]

    def _windows(self, shard: int) -> np.ndarray:
        key = (self.epoch, shard)
        if self._cache.get("windows", (None,))[0] != key:
            windows = np.arange((self.sizes[shard] - 1) // self.window)
            if self.shuffle_positions:
                windows = np.random.default_rng([self.seed, self.epoch, shard, 1]).permutation(windows)
            self._cache["windows"] = (key, windows, read_tokens(self.files[shard]))
        return self._cache["windows"]

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """Inputs x and targets y, int64 arrays of shape (B, T)."""
        shard = int(self._shard_order()[self.shard])
        _, windows, tokens = self._windows(shard)
        pos = int(windows[self.step]) * self.window + self.rank * self.B * self.T
        buf = np.asarray(tokens[pos:pos + self.B * self.T + 1], dtype=np.int64)
        self.step += 1
        if self.step == len(windows):
            self.step, self.shard = 0, self.shard + 1
            if self.shard == len(self.files):
                self.shard, self.epoch = 0, self.epoch + 1
        return buf[:-1].reshape(self.B, self.T), buf[1:].reshape(self.B, self.T)

    def __iter__(self):
        while True:
            yield self.next_batch()

    def batches_per_epoch(self) -> int:
        return sum((n - 1) // self.window for n in self.sizes)

    def state_dict(self) -> dict:
        """Where the next batch comes from, and what must match to resume (the same on every rank)."""
        return {"version": STATE_VERSION, "epoch": self.epoch, "shard": self.shard, "step": self.step,
                "files": [Path(f).name for f in self.files], "B": self.B, "T": self.T, "world_size": self.world_size,
                "shuffle_shards": self.shuffle_shards, "shuffle_positions": self.shuffle_positions, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        mine = self.state_dict()
        for key in ("version", "files", "B", "T", "world_size", "shuffle_shards", "shuffle_positions", "seed"):
            if state.get(key) != mine[key]:
                raise ValueError(f"loader state: {key} is {state.get(key)!r}, this loader has {mine[key]!r}")
        self.reset()
        self.epoch, self.shard, self.step = state["epoch"], state["shard"], state["step"]


class TorchBinLoader:
    """`BinLoader`'s batches as int64 tensors on `device` (pinned and copied asynchronously on CUDA)."""

    def __init__(self, loader: BinLoader, device: str = "cpu"):
        import torch

        self.loader, self.device = loader, torch.device(device)
        self._torch = torch

    def next_batch(self):
        x, y = self.loader.next_batch()
        x, y = self._torch.from_numpy(x), self._torch.from_numpy(y)
        if self.device.type == "cuda":
            return x.pin_memory().to(self.device, non_blocking=True), y.pin_memory().to(self.device, non_blocking=True)
        return x.to(self.device), y.to(self.device)

    def __iter__(self):
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict:
        return self.loader.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.loader.load_state_dict(state)

"""pipeline.train.loader: llm.c's interleave across ranks, shuffling, exact resumption, header checks."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from pipeline.finalize.shards import ShardError, write_shard
from pipeline.train.loader import BinLoader, TorchBinLoader


def shards(tmp_path, sizes: list[int]) -> list[str]:
    """Shards whose tokens are their global positions, so every token read says where it came from."""
    paths, start = [], 0
    for i, n in enumerate(sizes):
        path = tmp_path / f"t_train_{i:06d}.bin"
        write_shard(path, np.arange(start, start + n, dtype=np.uint16))
        paths.append(str(path))
        start += n
    return paths


def llmc_positions(sizes: list[int], B: int, T: int, rank: int, world: int, steps: int) -> list[tuple[int, int]]:
    """(shard, position) of each batch, transcribed from llm.c's train_gpt2.py DistributedDataLoader, except
    that the end-of-shard test uses the window's start (rank 0's position) as pipeline.train.loader does: llm.c tests
    each rank's own position, so a rank r > 0 can leave a shard one window before rank 0."""
    out, shard, pos = [], 0, rank * B * T
    for _ in range(steps):
        out.append((shard, pos))
        pos += B * T * world
        if pos - rank * B * T + (B * T * world + 1) > sizes[shard]:
            shard, pos = (shard + 1) % len(sizes), rank * B * T
    return out


def test_batches_follow_llmc_interleave(tmp_path):
    sizes, B, T, W = [1000, 777], 3, 8, 2
    files = shards(tmp_path, sizes)
    starts = np.cumsum([0] + sizes)
    for rank in range(W):
        loader = BinLoader(files, B, T, rank=rank, world_size=W)
        for shard, pos in llmc_positions(sizes, B, T, rank, W, steps=60):  # > 2 epochs
            x, y = loader.next_batch()
            expected = np.arange(pos, pos + B * T + 1) + starts[shard]
            assert x.dtype == np.int64 and x.shape == (B, T)
            assert (x.ravel() == expected[:-1]).all() and (y.ravel() == expected[1:]).all()


@pytest.mark.parametrize("shuffle", [False, True])
def test_two_ranks_read_each_token_of_a_shard_exactly_once(tmp_path, shuffle):
    B, T, W, windows = 4, 16, 2, 5
    n = W * B * T * windows + 1  # llm.c reads a window only when its +1 target token is in the shard
    files = shards(tmp_path, [n])
    seen = []
    for rank in range(W):
        loader = BinLoader(files, B, T, rank=rank, world_size=W, shuffle_positions=shuffle, seed=7)
        assert loader.batches_per_epoch() == windows
        seen += [loader.next_batch()[0].ravel() for _ in range(windows)]
        assert loader.state_dict()["epoch"] == 1
    assert sorted(np.concatenate(seen).tolist()) == list(range(n - 1))


def test_shuffling_is_seeded_and_the_same_on_every_rank(tmp_path):
    files = shards(tmp_path, [600, 600, 600, 600])

    def first(seed, rank=0, k=20):
        loader = BinLoader(files, 2, 8, rank=rank, world_size=2, shuffle_shards=True, shuffle_positions=True, seed=seed)
        return [loader.next_batch()[0] for _ in range(k)]

    a, b = first(1), first(1)
    assert all((p == q).all() for p, q in zip(a, b))
    assert any((p != q).any() for p, q in zip(a, first(2)))
    # rank 1 reads the slice right after rank 0's in the same window
    assert all((r1[0, 0] - r0[0, 0]) == 2 * 8 for r0, r1 in zip(a, first(1, rank=1)))
    unshuffled = BinLoader(files, 2, 8, world_size=2)
    assert any((p != unshuffled.next_batch()[0]).any() for p in a)


def test_resume_gives_the_batches_of_an_uninterrupted_loader(tmp_path):
    files = shards(tmp_path, [300, 500, 260])
    options = {"B": 2, "T": 8, "rank": 1, "world_size": 2, "shuffle_shards": True, "shuffle_positions": True,
               "seed": 3}
    straight = BinLoader(files, **options)
    expected = [straight.next_batch() for _ in range(80)]  # 80 steps cross shards and epochs
    for k in (0, 7, 18, 41):
        first = BinLoader(files, **options)
        for _ in range(k):
            first.next_batch()
        state = json.loads(json.dumps(first.state_dict()))  # what a checkpoint would store
        resumed = BinLoader(files, **options)
        resumed.load_state_dict(state)
        for x_exp, y_exp in expected[k:]:
            x, y = resumed.next_batch()
            assert (x == x_exp).all() and (y == y_exp).all()


def test_state_of_another_loader_is_refused(tmp_path):
    files = shards(tmp_path, [300])
    state = BinLoader(files, 2, 8).state_dict()
    with pytest.raises(ValueError, match="T is 8, this loader has 4"):
        BinLoader(files, 2, 4).load_state_dict(state)


def test_truncated_shard_is_refused_with_its_name(tmp_path):
    files = shards(tmp_path, [300, 300])
    with open(files[1], "r+b") as f:
        f.truncate(1024 + 2 * 300 - 7)
    with pytest.raises(ShardError, match="does not match its 300 tokens") as err:
        BinLoader(files, 2, 8)
    assert files[1] in str(err.value) and files[0] not in str(err.value)


@pytest.mark.parametrize("damage, message", [
    (lambda raw: b"\x01\x02\x03\x04" + raw[4:], "bad magic"),
    (lambda raw: raw[:4] + b"\x02\x00\x00\x00" + raw[8:], "unsupported version 2"),
])
def test_bad_header_is_refused_with_its_name(tmp_path, damage, message):
    (path,) = shards(tmp_path, [300])
    with open(path, "rb") as f:
        raw = f.read()
    with open(path, "wb") as f:
        f.write(damage(raw))
    with pytest.raises(ShardError, match=message) as err:
        BinLoader([path], 2, 8)
    assert path in str(err.value)


def test_shard_too_small_for_the_batch_is_refused(tmp_path):
    (path,) = shards(tmp_path, [32])
    with pytest.raises(ShardError, match="fewer than world_size·B·T \\+ 1 = 33"):
        BinLoader(path, 2, 8, rank=0, world_size=2)
    with pytest.raises(ShardError, match="matches nothing"):
        BinLoader(str(tmp_path / "none_*.bin"), 2, 8)


def test_numpy_loader_does_not_import_torch():
    code = "import sys, pipeline.train.loader; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120, check=False).returncode == 0


def test_torch_wrapper_gives_the_same_batches(tmp_path):
    torch = pytest.importorskip("torch")
    files = shards(tmp_path, [500, 400])
    plain = BinLoader(files, 2, 8, shuffle_positions=True, seed=5)
    wrapped = TorchBinLoader(BinLoader(files, 2, 8, shuffle_positions=True, seed=5), "cpu")
    for _ in range(30):
        (x, y), (tx, ty) = plain.next_batch(), wrapped.next_batch()
        assert tx.dtype == torch.int64 and (tx.numpy() == x).all() and (ty.numpy() == y).all()
    assert wrapped.state_dict() == plain.state_dict()

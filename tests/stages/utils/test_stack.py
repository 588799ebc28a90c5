from __future__ import annotations

import resource

import pytest

from stages.utils.stack import run_deep


def _leaf() -> int:
    return 1


def _down(depth: int) -> int:
    if depth:
        return _down(depth - 1)
    return sum(_leaf() for _ in range(300))  # a call in and out, 300 times, at this depth


def _every_depth() -> int:
    """Minor page faults while calls go in and out at each depth from 1 to 600: CPython 3.11/3.12 map and unmap
    a 16 KiB chunk of frames each time at the depths where one chunk ends (~9 faults a depth there)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for depth in range(1, 600):
        _down(depth)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_run_deep_calls_through():
    assert run_deep(lambda a, b=0: a + b, 2, b=3) == 5
    with pytest.raises(KeyError):
        run_deep({}.__getitem__, "missing")


def test_frames_below_run_deep_stay_in_one_chunk():
    run_deep(_every_depth)  # warm: the code objects' first calls
    assert run_deep(_every_depth) < 300

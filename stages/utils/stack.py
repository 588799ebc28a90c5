"""Deep Python call chains without CPython 3.11's data-stack churn.

CPython 3.11 and 3.12 keep a thread's frames in 16 KiB chunks and give a chunk back to the OS (munmap) as soon
as the last frame in it returns, so code whose depth goes back and forth across a chunk's end maps, faults in and
unmaps a chunk each time (python/cpython gh-142183, fixed in 3.13.x and 3.14 by keeping one chunk). A reuse run
on bench crossed 11,500 times (main process 5,100: importing ~900 modules; worker 6,400), ~8.5 us each here.
`run_deep(fn)` calls `fn` from a frame whose (unused) evaluation stack is 512 KiB: CPython puts that frame in a
chunk of its own, 1 MiB, and every frame below it in the space left, which lasts as long as `fn` runs.
"""

from __future__ import annotations


def run_deep(fn, *args, **kwargs):
    return fn(*args, **kwargs)


# the frame's size is computed from co_stacksize when the code object is made: 65,536 slots of 8 bytes
run_deep.__code__ = run_deep.__code__.replace(co_stacksize=65536)

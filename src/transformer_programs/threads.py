"""How many torch threads a command computes on: one unless asked, because idle torch threads
spin-wait and a second thread beside any other busy process makes the work several times slower."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch


def thread_count(threads: int | None = None) -> int:
    """The torch threads a command runs on: `threads`, else OMP_NUM_THREADS where it is set, else 1.
    One, because idle torch threads spin-wait: beside any other busy process a 2-thread epoch ran
    5x slower, while alone a second thread saved 0-26% on the tasks' default models
    (benchmarks/threads_under_load.py) and 37% on the length protocol's at n = 40
    (benchmarks/cell_threads.py)."""
    if threads is None:
        threads = int(os.environ["OMP_NUM_THREADS"]) if os.environ.get("OMP_NUM_THREADS", "").isdigit() else 1
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    return threads


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op threads set to `threads` inside the block, restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

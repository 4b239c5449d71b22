"""The one timing rule of the benchmarks: the median wall time of repeated calls."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(function: Callable[[], object], repeats: int, warmup: int = 0) -> float:
    """Median seconds of `repeats` calls of `function()`, after `warmup` untimed calls."""
    for _ in range(warmup):
        function()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def alternating_medians(first: Callable[[], object], second: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median milliseconds of each of two calls, timed in turn after one untimed call of each."""
    first(), second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for function, seconds in zip((first, second), times):
            started = time.perf_counter()
            function()
            seconds.append(time.perf_counter() - started)
    return tuple(1000 * statistics.median(seconds) for seconds in times)

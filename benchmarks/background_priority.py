"""What `nice` buys a user beside a background protocol: the wall time of a fixed piece of work in
the foreground, alone, beside one niced busy process per core started in sessions of their own
(as `setsid nohup ...` starts them), and beside the same with their sessions' scheduling groups
lowered too (`/proc/PID/autogroup`, which `scripts/protocol.sh` does when it leads its session).

On Linux with autogroups, nice orders processes only within their session's group, so the
niced processes of another session take an equal share of the CPU. Run it on an otherwise idle
machine (stop background jobs first). Prints one table.
Usage: python benchmarks/background_priority.py [--repeats 3] [--work 30000000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BUSY = "while True: pass"
AUTOGROUP = Path("/proc/self/autogroup")


def work_seconds(work: int) -> float:
    """Wall seconds of `work` loop steps in this process."""
    start = time.perf_counter()
    total = 0
    for step in range(work):
        total += step
    return time.perf_counter() - start


def beside_background(work: int, processes: int, lower_groups: bool) -> float:
    """Wall seconds of the work beside `processes` niced busy loops, each in its own session, their
    scheduling groups lowered to 19 when `lower_groups`."""
    background = [subprocess.Popen([sys.executable, "-c", BUSY], start_new_session=True,
                                   preexec_fn=lambda: os.nice(19)) for _ in range(processes)]
    try:
        if lower_groups:
            for process in background:
                Path(f"/proc/{process.pid}/autogroup").write_text("19")
        time.sleep(0.5)  # let the busy loops start
        return work_seconds(work)
    finally:
        for process in background:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=int, default=30_000_000, help="loop steps timed in the foreground")
    args = parser.parse_args()
    if not AUTOGROUP.exists():
        print("error: this kernel has no autogroups (/proc/self/autogroup); nice already orders every process",
              file=sys.stderr)
        sys.exit(2)
    cores = os.cpu_count() or 1
    print(f"autogroups enabled: {Path('/proc/sys/kernel/sched_autogroup_enabled').read_text().strip()}; "
          f"cores: {cores}; {args.repeats} repeats, medians")
    print("| foreground work | wall s | slowdown |")
    print("|---|---|---|")
    cases = (("alone", 0, False), (f"beside {cores} niced busy processes, own sessions", cores, False),
             ("the same, their sessions' groups lowered to 19", cores, True))
    alone = None
    for name, processes, lower in cases:
        seconds = statistics.median(beside_background(args.work, processes, lower) for _ in range(args.repeats))
        alone = alone or seconds
        print(f"| {name} | {seconds:.2f} | {seconds / alone:.2f}x |", flush=True)


if __name__ == "__main__":
    main()

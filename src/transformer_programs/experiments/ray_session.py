"""Ray for one experiment: joined or started here, and shut down on every way out (done, an error,
Ctrl-C, SIGTERM or SIGHUP); agents that an earlier, killed experiment left behind are stopped
before a new local Ray starts."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")  # what a SIGKILLed driver's raylet leaves running


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _state_and_parent(pid: int) -> tuple[str, int | None]:
    """A process's state letter (Z: a zombie) and its parent's PID, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, ValueError, IndexError):
        return "?", None


def orphaned_agents() -> list[int]:
    """This user's Ray agent processes whose raylet is gone (Linux; [] elsewhere)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*") if Path("/proc/self").exists() else []:
        pid = int(entry.name)
        try:
            if entry.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        state, parent = _state_and_parent(pid)
        if state != "Z" and parent is not None and _command(pid).startswith(AGENTS) and "raylet" not in _command(parent):
            found.append(pid)
    return found


def stop_orphaned_agents() -> int:
    """Kill every orphaned Ray agent of this user (they outlive SIGTERM); how many there were."""
    pids = orphaned_agents()
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def _exit_on(signum: int, frame) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[bool]:
    """Ray joined at `address` or started on this machine (True: started here), shut down when the
    block is left in any way. Ctrl-C raises KeyboardInterrupt in the block (Tune's own handler,
    which would end the experiment quietly as if it had finished, is turned off), and SIGTERM or
    SIGHUP leave it as SystemExit, so that `finally` runs."""
    import ray

    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    if ray.is_initialized():
        yield False
        return
    previous = {number: signal.signal(number, _exit_on) for number in (signal.SIGTERM, signal.SIGHUP)}
    try:
        quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
        if address:
            ray.init(address=address, **quiet)
        else:
            stop_orphaned_agents()
            ray.init(num_cpus=os.cpu_count(), **quiet)
        yield True
    finally:
        ray.shutdown()
        for number, handler in previous.items():
            signal.signal(number, handler)

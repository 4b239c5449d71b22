"""Ray for one experiment: joined or started here, and shut down on every way out (done, an error,
Ctrl-C, SIGTERM or SIGHUP); agents that an earlier, killed experiment left behind are stopped
before a new local Ray starts."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")  # what a SIGKILLed driver's raylet leaves running
CONNECT_TIMEOUT_S = 10  # for the head's port to answer; Ray itself retries an unreachable head for minutes


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


def check_address(address: str | None) -> None:
    """ValueError, in one line, where `address` names a HOST:PORT (or ray://HOST:PORT) whose port does
    not answer: there Ray would log connection warnings for minutes instead of failing. Other forms
    (None, "auto", "local") are Ray's to resolve."""
    if not address or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--address {address!r} is not HOST:PORT; pass the address `ray start --head` printed, "
                         "such as 192.168.1.2:6379")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise ValueError(f"no Ray cluster answers at {address} ({err.strerror or type(err).__name__}); start its "
                         "head with `ray start --head` or pass the address it printed") from None


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

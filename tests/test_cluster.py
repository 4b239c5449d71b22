"""A sweep against a real Ray cluster (a head node and a worker node, started with `ray start` as
on several machines, here both on this one), whose worker node is killed mid-sweep: the sweep
finishes, no trial is lost or counted twice, and the ledger stays valid."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from transformer_programs.experiments.ray_session import stop_orphaned_agents

RAY = str(Path(sys.executable).with_name("ray"))
# Ray's clusters authenticate with a token (`ray start --head` writes ~/.ray/auth_token): every node
# and the driver run with RAY_AUTH_MODE=token and read that file, as on several machines.
CLUSTER_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
TINY = ["--epochs", "40", "--n-examples", "300", "--vocab-size", "3", "--train-lengths", "1-4", "--quiet"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_with(text: str) -> list[int]:
    """PIDs whose command line contains `text`."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def trials_under(parents: list[int]) -> list[int]:
    """PIDs of the Tune trials (Ray workers titled ray::ImplicitFunc) that these raylets started."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent in parents and b"ImplicitFunc" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.fixture
def cluster():
    """(address, the worker node's raylet port) of a two-node cluster on this machine; torn down after."""
    if not Path("/proc/self").exists():
        pytest.skip("needs /proc to find the worker node's processes")
    temp = tempfile.mkdtemp(prefix="rc", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port, worker_port = free_port(), free_port()
    env = CLUSTER_ENV
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    subprocess.run([RAY, "start", "--head", "--port", str(port), "--temp-dir", temp, "--include-dashboard", "false",
                    *common], env=env, check=True, capture_output=True, timeout=120)
    try:
        subprocess.run([RAY, "start", "--address", f"127.0.0.1:{port}", "--node-manager-port", str(worker_port),
                        *common], env=env, check=True, capture_output=True, timeout=120)
        yield f"127.0.0.1:{port}", worker_port
    finally:
        kill_all(processes_with(temp))
        time.sleep(2)
        stop_orphaned_agents()  # the killed raylets' agents
        shutil.rmtree(temp, ignore_errors=True)


def test_a_sweep_survives_the_loss_of_a_worker_node(cluster, tmp_path):
    address, worker_port = cluster
    out, ledger = tmp_path / "sweep", tmp_path / "results"
    command = [sys.executable, "-m", "transformer_programs.cli", "sweep", "hist", "--layers", "1", "--heads", "2",
               "--mlps", "2", "--seeds", "4", *TINY, "--address", address, "--out", str(out), "--ledger", str(ledger)]
    sweep = subprocess.Popen(command, env=CLUSTER_ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    raylet = []
    while time.monotonic() < deadline and sweep.poll() is None:
        raylet = processes_with(f"--node_manager_port={worker_port}")
        if trials_under(raylet):  # the worker node is training a trial
            break
        time.sleep(0.1)
    assert sweep.poll() is None, sweep.communicate()
    assert raylet, "the worker node's raylet was not found"
    assert trials_under(raylet), "no trial ever ran on the worker node"
    kill_all(raylet)  # the worker node is lost, with the trial it was running
    stdout, stderr = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, (stdout, stderr)
    assert "4 of 4 trials finished, 0 failed" in stdout
    with (out / "trials.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["seed"] for row in rows) == ["0", "1", "2", "3"] and {row["status"] for row in rows} == {"ok"}
    records = [json.loads(path.read_text()) for path in sorted(ledger.glob("**/*.json"))]
    assert sorted(record["seed"] for record in records) == [0, 1, 2, 3]  # none lost, none twice
    assert all(record["epochs"] == 40 for record in records)
    retried = [path.parent.name for path in (out / ".tune").glob("trials/*/error.txt")]
    assert retried, "no trial was running on the lost node"  # the fault hit a trial, which ran again
    for name in retried:  # resumed from its checkpoint: each epoch once
        with (out / "trials" / name / "metrics.csv").open(newline="") as handle:
            assert [int(row["epoch"]) for row in csv.DictReader(handle)] == list(range(1, 41))

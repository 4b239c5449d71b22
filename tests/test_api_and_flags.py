"""Small gaps a hostile tour found in the Python API and the flags: each refused in one line, or
read as a user means it; and a `train --seeds` stopped by Ctrl-C or SIGTERM says so and leaves no
Ray process behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import one_line_error

import transformer_programs as tp
from transformer_programs.cli import main
from transformer_programs.experiments.ray_session import orphaned_agents

SMALL = dict(task="hist", epochs=1, n_examples=120, vocab_size=3, train_lengths=(1, 4))


@pytest.fixture
def run_dir(trained, copy_run) -> Path:
    return copy_run(trained(**SMALL))


@pytest.mark.parametrize(
    "argv, message",
    [(["train", "hist", "--seeds", "0-1000000"], "name 1000001 seeds; at most 100 train at once"),
     (["train", "hist", "--seeds", "4294967296"], "outside 0..4294967295"),
     (["train", "hist", "--seed", "-1"], "--seed must be between 0 and 4294967295, got -1"),
     (["train", "hist", "--epochs", "x"], "argument --epochs: invalid int value: 'x'"),
     (["nosuch"], "invalid choice: 'nosuch'")],
)
def test_bad_flags_are_one_line(argv, message, tmp_path, capsys):
    try:
        status = main([*argv, "--out", str(tmp_path / "out")] if argv[0] == "train" else argv)
    except SystemExit as stopped:  # argparse's own errors leave through SystemExit
        status = stopped.code
    assert status == 2 and message in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_run_level_flags_are_checked(run_dir, tmp_path, capsys):
    assert main(["errors", str(run_dir), "--limit", "-1"]) == 2 and "--limit must be 0 or more" in one_line_error(capsys)
    assert main(["prune", str(run_dir), "--out", str(tmp_path / "p"), "--seed", "-1"]) == 2
    assert "--seed must be between 0" in one_line_error(capsys) and not (tmp_path / "p").exists()
    assert main(["predict", str(run_dir / "config.json"), "<s>", "1"]) == 2
    assert f"is a file; name the run directory that holds it ({run_dir})" in one_line_error(capsys)


def test_the_api_refuses_unknown_parts_values_and_splits_and_reads_a_string_of_tokens(run_dir):
    run = tp.load(run_dir)
    assert run.predict("<s> 1 2 2") == run.predict(["<s>", "1", "2", "2"])
    assert len(run.trace("<s> 1 2").tokens) == 3
    with pytest.raises(ValueError, match="unknown part 'nosuch'; the program's parts are"):
        run.ablate("nosuch")
    part = run.circuit().ranked()[0].name
    with pytest.raises(ValueError, match=f"value -1 is outside {part}'s values 0.."):
        run.ablate(part, -1)
    with pytest.raises(ValueError, match="unknown split 'bogus'; choose one of train, val, test"):
        run.circuit("bogus")
    with pytest.raises(ValueError, match="is a file; name the run directory"):
        tp.load(run_dir / "config.json")


def _ray_processes(session_marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if session_marker in command:
            found.append(command[:80])
    return found


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_seeds_run_says_interrupted_and_shuts_ray_down(tmp_path, stop):
    out = tmp_path / "seeds"
    ray_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_TMPDIR": ray_dir}
    command = [sys.executable, "-m", "transformer_programs.cli", "train", "hist", "--seeds", "0-1", "--epochs", "200",
               "--out", str(out), "--quiet"]
    agents_before = set(orphaned_agents())
    # Ctrl-C as at a terminal: a shell starts background jobs with SIGINT ignored, and a child
    # would inherit that from a test run in the background; the command runs as in the foreground.
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not list(out.glob("trials/*/metrics.csv")) and time.monotonic() < deadline:
        time.sleep(0.5)  # until a trial has trained an epoch: Ray and Tune are up
    assert process.poll() is None, process.communicate()
    process.send_signal(stop)
    _, err = process.communicate(timeout=120)
    assert process.returncode != 0
    if stop == signal.SIGINT:
        assert "interrupted; run the same command again" in err and "no seed finished" not in err, err
    time.sleep(3)
    assert not _ray_processes(ray_dir), "Ray processes of the stopped run are still running"
    assert set(orphaned_agents()) <= agents_before
    shutil.rmtree(ray_dir, ignore_errors=True)


def test_training_runs_on_one_thread_unless_told_otherwise(tmp_path, capsys, monkeypatch):

    import torch

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    args = ["train", "hist", "--epochs", "1", "--n-examples", "120", "--vocab-size", "3", "--train-lengths", "1-4",
            "--quiet", "--out"]
    threads = {}
    for name, extra, env in (("default", [], None), ("flag", ["--threads", "2"], None), ("env", [], "3")):
        if env:
            monkeypatch.setenv("OMP_NUM_THREADS", env)
        assert main([*args, str(tmp_path / name), *extra]) == 0
        threads[name] = json.loads((tmp_path / name / "results.json").read_text())["threads"]
    assert threads == {"default": 1, "flag": 2, "env": 3}
    assert torch.get_num_threads() == before  # the caller's setting is left as it was
    assert main([*args, str(tmp_path / "zero"), "--threads", "0"]) == 2
    assert "--threads must be at least 1" in one_line_error(capsys) and not (tmp_path / "zero").exists()


def test_programs_are_proved_on_one_thread_unless_told_otherwise(tmp_path, monkeypatch, proof_threads):
    """A proof on torch's default threads ran 7x slower beside one other busy process."""
    import torch

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run = str(tmp_path / "run")
        assert main(["train", "hist", "--epochs", "1", "--n-examples", "120", "--vocab-size", "3",
                     "--train-lengths", "1-4", "--quiet", "--program", "--out", run]) == 0
        assert main(["decompile", run, "--quiet", "--threads", "2"]) == 0
        assert proof_threads == [1, 1, 2, 2]  # each command proves two programs: program.py and program_full.py
        assert torch.get_num_threads() == 2  # the caller's setting is left as it was
    finally:
        torch.set_num_threads(before)


def test_the_version_is_printed_and_recorded_in_every_run(tmp_path, capsys):
    from transformer_programs import __version__

    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0 and capsys.readouterr().out.strip() == f"tprog {__version__}"
    assert __version__ not in ("", "unknown")
    run = tmp_path / "run"
    args = ["train", "hist", "--epochs", "1", "--n-examples", "120", "--vocab-size", "3", "--train-lengths", "1-4",
            "--quiet", "--out", str(run)]
    assert main(args) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["version"] == __version__
    config["version"] = "0.0.1"  # trained by an older version: it still resumes
    (run / "config.json").write_text(json.dumps(config))
    assert main([*args, "--resume"]) == 0


def test_agents_a_killed_driver_left_are_stopped_before_a_new_local_ray():
    from transformer_programs.experiments.ray_session import stop_orphaned_agents

    # An agent whose raylet is gone: its parent is anything but a raylet (here, this test).
    agent = subprocess.Popen(["bash", "-c", "exec -a ray::DashboardAgent sleep 60"])
    time.sleep(0.5)
    assert agent.pid in orphaned_agents()
    assert stop_orphaned_agents() >= 1
    assert agent.wait(timeout=10) == -signal.SIGKILL


def test_output_piped_into_a_reader_that_stops_early_ends_quietly():
    """`tprog tasks | head -1`: once head has its line and closes the pipe, tprog stops with the
    status of a closed pipe and no error message (it printed `tprog: error: [Errno 32]` before)."""
    command = [sys.executable, "-m", "transformer_programs.cli", "tasks"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before the first line is written
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141 and err == ""

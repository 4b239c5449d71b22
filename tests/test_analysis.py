"""Reading and debugging a program: trace, circuit, error groups, the HTML report and the API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import transformer_programs as tp
from test_simplify import D, hand_built, rows
from transformer_programs.analysis.circuit import circuit
from transformer_programs.analysis.errors import error_groups
from transformer_programs.analysis.trace import trace
from transformer_programs.cli import main
from transformer_programs.program.interpret import run_batch
from transformer_programs.program.ir import CategoricalAttention, CategoricalMLP, Layer
from transformer_programs.program.simplify import encode_space
from transformer_programs.tasks import InputSpace

TINY = dict(task="sort", epochs=2, n_examples=39, vocab_size=3, train_lengths=(1, 3), layers=2)
HIST = dict(task="hist", epochs=1, n_examples=120, vocab_size=3, train_lengths=(1, 4))
CHROMIUM = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--enable-logging=stderr", "--v=0"]


def shift_program():
    """One head: each position reads the previous one's token ('<s>' reads itself: no match)."""
    shift = CategoricalAttention("attn_0_0", "positions", "positions", "tokens", [7, 0, 1, 2, 3, 4, 5, 6], False)
    return hand_built([shift], {"attn_0_0": rows(1, 1, 2, 3, 1, 2, 3, 1)}, {"attn_0_0": "token"})


def test_trace_of_a_hand_built_program_is_the_hand_computed_table():
    traced = trace(shift_program(), ["<s>", "a", "b", "c"])
    assert traced.values["attn_0_0"] == ["<s>", "<s>", "a", "b"]
    assert traced.reads == {"attn_0_0": [[0], [0], [1], [2]]}
    assert traced.labels == ["x", "x", "y", "z"]  # '<s>' -> x (row 1), 'a' -> y, 'b' -> z
    assert traced.table() == "\n".join([
        "position        0    1    2  3",
        "tokens          <s>  a    b  c",
        "positions       0    1    2  3",
        "ones            1    1    1  1",
        "attn_0_0        <s>  <s>  a  b",
        "attn_0_0 reads  0    0    1  2",
        "prediction      x    x    y  z",
    ])


def test_circuit_ranks_the_deciding_head_first_and_marks_the_others_dead():
    decides = CategoricalAttention("attn_0_0", "positions", "positions", "tokens", [7, 0, 1, 2, 3, 4, 5, 6], False)
    idle = [CategoricalAttention(f"attn_0_{h}", "tokens", "tokens", "positions", list(range(D)), False) for h in (1, 2)]
    program = hand_built([decides, *idle], {"attn_0_0": rows(1, 1, 2, 3, 1, 2, 3, 1)},
                         {"attn_0_0": "token", "attn_0_1": "position", "attn_0_2": "position"})
    inputs = encode_space(program, InputSpace(("a", "b", "c"), 1, 4, False))
    labels = np.where(inputs != 0, run_batch(program, inputs)[0], 0)  # the program is right everywhere
    graph = circuit(program, inputs, labels)
    assert graph.accuracy == 1.0
    ranked = graph.ranked()
    assert ranked[0].name == "attn_0_0" and ranked[0].drop > 0.3 and not ranked[0].dead
    assert {part.name for part in ranked[1:]} == {"attn_0_1", "attn_0_2"}
    assert all(part.dead and part.drop == 0 for part in ranked[1:])
    assert "[dead]" in graph.text() and graph.svg().startswith("<svg")


def test_error_groups_point_at_a_planted_wrong_branch():
    table = [[value] * D for value in range(D)]  # mlp_0_0 = tokens ('a' -> 2, 'b' -> 3, 'c' -> 4)
    table[4] = [3] * D  # planted: 'c' -> 3, the value of 'b'
    mlp = CategoricalMLP("mlp_0_0", "tokens", "positions", table)
    program = hand_built([mlp], {"mlp_0_0": rows(1, 1, 1, 2, 3, 1, 1, 1)}, {"mlp_0_0": "abstract"})
    program.layers = [Layer([], [], [mlp], [])]
    inputs = encode_space(program, InputSpace(("a", "b", "c"), 1, 4, False))
    truth = {1: 1, 2: 1, 3: 2, 4: 3}  # '<s>' x, 'a' x, 'b' y, 'c' z
    labels = np.vectorize(lambda token: truth.get(token, 0))(inputs)
    groups = error_groups(program, inputs, labels)
    assert len(groups) == 1
    group = groups[0]
    assert group.part == "mlp_0_0" and group.branch.startswith("tokens=c") and group.branch.endswith("-> 3")
    assert group.predicted == "y" and group.expected == "z"
    assert group.count == int(((inputs == 4)).sum())  # every 'c' is wrong, and only they
    assert group.example == ["<s>", "c"] and group.position == 1
    assert group.trace.values["mlp_0_0"] == ["1", "3"]


def test_the_api_works_on_a_briefly_trained_run(trained, copy_run):
    run_dir = copy_run(trained(**TINY))
    run = tp.load(run_dir)
    tokens = ["<s>", "2", "0", "1", "</s>"]
    model = run.loaded.model
    ids = run.loaded.input_vocab.encode([tokens], len(tokens))
    expected = run.loaded.label_vocab.decode(model.predict(ids)[0].tolist())
    assert run.predict(tokens) == expected == run.trace(tokens).labels == run.trace(tokens, simplified=True).labels
    assert run.accuracy("test") == pytest.approx(json.loads((run_dir / "results.json").read_text())["test"]["accuracy"])
    part = run.circuit().ranked()[0].name
    assert run.ablate(part) == pytest.approx(run.accuracy("val") - run.circuit().ranked()[0].drop)
    inputs, labels = run.split("test")
    wrong = (labels != 0) & (run_batch(run.program, inputs)[0] != labels)
    assert sum(group.count for group in run.errors("test")) == int(wrong.sum())


def test_cli_trace_circuit_and_errors(trained, copy_run, capsys):
    run_dir = copy_run(trained(**TINY))
    assert main(["trace", str(run_dir), "<s>", "1", "0", "</s>"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split() == ["tokens", "<s>", "1", "0", "</s>"]
    assert main(["circuit", str(run_dir)]) == 0
    captured = capsys.readouterr()
    assert "lost when ablated" in captured.out and (run_dir / "circuit.svg").is_file()
    assert "parts named as in program_full.py" in captured.err
    assert main(["errors", str(run_dir), "--split", "val"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "mistaken positions on val" in header and "parts named as in program_full.py" in header
    assert main(["errors", str(run_dir), "--split", "val", "--simplified"]) == 0
    assert "parts named as in program.py (the simplified program)" in capsys.readouterr().out.splitlines()[0]


def test_the_report_renders_in_headless_chromium_with_heatmaps_and_no_console_errors(trained, copy_run, tmp_path):
    browser = shutil.which("chromium")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `bash scripts/bootstrap.sh test` installs it")
        pytest.skip("chromium is not installed (`bash scripts/bootstrap.sh test` installs it)")
    run_dir = copy_run(trained(**HIST))  # its simplified program keeps three heads
    assert main(["decompile", str(run_dir)]) == 0
    assert main(["report", str(run_dir)]) == 0
    page = run_dir / "report.html"
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "<script" not in text
    screenshot = tmp_path / "report.png"
    profile = tmp_path / "profile"
    done = subprocess.run([browser, *CHROMIUM, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count('class="heatmap"') >= 2 and 'class="circuit"' in done.stdout
    assert "Program" in done.stdout and "Errors" in done.stdout
    # One program throughout: the listed program.py, its proof, and a circuit of its own parts.
    program = (run_dir / "program.py").read_text(encoding="utf-8")
    assert "program.py, the simplified program, as verified." in done.stdout
    assert "program.py: proved on every one of its 120 inputs" in done.stdout
    assert "on the test split" in done.stdout
    parts = [part.name for part in tp.load(run_dir).circuit(simplified=True).ranked()]
    assert parts and all(name in program for name in parts)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    shot = subprocess.run([browser, *CHROMIUM, f"--user-data-dir={profile}", "--window-size=1280,4000",
                           f"--screenshot={screenshot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and screenshot.stat().st_size > 10_000

"""Briefly trained models, decompiled and run through `tprog` as a user would."""

import json
import subprocess
import sys

import pytest

from transformer_programs.cli import main
from transformer_programs.runs import load_run

# sort and dyck1 over small input spaces (120 and 256 inputs), so every input is verified
TRAINED = {
    "sort": ["--epochs", "3", "--n-examples", "120", "--vocab-size", "3", "--train-lengths", "1-4"],  # 3 layers
    "dyck1": ["--epochs", "2", "--n-examples", "256", "--layers", "2", "--train-lengths", "8"],  # causal
    "induction": ["--epochs", "3", "--n-examples", "1500"],  # causal, categorical heads only; sampled
    "addition_hints": ["--epochs", "2", "--n-examples", "1500", "--layers", "1", "--n-embed-vars", "2"],  # sampled
    "addition_study": ["--epochs", "2", "--n-examples", "1500", "--layers", "1"],  # a label per sum, "<s>" scored
}
SPACE_SIZES = {"sort": 120, "dyck1": 256}


@pytest.mark.parametrize("task", TRAINED)
def test_train_with_program_verifies_with_no_disagreement(task, tmp_path, capsys):
    out = tmp_path / task
    args = ["train", task, "--out", str(out), "--quiet", "--program", *TRAINED[task]]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "0 disagreements" in printed
    report = json.loads((out / "verification.json").read_text())
    assert report["disagreements"] == 0
    if task in SPACE_SIZES:
        assert report["exhaustive"] and report["inputs"] == SPACE_SIZES[task]
    else:
        assert not report["exhaustive"] and report["inputs"] >= 300 + report["random_inputs"]  # val + test + random
    results = json.loads((out / "results.json").read_text())
    assert report["program_accuracy"]["test"] == pytest.approx(results["test"]["accuracy"])
    assert report["lines"] == (out / "program.py").read_text().count("\n")


def test_predict_and_a_fresh_interpreter_agree(tmp_path, capsys):
    out = tmp_path / "sort"
    assert main(["train", "sort", "--out", str(out), "--quiet", *TRAINED["sort"]]) == 0
    written = tmp_path / "elsewhere" / "sorter.py"
    assert main(["decompile", str(out), "--out", str(written)]) == 0
    capsys.readouterr()
    tokens = ["<s>", "2", "0", "1", "</s>"]
    run = load_run(out)
    expected = run.label_vocab.decode(run.model.predict(run.input_vocab.encode([tokens], len(tokens)))[0].tolist())
    fresh = subprocess.run(
        [sys.executable, "-I", "-S", str(written), *tokens], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert fresh.stdout.split() == expected
    (out / "program.py").unlink(missing_ok=True)
    assert main(["predict", str(out), *tokens]) == 0
    assert capsys.readouterr().out.split() == expected


def test_predict_rejects_unknown_tokens_in_one_line(tmp_path, capsys):
    out = tmp_path / "hist"
    flags = ["--epochs", "1", "--n-examples", "120", "--vocab-size", "3", "--train-lengths", "1-4", "--program"]
    assert main(["train", "hist", "--out", str(out), "--quiet", *flags]) == 0
    capsys.readouterr()
    assert main(["predict", str(out), "<s>", "not-a-token"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tprog: error:") and "not-a-token" in err and "\n" not in err


def test_decompile_of_a_missing_run_is_a_one_line_error(tmp_path, capsys):
    assert main(["decompile", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.startswith("tprog: error:")

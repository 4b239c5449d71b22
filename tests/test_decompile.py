"""A run -> program.py and program_full.py: both verified, exhaustively where the task allows,
written only once verified, tied to the model they were verified against."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from transformer_programs.program import decompile as decompile_module
from transformer_programs.program import extract, run_tokens
from transformer_programs.program.decompile import decompile_run, predict_run
from transformer_programs.program.line_count import code_lines
from transformer_programs.runs import load_run
from transformer_programs.runio import RunError

# sort over 3 symbols and 1 to 3 of them: 3 + 9 + 27 = 39 inputs in all
TINY = dict(task="sort", epochs=2, n_examples=39, vocab_size=3, train_lengths=(1, 3), layers=2)


@pytest.fixture
def run_dir(trained, copy_run) -> Path:
    """A copy of a briefly trained tiny sort run."""
    return copy_run(trained(**TINY))


def test_exhaustive_verification_visits_every_input_once(run_dir, monkeypatch):
    seen = []
    real_verify = decompile_module.verify

    def recording_verify(model, program, path, inputs, *shown):
        seen.append([tuple(int(i) for i in row if i != 0) for row in inputs])
        return real_verify(model, program, path, inputs, *shown)

    monkeypatch.setattr(decompile_module, "verify", recording_verify)
    record = decompile_run(run_dir)
    assert record["exhaustive"] is True and record["inputs"] == 39 and record["disagreements"] == 0
    run = load_run(run_dir)
    space = [tuple(run.input_vocab.index[t] for t in tokens) for tokens in run.input_space().sequences()]
    assert len(seen) == 2  # the simplified and the full program
    for inputs in seen:
        assert sorted(inputs) == sorted(space) and len(set(inputs)) == len(inputs) == 39


def test_both_programs_are_written_verified_and_score_as_the_model(run_dir):
    record = decompile_run(run_dir)
    assert record == json.loads((run_dir / "verification.json").read_text(encoding="utf-8"))
    assert set(record["programs"]) == {"program", "program_full"}
    for name, report in record["programs"].items():
        text = (run_dir / f"{name}.py").read_text(encoding="utf-8")
        assert report["path"] == f"{name}.py" and report["lines"] == text.count("\n")
        assert report["code_lines"] == code_lines(text) < report["lines"]  # the docstrings and blank lines are not code
        assert report["disagreements"] == 0 and report["inputs"] == 39
        assert f'MODEL_SHA256 = "{record["model_sha256"]}"' in text
    assert record["lines"] <= record["lines_full"] and record["code_lines"] <= record["code_lines_full"]
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    for split in ("val", "test"):
        assert record["program_accuracy"][split] == pytest.approx(results[split]["accuracy"])


def test_predict_runs_the_ir_and_refuses_a_program_of_another_model(run_dir):
    decompile_run(run_dir)
    run = load_run(run_dir)
    tokens = ["<s>", "2", "0", "1", "</s>"]
    assert predict_run(run_dir, tokens) == run_tokens(extract(run.model, run.input_vocab, run.label_vocab), tokens)
    weights = run.model.state_dict()
    from transformer_programs import runio

    runio.save_tensors(run_dir / "model.safetensors", {k: v + 0.5 if v.is_floating_point() else v
                                                       for k, v in weights.items()})
    with pytest.raises(RunError, match="describes another model"):
        predict_run(run_dir, tokens)
    (run_dir / "verification.json").unlink()  # programs without their record are not taken as verified
    with pytest.raises(RunError, match="program.py has no verification record"):
        predict_run(run_dir, tokens)


@pytest.mark.parametrize("target", ["config.json", "model.safetensors", "notes.py", "folder.py", "notes"])
def test_out_never_overwrites_what_it_did_not_write(run_dir, target):
    path = run_dir / target
    if target == "notes.py":
        path.write_text("print('my own file')\n", encoding="utf-8")
    if target == "notes":  # its full program would be notes_full.py, someone else's file
        (run_dir / "notes_full.py").write_text("print('mine too')\n", encoding="utf-8")
        path = run_dir / "notes.py"
    if target == "folder.py":
        path.mkdir()
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(ValueError, match="choose another --out"):
        decompile_run(run_dir, out=path)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_a_failing_verification_replaces_nothing(run_dir, monkeypatch):
    decompile_run(run_dir)
    good = {name: (run_dir / name).read_bytes() for name in ("program.py", "program_full.py", "verification.json")}
    real_generate = decompile_module.generate

    def wrong_generate(program, digest=None):  # a code generator with a bug: every label the first one
        return real_generate(program, digest) + "\n\n_run = run\nrun = lambda tokens: [LABELS[0]] * len(_run(tokens))\n"

    monkeypatch.setattr(decompile_module, "generate", wrong_generate)
    record = decompile_run(run_dir)
    assert record["disagreements"] > 0
    assert {name: (run_dir / name).read_bytes() for name in good} == good
    failed = json.loads((run_dir / "verification-failed.json").read_text(encoding="utf-8"))
    assert failed["programs"]["program_full"]["first_disagreement"]["tokens"]
    assert not list(run_dir.glob(".*verifying*"))


def test_a_space_too_large_to_list_is_sampled_at_its_own_lengths(trained):
    from transformer_programs.program.decompile import run_program, verification_inputs

    run = load_run(trained(task="dyck2", epochs=1, n_examples=200))  # 4^15 inputs: sampled, not listed
    inputs, how = verification_inputs(run, run_program(run), n_random=300)
    sampled = inputs[-300:]
    space = run.input_space()
    assert not how["exhaustive"] and how["random_from"] == space.describe()
    assert all(space.contains([run.input_vocab.tokens[i] for i in sequence]) for sequence in sampled)
    assert len({tuple(sequence) for sequence in sampled}) > 290  # drawn, not repeated

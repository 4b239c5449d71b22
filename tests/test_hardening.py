"""What a hostile-input tour broke: lost data, silent wrong results and tracebacks, each pinned."""

from __future__ import annotations

import ast
import json
import os
import stat
from pathlib import Path

import pytest
import torch
from conftest import one_line_error
from safetensors.torch import load_file

import transformer_programs
from transformer_programs import runio
from transformer_programs.cli import main
from transformer_programs.config import TrainConfig
from transformer_programs.train import train

# hist over 3 symbols and 1 to 4 of them: 120 inputs, so decompiling checks every one quickly
SMALL = dict(task="hist", epochs=1, n_examples=120, vocab_size=3, train_lengths=(1, 4))
QUICK = ["--epochs", "1", "--n-examples", "120", "--vocab-size", "3", "--train-lengths", "1-4", "--quiet"]


@pytest.fixture
def run_dir(trained, copy_run) -> Path:
    """A copy of a briefly trained small hist run."""
    return copy_run(trained(**SMALL))


def test_a_kill_right_after_the_checkpoint_is_written_resumes_to_the_same_weights(tmp_path, monkeypatch):
    config = TrainConfig(task="sort", epochs=3, n_examples=600, layers=1, batch_size=128)
    train(config, tmp_path / "straight", quiet=True)
    real_save, real_write = runio.save_tensors, runio.atomic_write_bytes
    saved = []

    def save(path, tensors, metadata=None):
        real_save(path, tensors, metadata)
        saved.append(path.name)

    def write_or_die(path, data):  # the first write after epoch 2's checkpoint is a kill
        if saved.count("checkpoint.safetensors") == 2 and not getattr(write_or_die, "killed", False):
            write_or_die.killed = True
            raise KeyboardInterrupt
        real_write(path, data)

    monkeypatch.setattr(runio, "save_tensors", save)
    monkeypatch.setattr(runio, "atomic_write_bytes", write_or_die)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "killed", quiet=True)
    monkeypatch.undo()
    train(config, tmp_path / "killed", resume=True, quiet=True)
    straight, resumed = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("straight", "killed"))
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert not (tmp_path / "killed" / "checkpoint.json").exists()  # one file holds the checkpoint


def test_resume_refuses_a_directory_that_holds_a_different_run(run_dir, capsys):
    (run_dir / "checkpoint.safetensors").unlink()
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert main(["train", "hist", "--out", str(run_dir), "--resume", "--lr", "0.01", *QUICK]) == 2
    assert "different configuration" in one_line_error(capsys)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_train_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "results.json").write_text("my own results", encoding="utf-8")
    assert main(["train", "hist", "--out", str(folder), *QUICK]) == 2
    assert "holds no run" in one_line_error(capsys)
    assert (folder / "results.json").read_text(encoding="utf-8") == "my own results"


def test_eval_and_predict_refuse_a_program_whose_model_has_changed(run_dir, capsys):
    assert main(["decompile", str(run_dir)]) == 0
    weights = load_file(str(run_dir / "model.safetensors"))
    weights["classifier_bias"] = weights["classifier_bias"] + 1.0
    runio.save_tensors(run_dir / "model.safetensors", weights)
    capsys.readouterr()
    for command in (["eval", str(run_dir)], ["predict", str(run_dir), "<s>", "1"]):
        assert main(command) == 2
        assert "decompile" in one_line_error(capsys)


def test_predict_refuses_an_edited_program_and_never_executes_one(run_dir, tmp_path, capsys):
    assert main(["decompile", str(run_dir)]) == 0
    capsys.readouterr()
    program = run_dir / "program_full.py"
    marker = tmp_path / "executed"
    program.write_text(program.read_text(encoding="utf-8") + f"\nopen({str(marker)!r}, 'w')\n", encoding="utf-8")
    assert main(["predict", str(run_dir), "<s>", "1"]) == 2
    assert "edited since it was verified" in one_line_error(capsys)
    (run_dir / "verification.json").unlink()  # no record: the edited program is not taken as verified
    program.write_text(program.read_text(encoding="utf-8") + "\n)syntax error(\n", encoding="utf-8")
    for command in (["predict", str(run_dir), "<s>", "1", "2"], ["eval", str(run_dir)]):
        assert main(command) == 2
        assert "has no verification record" in one_line_error(capsys)
    assert not marker.exists()
    assert main(["decompile", str(run_dir)]) == 0  # proved again, then served
    assert main(["predict", str(run_dir), "<s>", "1", "2"]) == 0  # runs the IR, not the file
    assert len(capsys.readouterr().out.split()[-3:]) == 3 and not marker.exists()


@pytest.mark.parametrize(
    "field, value, named",
    [("model.causal", "false", "model.causal"), ("train", None, '"train" must be an object'),
     ("train.seed", "0", "train.seed"), ("model.heads_cat", 2.5, "model.heads_cat"),
     ("input_vocab", "abc", "input_vocab")],
)
def test_a_config_field_of_the_wrong_type_is_named(run_dir, capsys, field, value, named):
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    *path, last = field.split(".")
    target = config
    for key in path:
        target = target[key]
    target[last] = value
    (run_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    for command in (["eval", str(run_dir)], ["decompile", str(run_dir)]):
        assert main(command) == 2
        assert named in one_line_error(capsys)
    assert not (run_dir / "program.py").exists()


@pytest.mark.parametrize(
    "flags, message",
    [(["--vocab-size", "0"], "--vocab-size"), (["--attention", ""], "--attention"), (["--out", ""], "--out"),
     (["--tau-start", "inf"], "tau"), (["--lr", "nan"], "lr"), (["--model", "standard", "--program"], "--program"),
     (["--max-len", "100000"], "GiB"), (["--vocab-size", "3000"], "GiB")],
)
def test_bad_flags_stop_before_anything_is_written(tmp_path, capsys, monkeypatch, flags, message):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    args = ["train", "sort", "--n-examples", "200", "--epochs", "1", "--quiet"]
    args += flags if "--out" in flags else ["--out", str(out), *flags]
    assert main(args) == 2
    assert message in one_line_error(capsys)
    assert not out.exists() and not (tmp_path / "runs").exists()


def test_training_leaves_no_flush_to_zero_behind(tmp_path):
    subnormal = torch.tensor([1e-40], dtype=torch.float32)
    train(TrainConfig(**SMALL), tmp_path / "run", quiet=True)
    assert (subnormal * 1.0).item() != 0.0  # with flush-to-zero on, this is 0


def test_predict_on_a_standard_run_is_one_line(tmp_path, capsys):
    out = tmp_path / "standard"
    assert main(["train", "hist", "--model", "standard", "--out", str(out), *QUICK]) == 0
    capsys.readouterr()
    assert main(["predict", str(out), "<s>", "1"]) == 2
    assert "Transformer Programs" in one_line_error(capsys)


def test_a_non_finite_weight_is_named_and_writes_no_program(run_dir, capsys):
    weights = load_file(str(run_dir / "model.safetensors"))
    name = next(k for k in weights if k.startswith("classifier_cat"))
    weights[name][0, 0, 0] = float("nan")
    runio.save_tensors(run_dir / "model.safetensors", weights)
    assert main(["decompile", str(run_dir)]) == 2
    assert name in one_line_error(capsys)
    assert not (run_dir / "program.py").exists() and not (run_dir / "verification.json").exists()


def test_run_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        train(TrainConfig(**SMALL), tmp_path / "run", quiet=True)
    finally:
        os.umask(old)
    for name in ("config.json", "model.safetensors", "results.json", "metrics.csv", "checkpoint.safetensors"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == 0o644, name


def test_two_trainings_into_one_directory_cannot_run_at_once(tmp_path, capsys):
    out = tmp_path / "run"
    with runio.locked(out):  # another process training there
        assert main(["train", "hist", "--out", str(out), *QUICK]) == 2
        assert "another tprog process" in one_line_error(capsys)
    assert main(["train", "hist", "--out", str(out), *QUICK]) == 0


def test_after_training_the_discrete_model_sees_a_subnormal_weight(run_dir):
    """A subnormal float32 weight decides label 2 over label 1; the trainer has run in this
    process (run_dir), and its flush-to-zero must not have outlived its training steps."""
    from transformer_programs.model.program_config import ProgramConfig
    from transformer_programs.model.program_model import TransformerProgram

    model = TransformerProgram(ProgramConfig(n_tokens=4, n_labels=3, max_len=3, layers=0)).eval()
    with torch.no_grad():
        model.classifier_cat.zero_()
        model.classifier_num.zero_()
        model.classifier_bias.zero_()
        model.classifier_cat[0, :, 2] = 1e-40
    assert model.predict(torch.tensor([[1, 2, 3]])).tolist() == [[2, 2, 2]]


STAGES = ["tasks", "model", "train", "program", "experiments", "cli"]  # the pipeline, in import order


def _stage(module: str) -> int | None:
    """The pipeline stage of a module of the package ("transformer_programs.program.verify" -> 3)."""
    parts = module.split(".")
    return STAGES.index(parts[1]) if len(parts) > 1 and parts[1] in STAGES else None


def test_imports_run_one_way_through_the_pipeline():
    root = Path(transformer_programs.__file__).parent
    against = []
    for path in root.rglob("*.py"):
        module = ".".join(("transformer_programs", *path.relative_to(root).with_suffix("").parts))
        here = _stage(module)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                package = module.split(".")[: -node.level]  # a package's __init__ counts as its last part
                targets = [".".join([*package, node.module])] if node.module else [".".join([*package, a.name]) for a in node.names]
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                targets = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            else:
                continue
            for target in targets:
                there = _stage(target) if target.startswith("transformer_programs.") else None
                if here is not None and there is not None and there > here:
                    against.append(f"{module} imports {target}")
    assert not against, against

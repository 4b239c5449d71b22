"""No long command is silent: progress lines where stderr is not a terminal, none under --quiet."""

from __future__ import annotations

import pytest

from transformer_programs import progress
from transformer_programs.cli import main
from transformer_programs.progress import Progress

SMALL = dict(task="hist", epochs=1, n_examples=120, vocab_size=3, train_lengths=(1, 4))


def test_a_line_every_few_seconds_when_not_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(progress, "LINE_EVERY", 0.0)
    with Progress("checking", 4) as shown:
        shown.update(1)
        shown.update(3, "best val 0.99")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("checking: 1 of 4 (25%), ") and lines[1].endswith("s; best val 0.99")
    with Progress("pruning", None, quiet=True) as silent:
        silent.update(5)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("command", ["decompile", "prune"])
def test_decompile_and_prune_show_progress_unless_quiet(command, trained, copy_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "LINE_EVERY", 0.0)
    run = copy_run(trained(**SMALL))
    extra = ["--out", str(tmp_path / "pruned"), "--finetune-epochs", "0"] if command == "prune" else []
    assert main([command, str(run), *extra]) == 0
    err = capsys.readouterr().err
    assert "simplifying: " in err and "checking program.py: " in err and "checking program_full.py: " in err
    if command == "prune":
        assert "pruning: evaluations: " in err
    again = ["--out", str(tmp_path / "quiet"), "--finetune-epochs", "0"] if command == "prune" else []
    assert main([command, str(run), *again, "--quiet"]) == 0
    assert capsys.readouterr().err == ""

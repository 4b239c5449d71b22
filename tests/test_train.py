"""The trainer and the `tprog` command: training, run directories, resume and bad input."""

import csv
from dataclasses import asdict
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from transformer_programs import runio
from transformer_programs import train as train_module
from transformer_programs.cli import main
from transformer_programs.config import LATER_SETTINGS, TrainConfig
from transformer_programs.data import build_dataset
from transformer_programs.model import ProgramConfig, TransformerProgram
from transformer_programs.runs import load_run, model_config
from transformer_programs.train import temperature, train


def test_temperature_anneals_geometrically_from_start_to_end():
    config = TrainConfig(task="sort").resolved()
    taus = [temperature(step, 101, config.tau_start, config.tau_end) for step in range(101)]
    assert taus[0] == pytest.approx(3.0) and taus[-1] == pytest.approx(0.01)  # the paper's
    ratios = [b / a for a, b in zip(taus, taus[1:])]
    assert max(ratios) == pytest.approx(min(ratios))


def test_short_hist_training_reaches_high_accuracy(tmp_path):
    results = train(TrainConfig(task="hist", epochs=20), tmp_path / "run", quiet=True)
    assert results["test"]["accuracy"] >= 0.97
    assert set(results) >= {"train", "val", "test", "seconds_per_epoch"}
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert len(rows) == 20
    assert list(rows[0]) == ["epoch", "loss", "temperature", "val_accuracy", "seconds"]
    assert float(rows[-1]["temperature"]) == pytest.approx(0.01)
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])


def test_a_saved_run_evaluates_to_its_recorded_results(tmp_path):
    out = tmp_path / "run"
    results = train(TrainConfig(task="sort", epochs=2, n_examples=600, layers=1), out, quiet=True)
    run = load_run(out)
    data = run.dataset
    assert run.model.config.max_len == data.max_len
    again = train_module.evaluate(run.model, *data.tensors["test"])
    assert again == results["test"]


def test_columns_of_padding_past_the_longest_input_are_cut_and_change_no_loss_or_accuracy():
    config = TrainConfig(task="sort", n_examples=300, layers=2, train_lengths=(1, 4), test_lengths=(5, 8)).resolved()
    data = build_dataset(config)
    torch.manual_seed(0)
    model = TransformerProgram(ProgramConfig(**model_config(config, data)))
    inputs, labels = data.tensors["train"]  # padded to the longest test input
    longest = int((inputs != 0).sum(1).max())
    assert inputs.shape[1] > longest
    cut_inputs, cut_labels = train_module.without_padding(inputs, labels)
    assert cut_inputs.shape[1] == cut_labels.shape[1] == longest
    assert torch.equal(cut_labels, labels[:, :longest]) and not labels[:, longest:].any()
    # Without Gumbel noise the relaxed model is deterministic: the cut batch's loss is the full one's.
    full = torch.nn.functional.cross_entropy(model(inputs, 0.5).flatten(0, 1), labels.flatten(), ignore_index=0)
    assert train_module.batch_loss(model, inputs, labels, 0.5, None).item() == pytest.approx(full.item(), rel=1e-4)  # float sums in another order
    test_x, test_y = data.tensors["test"]
    model.eval()
    predicted = model.predict(test_x)
    scored = test_y != 0
    results = train_module.evaluate(model, test_x, test_y, chunk=64)  # chunks of several widths
    assert results["accuracy"] == ((predicted == test_y) & scored).sum().item() / scored.sum().item()


def test_the_run_keeps_the_epoch_with_the_best_validation_accuracy(tmp_path, monkeypatch):
    scripted = [0.3, 0.7, 0.5, 0.7, 0.6]  # epochs 2 and 4 tie for best: the later one is kept
    snapshots = []
    real_evaluate = train_module.evaluate

    def scripted_evaluate(model, inputs, labels, entities=None):
        result = real_evaluate(model, inputs, labels, entities)
        if len(snapshots) < len(scripted):  # the per-epoch validation passes
            snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
            result["accuracy"] = result["score"] = scripted[len(snapshots) - 1]
        return result

    monkeypatch.setattr(train_module, "evaluate", scripted_evaluate)
    out = tmp_path / "run"
    results = train(TrainConfig(task="sort", epochs=5, n_examples=1000, layers=1), out, quiet=True)
    assert results["selected_epoch"] == 4 and results["epochs"] == 5
    saved = load_file(str(out / "model.safetensors"))
    assert all(torch.equal(saved[k], snapshots[3][k]) for k in saved)
    assert not all(torch.equal(saved[k], snapshots[4][k]) for k in saved)  # not simply the last epoch


@pytest.mark.parametrize("sparsity", [0.0, 0.05])
def test_resume_after_interruption_gives_the_same_weights(sparsity, tmp_path, monkeypatch):
    config = TrainConfig(task="sort", epochs=4, n_examples=1000, layers=2, batch_size=128, sparsity=sparsity)
    train(config, tmp_path / "straight", quiet=True)

    real_save = train_module._save_checkpoint
    saves = []

    def save_then_die(out, *args):
        real_save(out, *args)
        saves.append(out)
        if len(saves) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed", quiet=True)
    monkeypatch.setattr(train_module, "_save_checkpoint", real_save)
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    train(config, tmp_path / "resumed", resume=True, quiet=True)

    straight = load_file(str(tmp_path / "straight" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[key], resumed[key]) for key in straight)
    rows = list(csv.DictReader((tmp_path / "resumed" / "metrics.csv").open()))
    assert [row["epoch"] for row in rows] == ["1", "2", "3", "4"]


def test_cli_train_and_eval_write_and_read_a_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "hist", "--epochs", "2", "--n-examples", "500", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "accuracy train" in printed and "test" in printed
    for name in ("config.json", "model.safetensors", "metrics.csv", "results.json"):
        assert (out / name).is_file()
    results = json.loads((out / "results.json").read_text())
    assert 0.0 <= results["test"]["accuracy"] <= 1.0
    assert main(["eval", str(out)]) == 0
    assert f"{results['test']['accuracy']:.4f}" in capsys.readouterr().out


def corrupt_run(tmp_path: Path, what: str) -> Path:
    out = tmp_path / "run"
    train(TrainConfig(task="hist", epochs=1, n_examples=300), out, quiet=True)
    if what == "json":
        (out / "config.json").write_text("{not json")
    elif what == "weights":
        (out / "model.safetensors").write_bytes(b"\x00\x01garbage")
    elif what == "missing weights":
        (out / "model.safetensors").unlink()
    return out


BAD_COMMANDS = {
    "unknown task": ["train", "no_such_task"],
    "zero layers": ["train", "hist", "--layers", "0"],
    "zero epochs": ["train", "hist", "--epochs", "0"],
    "negative heads": ["train", "hist", "--heads-cat", "-1"],
    "dyck vocabulary": ["train", "dyck1", "--vocab-size", "7"],
    "positions shorter than data": ["train", "sort", "--max-len", "4"],
    "unknown model": ["train", "hist", "--model", "lstm"],
    "unknown attention": ["train", "hist", "--attention", "hard"],
    "reverse sum off addition": ["train", "hist", "--reverse-sum"],
    "negative sparsity": ["train", "hist", "--sparsity", "-0.1"],
    "sparsity of a standard model": ["train", "hist", "--model", "standard", "--sparsity", "0.01"],
    "zero values": ["train", "hist", "--values", "0"],
    "zero restarts": ["train", "hist", "--restarts", "0"],
    "too many restarts": ["train", "hist", "--restarts", "101"],
    "values of a standard model": ["train", "hist", "--model", "standard", "--values", "20"],
    "tokens past the values": ["train", "addition", "--values", "5", "--layers", "1", "--epochs", "1", "--n-examples", "300"],
    "missing run": ["eval", "{tmp}/nowhere"],
}


@pytest.mark.parametrize("name", BAD_COMMANDS)
def test_bad_input_ends_with_one_line_and_status_2(name, tmp_path, capsys):
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in BAD_COMMANDS[name]]
    if argv[0] == "train":
        argv += ["--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tprog: error: ") and "\n" not in err
    assert "Traceback" not in err


@pytest.mark.parametrize("what", ["json", "weights", "missing weights"])
def test_corrupt_run_directory_is_a_one_line_error(what, tmp_path, capsys):
    out = corrupt_run(tmp_path, what)
    assert main(["eval", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tprog: error: ") and "\n" not in err


def test_training_into_an_existing_run_needs_resume(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "hist", "--epochs", "1", "--n-examples", "300", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(args + ["--resume", "--epochs", "2"]) == 2  # a different configuration
    assert main(args + ["--resume"]) == 0  # already finished: nothing left to train


def test_resuming_from_an_incomplete_checkpoint_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "hist", "--epochs", "2", "--n-examples", "300", "--out", str(out), "--quiet"]
    assert main(args) == 0
    checkpoint = out / "checkpoint.safetensors"
    record = json.loads(runio.read_metadata(checkpoint)["record"])
    incomplete = json.dumps({"metrics": record["metrics"]})  # no best epoch
    runio.save_tensors(checkpoint, runio.load_tensors(checkpoint), metadata={"record": incomplete})
    assert main(args + ["--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tprog: error: ") and "incomplete" in err and "\n" not in err


def test_a_diverged_training_stops_with_one_line_and_keeps_its_finished_epochs(tmp_path, capsys, monkeypatch):
    from transformer_programs.model.program_model import TransformerProgram

    real_forward = TransformerProgram.forward
    calls = []

    def forward_turning_nan(self, tokens, tau, generator=None):
        calls.append(tau)
        logits = real_forward(self, tokens, tau, generator)
        return logits * float("nan") if len(calls) > 2 else logits  # the third step diverges

    monkeypatch.setattr(TransformerProgram, "forward", forward_turning_nan)
    out = tmp_path / "run"
    args = ["train", "hist", "--epochs", "3", "--n-examples", "600", "--batch-size", "256", "--out", str(out), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tprog: error: training diverged") and "epoch 2, step 1" in err and "\n" not in err
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [row["epoch"] for row in rows] == ["1"]  # the finished epoch stays, resumable


def rows(temperatures, scores):
    return [{"epoch": n + 1, "temperature": t, "val_accuracy": s} for n, (t, s) in enumerate(zip(temperatures, scores))]


def test_early_stop_waits_for_a_low_temperature_then_for_perfect_or_stale_validation():
    from transformer_programs.train import should_stop

    hot = rows([0.5, 0.3, 0.2], [1.0, 1.0, 1.0])
    assert not should_stop(hot, 3, 2)  # perfect, but the temperature is still high
    perfect = rows([0.5, 0.09, 0.05], [0.9, 1.0, 1.0])
    assert should_stop(perfect, 3, 2) and not should_stop(perfect, 3, 3) and not should_stop(perfect, 3, 0)
    stale = rows([0.2, 0.08, 0.05, 0.03], [0.95, 0.97, 0.96, 0.96])
    assert should_stop(stale, 2, 2) and not should_stop(stale, 3, 2)
    assert not should_stop(rows(["", ""], [1.0, 1.0]), 2, 1)  # a standard run has no temperature


def test_an_early_stopped_run_ends_sooner_and_says_so(tmp_path):
    config = TrainConfig(task="hist", epochs=40, n_examples=300, vocab_size=3, train_lengths=(1, 4), early_stop=3)
    results = train(config, tmp_path / "run", quiet=True)
    assert results["stopped_early"] and results["epochs"] < 40
    metrics = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert len(metrics) == results["epochs"] and float(metrics[-1]["temperature"]) <= 0.1
    again = train(config, tmp_path / "run", resume=True, quiet=True)  # resuming a stopped run trains no more
    assert again["epochs"] == results["epochs"]


def test_a_run_saved_before_a_setting_existed_resumes(tmp_path):
    config = TrainConfig(task="hist", epochs=2, n_examples=300, sparsity=0.0, classifier_step=0.0)
    train(config, tmp_path / "run", quiet=True)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    for name in ("sparsity", "classifier_step", "d_values", "restarts", "init"):
        del saved["train"][name]  # as an older version wrote it
    (tmp_path / "run" / "config.json").write_text(json.dumps(saved))
    assert train(config, tmp_path / "run", resume=True, quiet=True)["epochs"] == 2  # the same run: it resumes


def test_a_run_saved_before_gates_existed_loads_without_the_tasks_gates():
    """sort's default training has gates; a run saved before they were a setting had none, and
    reads back so, not as the task's default."""
    saved = {key: value for key, value in asdict(TrainConfig(task="sort").resolved()).items()
             if key not in LATER_SETTINGS}
    saved["train_lengths"] = list(saved["train_lengths"])
    loaded = TrainConfig.from_dict(saved).resolved()
    assert (loaded.sparsity, loaded.classifier_step, loaded.target_parts, loaded.restarts) == (0.0, 0.0, 0, 1)
    assert TrainConfig(task="sort").resolved().sparsity > 0  # what a missing value would have become

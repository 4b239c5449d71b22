"""Restarts: several initializations of one seed's run, the best by validation kept as an ordinary run."""

import json

import pytest
import torch
from safetensors.torch import load_file

from transformer_programs import restarts as restarts_module
from transformer_programs.cli import main
from transformer_programs.config import TrainConfig
from transformer_programs.data import build_dataset
from transformer_programs.restarts import candidate_dir, train_with_restarts
from transformer_programs.runs import load_run
from transformer_programs.train import evaluate_split, train

TINY = dict(task="hist", epochs=2, n_examples=400, tau_start=3.0)


def weights(path) -> dict:
    return load_file(str(path / "model.safetensors"))


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_each_initialization_starts_another_model_on_the_same_data_and_the_best_by_validation_is_kept(tmp_path):
    out = tmp_path / "run"
    results = train_with_restarts(TrainConfig(restarts=3, **TINY), out, quiet=True)
    tried = results["restarts"]
    assert [row["init"] for row in tried] == [0, 1, 2]
    best = max(row["val"] for row in tried)
    assert results["kept_init"] == min(row["init"] for row in tried if row["val"] == best)
    assert results["val"]["score"] == best
    candidates = [weights(candidate_dir(out, init)) for init in range(3)]
    assert not same(candidates[0], candidates[1]) and not same(candidates[1], candidates[2])
    assert same(weights(out), candidates[results["kept_init"]])
    data = [build_dataset(TrainConfig(restarts=3, init=init, **TINY).resolved()) for init in range(3)]
    assert all(torch.equal(d.tensors["val"][0], data[0].tensors["val"][0]) for d in data)
    # OUT is an ordinary run: it names the kept initialization and evaluates to its results
    saved = json.loads((out / "config.json").read_text())["train"]
    assert saved["init"] == results["kept_init"] and saved["restarts"] == 3
    run = load_run(out)
    assert evaluate_split(run.model, run.dataset, "test")["accuracy"] == results["test"]["accuracy"]
    assert results["seconds"] == pytest.approx(sum(row["seconds"] for row in tried))


def test_initialization_0_is_the_seed_own_run(tmp_path):
    train_with_restarts(TrainConfig(restarts=2, **TINY), tmp_path / "restarts", quiet=True)
    train(TrainConfig(**TINY), tmp_path / "plain", quiet=True)
    assert same(weights(candidate_dir(tmp_path / "restarts", 0)), weights(tmp_path / "plain"))


def test_an_interrupted_run_resumes_with_the_finished_initializations_kept(tmp_path, monkeypatch):
    config = TrainConfig(restarts=3, **TINY)
    straight = train_with_restarts(config, tmp_path / "straight", quiet=True)
    real_train, started = restarts_module.train, []

    def die_at_the_second(config, out, **kwargs):
        started.append(config.init)
        if config.init == 1 and started.count(1) == 1:
            raise KeyboardInterrupt
        return real_train(config, out, **kwargs)

    monkeypatch.setattr(restarts_module, "train", die_at_the_second)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        train_with_restarts(config, out, quiet=True)
    assert not (out / "results.json").exists()
    first = (candidate_dir(out, 0) / "metrics.csv").read_text()
    resumed = train_with_restarts(config, out, resume=True, quiet=True)
    assert (candidate_dir(out, 0) / "metrics.csv").read_text() == first  # not trained again
    assert resumed["kept_init"] == straight["kept_init"]
    assert [row["val"] for row in resumed["restarts"]] == [row["val"] for row in straight["restarts"]]
    assert same(weights(out), weights(tmp_path / "straight"))


def test_cli_restarts_print_the_kept_initialization_and_refuse_to_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "hist", "--epochs", "1", "--n-examples", "300", "--restarts", "2", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert "kept initialization" in capsys.readouterr().out
    assert main(args) == 2  # already there: --resume continues it
    err = capsys.readouterr().err.strip()
    assert "--resume" in err and "\n" not in err
    assert main(args + ["--resume"]) == 0
    plain = tmp_path / "plain"
    assert main(["train", "hist", "--epochs", "1", "--n-examples", "300", "--out", str(plain), "--quiet"]) == 0
    assert main(["train", "hist", "--epochs", "1", "--n-examples", "300", "--restarts", "2", "--out", str(plain),
                 "--quiet", "--resume"]) == 2  # an ordinary run is not one with restarts
    assert "restarts" in capsys.readouterr().err


def test_a_config_names_an_initialization_of_its_restarts_only():
    with pytest.raises(ValueError, match="initialization 2"):
        TrainConfig(restarts=2, init=2, **TINY).resolved()
    assert TrainConfig(**TINY).resolved().restarts == 1


def test_double_hist_tries_three_initializations_with_its_gates_only(capsys):
    assert TrainConfig(task="double_hist").resolved().restarts == 3
    assert TrainConfig(task="double_hist", restarts=1).resolved().restarts == 1
    assert TrainConfig(task="double_hist", sparsity=0.0, classifier_step=0.0).resolved().restarts == 1  # the paper's
    assert TrainConfig(task="sort").resolved().restarts == 1
    assert main(["tasks"]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "best of 3 starts" in listed["double_hist"] and "starts" not in listed["sort"]

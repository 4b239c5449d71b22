"""The training settings each task gives `tprog train` unless they are given: model size, attention,
value space, sum order, epochs, temperatures, gates, and the `tprog tasks` listing of them."""

import json

import numpy as np

from transformer_programs.cli import main
from transformer_programs.config import TrainConfig, task_spec
from transformer_programs.runs import load_run


def test_attention_kind_comes_from_the_task_unless_given(tmp_path):
    assert TrainConfig(task="dyck2").resolved().attention == "soft"
    assert TrainConfig(task="hist").resolved().attention == "sharp"
    word_tasks = ("conll_ner", "trec", "mr", "subj", "ag_news")
    assert {TrainConfig(task=name).resolved().attention for name in word_tasks} == {"soft"}
    out = tmp_path / "run"
    flags = ["--epochs", "1", "--n-examples", "300", "--layers", "1", "--quiet", "--out", str(out)]
    assert main(["train", "dyck2", "--attention", "sharp", *flags]) == 0
    model = load_run(out).model
    assert model.config.attention == "sharp" and model.blocks[0].cat_attn.soft is False


def test_value_space_comes_from_the_task_unless_given(tmp_path):
    assert TrainConfig(task="addition").resolved().d_values == 20
    assert TrainConfig(task="addition_hints_study").resolved().d_values is None
    assert TrainConfig(task="hist", model="standard").resolved().d_values is None
    out = tmp_path / "run"
    flags = ["--epochs", "1", "--n-examples", "300", "--layers", "1", "--quiet", "--out", str(out)]
    assert main(["train", "addition_study", "--values", "24", *flags]) == 0
    run = load_run(out)
    assert run.train_config.d_values == 24 and run.model.config.d == 24


def test_sum_order_comes_from_the_task_unless_given(tmp_path):
    """Plain addition writes its sum least significant digit first unless told --no-reverse-sum;
    addition with hints most significant first unless told --reverse-sum."""
    assert TrainConfig(task="addition").resolved().reverse_sum is True
    assert TrainConfig(task="addition_hints").resolved().reverse_sum is False
    assert TrainConfig(task="hist").resolved().reverse_sum is False
    flags = ["--epochs", "1", "--n-examples", "300", "--layers", "1", "--quiet"]
    sums = {}
    for order in ([], ["--no-reverse-sum"], ["--reverse-sum"]):
        out = tmp_path / ("run" + "".join(order))
        assert main(["train", "addition", *order, *flags, "--out", str(out)]) == 0
        sums[tuple(order)] = load_run(out).train_config.reverse_sum
    assert sums == {(): True, ("--no-reverse-sum",): False, ("--reverse-sum",): True}
    saved = {key: value for key, value in load_run(tmp_path / "run").config["train"].items() if key != "reverse_sum"}
    assert TrainConfig.from_dict(saved).reverse_sum is False  # a run saved without the setting: most significant first
    # the labels after <s> are the digits of the sum, in the run's order (57 + 68: 5 2 1 or 1 2 5)
    for reverse_sum in (True, False):
        spec = task_spec(TrainConfig(task="addition", reverse_sum=reverse_sum).resolved())
        for inputs, labels in spec.sample(np.random.default_rng(0), 50, 2, 2, 10):
            digits = list(str(int("".join(inputs[1:3])) + int("".join(inputs[4:6]))))
            assert labels[1 : 1 + len(digits)] == (digits[::-1] if reverse_sum else digits)


def test_epoch_budget_comes_from_the_task_unless_given():
    from transformer_programs.tasks import TASKS

    budgets = {name: TrainConfig(task=name, sparsity=0.0).resolved().epochs for name in ("hist", "sort", "dyck2", "induction")}
    assert budgets == {name: TASKS[name].model.epochs or 250 for name in budgets}
    assert budgets["hist"] < 250 and budgets["induction"] == 250  # a measured budget; the paper's where none is
    # sort trains with gates by default, on a budget of its own; without gates, on the paper's training's
    gated, plain = TrainConfig(task="sort").resolved(), TrainConfig(task="sort", sparsity=0.0).resolved()
    assert (gated.sparsity, gated.target_parts, gated.epochs) == (0.3, 8, 300)
    assert (plain.sparsity, plain.target_parts, plain.epochs) == (0.0, 0, 50)
    other = TrainConfig(task="sort", sparsity=0.03).resolved()  # other gates: the task's gated budget and target
    assert (other.target_parts, other.epochs) == (8, 300)
    assert TrainConfig(task="sort", target_parts=0, epochs=60).resolved().target_parts == 0
    double_hist = TrainConfig(task="double_hist").resolved()  # gates too, with a target of its own
    assert (double_hist.sparsity, double_hist.target_parts, double_hist.epochs) == (0.1, 4, 300)
    assert TrainConfig(task="double_hist", sparsity=0.0).resolved().epochs == 100
    hist = TrainConfig(task="hist", sparsity=0.03).resolved()  # a task without a gated budget keeps its own
    assert (hist.target_parts, hist.epochs) == (0, budgets["hist"])
    assert TrainConfig(task="hist", epochs=7).resolved().epochs == 7
    assert TrainConfig(task="hist", model="standard").resolved().epochs == 100  # the baseline keeps its own


def test_trec_trains_with_gates_on_its_own_vocabulary_and_budget_unless_gates_are_off():
    from transformer_programs.tasks import NLP_TASKS

    gated, plain = TrainConfig(task="trec").resolved(), TrainConfig(task="trec", sparsity=0.0).resolved()
    assert (gated.sparsity, gated.classifier_step, gated.epochs, gated.vocab_size) == (0.01, 0.25, 30, 1000)
    assert (plain.epochs, plain.vocab_size) == (10, NLP_TASKS["trec"].vocab_size) and plain.vocab_size > 1000
    assert TrainConfig(task="trec", vocab_size=300).resolved().vocab_size == 300
    # the other text tasks keep the paper's training
    subj = TrainConfig(task="subj").resolved()
    assert subj.sparsity == 0 and subj.vocab_size > 1000


def test_reverse_trains_its_own_smaller_model_unless_a_training_or_a_size_is_given():
    from dataclasses import fields

    from transformer_programs.tasks import TASKS

    spec = TASKS["reverse"].model
    own, paper = TrainConfig(task="reverse").resolved(), TrainConfig(task="reverse", sparsity=0.0, classifier_step=0.0).resolved()
    assert spec.short_model and all(getattr(own, key) == value for key, value in spec.short_model.items())
    assert (own.layers, own.attention) != (paper.layers, paper.attention)
    assert (paper.layers, paper.heads_cat, paper.heads_num, paper.mlps_cat, paper.mlps_num, paper.attention, paper.epochs) == (
        spec.layers, spec.heads_cat, spec.heads_num, spec.mlps_cat, spec.mlps_num, spec.attention, spec.epochs)
    # a size given is the paper's model at that size; gates are the paper's model with gates
    assert TrainConfig(task="reverse", layers=4).resolved().heads_cat == spec.heads_cat
    assert TrainConfig(task="reverse", sparsity=0.05).resolved().layers == spec.layers
    # other settings keep the task's own model
    assert TrainConfig(task="reverse", epochs=9, seed=3).resolved().layers == own.layers
    known = {f.name for f in fields(TrainConfig)}
    assert all(set(task.model.short_model) <= known for task in TASKS.values())


def test_cli_tasks_lists_every_task_with_its_epoch_budget(capsys):
    from transformer_programs.tasks import TASKS

    assert main(["tasks"]) == 0
    listing = capsys.readouterr().out
    for name, spec in TASKS.items():
        row = next(line for line in listing.splitlines() if line.split()[0] == name)
        gated = spec.model.sparsity and spec.model.gated_epochs
        own = spec.model.short_model.get("epochs")
        assert int(row.split()[4]) == (own or (spec.model.gated_epochs if gated else spec.model.epochs) or 250)
        assert float(row.split()[5]) == (spec.model.tau_start or 3.0)
        assert float(row.split()[6]) == (spec.model.tau_end or 0.01)
        assert (f", {spec.model.d_values} values" in row) == (spec.model.d_values is not None)
    assert "4L / 8+8 / 4+4, soft, 20 values" in next(line for line in listing.splitlines() if line.startswith("addition "))
    own = TrainConfig(task="reverse").resolved()  # its own model, not the paper's
    assert (f"{own.layers}L / {own.heads_cat}+{own.heads_num} / {own.mlps_cat}+{own.mlps_num}, {own.attention}"
            in next(line for line in listing.splitlines() if line.startswith("reverse ")))
    sort = next(line for line in listing.splitlines() if line.startswith("sort "))
    assert "gates 0.3 above 8 parts, classifier step 0.25" in sort
    trec = next(line for line in listing.splitlines() if line.startswith("trec "))
    assert trec.split()[1:5] == ["1000", "1-62", "False", "30"] and "gates 0.01, classifier step 0.25" in trec


def test_temperatures_come_from_the_task_unless_given(tmp_path):
    from transformer_programs.tasks import TASKS

    assert TrainConfig(task="reverse").resolved().tau_end == TASKS["reverse"].model.tau_end > 0.01  # measured
    assert TrainConfig(task="hist").resolved().tau_end == 0.01  # the paper's where none is measured
    assert TrainConfig(task="reverse", tau_end=0.05).resolved().tau_end == 0.05
    # and the initial one: hist's is measured (seeds 2 and 3 stay at 45% from the paper's 3)
    assert TrainConfig(task="hist").resolved().tau_start == TASKS["hist"].model.tau_start == 10.0
    assert TrainConfig(task="reverse").resolved().tau_start == 3.0
    assert TrainConfig(task="hist", tau_start=3.0).resolved().tau_start == 3.0
    out = tmp_path / "run"
    assert main(["train", "reverse", "--epochs", "1", "--n-examples", "300", "--quiet", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["train"]["tau_end"] == TASKS["reverse"].model.tau_end

"""Sweeps and length generalization through Ray Tune end to end: tables, summaries, plots, resume."""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from transformer_programs import cli, runio
from transformer_programs.arguments import train_config
from transformer_programs.config import TAU_START, TrainConfig
from transformer_programs.experiments import report
from transformer_programs.data import train_split_size
from transformer_programs.experiments.ledger import PAPER_TRAINING, Ledger, off_protocol, sweep_experiment
from transformer_programs.experiments.length import length_trials
from transformer_programs.experiments.runner import PLAN_FILE, Trial, check_plan, cpus_per_trial, int_list, run_trials
from transformer_programs.experiments.sweep import best_configuration, grid_trials, run_sweep
from transformer_programs.runs import load_run
from transformer_programs.tasks import TASKS
from transformer_programs.train import train

TINY = ["--epochs", "2", "--n-examples", "300", "--quiet"]
SWEEP_COLUMNS = ["trial", "task", "layers", "heads", "mlps", "heads_cat", "heads_num", "mlps_cat", "mlps_num",
                 "seed", "status", "val_accuracy", "test_accuracy", "train_accuracy", "seconds", "error"]


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the whole module (starting it is slow); experiments reuse it."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def tprog(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_grid_splits_heads_and_mlps():
    base = TrainConfig(task="hist", epochs=1)
    trials = grid_trials(base, [1, 2], [3], [4], seeds=2)
    names = ["hist-L1-H3-M4-s0", "hist-L1-H3-M4-s1", "hist-L2-H3-M4-s0", "hist-L2-H3-M4-s1"]
    assert [t.name for t in trials] == names
    first = trials[0].config
    assert (first.heads_cat, first.heads_num, first.mlps_cat, first.mlps_num) == (2, 1, 2, 2)  # odd: cat +1
    only = grid_trials(base, [1], [3], [4], seeds=1, categorical_only=True)[0].config
    assert (only.heads_cat, only.heads_num, only.mlps_cat, only.mlps_num) == (3, 0, 4, 0)


def test_a_few_more_trials_than_cpus_share_them_rather_than_wait_in_waves():
    assert cpus_per_trial(5, 2) == 0.4  # all five at once: 2.5 trial-times, not 3 waves
    assert cpus_per_trial(8, 2) == 0.25
    assert cpus_per_trial(2, 2) == cpus_per_trial(1, 2) == 1.0
    assert cpus_per_trial(9, 2) == 1.0  # many trials: one per CPU, in waves, memory bounded
    assert cpus_per_trial(5, 2, threads=2) == 2.0  # a trial on two threads: two CPUs, never shared
    with pytest.raises(ValueError, match="--threads 3 asks each trial for 3 CPUs and the Ray cluster has 2"):
        cpus_per_trial(1, 2, threads=3)


def test_best_configuration_prefers_smaller_model_on_ties():
    selected = {(2, 8, 4): {"val_accuracy": 0.9}, (1, 4, 2): {"val_accuracy": 0.9}, (3, 2, 2): {"val_accuracy": 0.8}}
    assert best_configuration(selected) == (1, 4, 2)
    selected[(3, 2, 2)]["val_accuracy"] = 0.95
    assert best_configuration(selected) == (3, 2, 2)
    assert report.mean_std([1.0, 3.0]) == (2.0, pytest.approx(2**0.5))


def test_tiny_sweep_end_to_end(ray_session, tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", "hist", "--layers", "1", "--heads", "2,4", "--mlps", "2", "--seeds", "2", *TINY,
            "--out", str(out), "--ledger", str(tmp_path / "results")]
    code, stdout, _ = tprog(capsys, *args)
    assert code == 0, stdout
    assert len(Ledger(tmp_path / "results").records("extended")) == 4  # one layer: not the paper's grid
    rows = read_csv(out / "trials.csv")
    assert list(rows[0]) == SWEEP_COLUMNS
    assert sorted((r["heads"], r["seed"]) for r in rows) == [("2", "0"), ("2", "1"), ("4", "0"), ("4", "1")]
    assert all(r["status"] == "ok" and 0 <= float(r["test_accuracy"]) <= 1 for r in rows)
    assert {(r["heads"], r["heads_cat"], r["heads_num"]) for r in rows} == {("2", "1", "1"), ("4", "2", "2")}
    for row in rows:  # each trial is a complete run directory, trained with its own split
        run = json.loads((out / "trials" / row["trial"] / "config.json").read_text())
        assert run["train"]["heads_cat"] == int(row["heads_cat"]) and run["train"]["seed"] == int(row["seed"])
    # The marked configuration is the one whose best-validation seed has the best validation accuracy.
    best = {}
    for r in rows:
        best[r["heads"]] = max(best.get(r["heads"], -1.0), float(r["val_accuracy"]))
    winner = max(best, key=lambda h: (best[h], -int(h)))
    marked = [line for line in (out / "summary.md").read_text().splitlines() if "**best**" in line]
    assert len(marked) == 1 and marked[0].startswith(f"| 1 | {winner} | 2 |")
    assert (out / "sweep.png").stat().st_size > 0
    # Another grid on the same directory is refused in one line, and nothing is touched.
    code, _, err = tprog(capsys, *[("2,8" if a == "2,4" else a) for a in args])
    assert code == 2 and err.count("\n") == 1 and "different experiment" in err


def test_a_sweep_saved_before_a_setting_existed_resumes(tmp_path):
    # as a sweep trains, whatever the task's defaults
    trials = grid_trials(TrainConfig(task="hist", epochs=2, n_examples=300, **PAPER_TRAINING), [1], [2], [2], 2)
    tmp_path.mkdir(exist_ok=True)
    check_plan(tmp_path, "sweep", trials)
    saved = json.loads((tmp_path / PLAN_FILE).read_text())
    for config in saved["trials"].values():
        del config["sparsity"], config["classifier_step"]  # as an older version wrote it
    (tmp_path / PLAN_FILE).write_text(json.dumps(saved))
    check_plan(tmp_path, "sweep", trials)  # the same experiment: no error
    with pytest.raises(ValueError, match="different experiment"):
        check_plan(tmp_path, "sweep", [replace(t, config=replace(t.config, sparsity=0.5)) for t in trials])


def test_interrupted_sweep_resumes_without_repeating_trials(ray_session, tmp_path):
    out = tmp_path / "sweep"
    base = TrainConfig(task="hist", epochs=2, n_examples=300)
    grid = ([1], [2, 4], [2], 2)
    first = run_sweep(base, *grid, out, quiet=True, max_trials=2)  # "killed" after two trials
    assert len(first) == 2 and len(read_csv(out / "trials.csv")) == 2
    stamps = {r["trial"]: (out / "trials" / r["trial"] / "model.safetensors").stat().st_mtime_ns for r in first}
    # A third trial was killed after its first epoch: checkpoint of epoch 1, no final model.
    half = grid_trials(base, *grid)[2]
    half_dir = out / "trials" / half.name
    train(half.config, half_dir, quiet=True)
    path = half_dir / "checkpoint.safetensors"
    record = json.loads(runio.read_metadata(path)["record"])
    half_done = json.dumps({**record, "metrics": record["metrics"][:1], "best_epoch": 1})
    runio.save_tensors(path, runio.load_tensors(path), metadata={"record": half_done})
    (half_dir / "model.safetensors").unlink()
    (half_dir / "results.json").unlink()

    rows = run_sweep(base, *grid, out, quiet=True)
    table = read_csv(out / "trials.csv")
    assert sorted(r["trial"] for r in table) == sorted(t.name for t in grid_trials(base, *grid))  # each once
    assert all(r["status"] == "ok" for r in rows)
    for name, stamp in stamps.items():  # finished trials were not trained again
        assert (out / "trials" / name / "model.safetensors").stat().st_mtime_ns == stamp
    epochs = read_csv(half_dir / "metrics.csv")
    assert len(epochs) == 2 and float(epochs[0]["seconds"]) == record["metrics"][0]["seconds"]  # continued
    resumed = next(row for row in rows if row["trial"] == half.name)  # its seconds: both sittings' epochs
    assert resumed["seconds"] == pytest.approx(sum(float(epoch["seconds"]) for epoch in epochs))
    with pytest.raises(ValueError, match="different experiment"):
        run_sweep(replace(base, epochs=3), *grid, out, quiet=True)


def test_the_ledger_skips_what_it_holds_whichever_directory_ran_it(ray_session, tmp_path):
    ledger = Ledger(tmp_path / "results")
    base = TrainConfig(task="hist", epochs=2, n_examples=300, **PAPER_TRAINING)  # as `tprog sweep` trains
    grid = ([2], [4], [2], 3)
    run_sweep(base, *grid, tmp_path / "first", quiet=True, max_trials=2, ledger=ledger)
    first = ledger.records()
    assert [(r["experiment"], r["task"], r["layers"], r["heads"], r["mlps"], r["seed"]) for r in first] == [
        ("grid", "hist", 2, 4, 2, 0), ("grid", "hist", 2, 4, 2, 1)]
    for record in first:  # what a protocol's table needs, beside what identifies the trial
        assert 0 <= record["test_accuracy"] <= 1 and record["epochs"] == 2 and 1 <= record["best_epoch"] <= 2
        assert record["program_lines"] > 20 and len(record["model_sha256"]) == 64 and record["seconds"] > 0
        assert record["off_protocol"] == {"epochs": 2, "n_examples": 300} and record["version"] == "0.1.0"
    # Another machine, another sweep directory, the same ledger: only the third seed trains.
    rows = run_sweep(base, *grid, tmp_path / "second", quiet=True, ledger=ledger)
    assert [r["status"] for r in rows] == ["ok"] * 3
    assert sorted(p.name for p in (tmp_path / "second" / "trials").iterdir()) == ["hist-L2-H4-M2-s2"]
    assert len(ledger.records()) == 3 and ledger.records()[:2] == first  # none counted twice
    # A trial with other settings is another record; a broken record is named, not read as done.
    assert ledger.find("grid", "hist", "hist-L2-H4-M2-s0", grid_trials(replace(base, epochs=3), *grid)[0].config) is None
    broken = sorted((tmp_path / "results").glob("**/*.json"))[0]
    broken.write_text('{"experiment": "grid"')
    with pytest.raises(ValueError, match=f"{broken.name} is not a valid ledger record.*delete it"):
        ledger.records()


def test_grid_records_are_the_papers_configurations_and_protocol_settings_are_named():
    paper = TrainConfig(task="sort", layers=3, heads_cat=4, heads_num=4, mlps_cat=2, mlps_num=2,
                        **PAPER_TRAINING).resolved()
    assert sweep_experiment(3, 8, 4, paper) == "grid" and off_protocol(paper) == {}
    # sort's own default training has gates, a target of parts, a classifier step and 300 epochs:
    # not the protocol, which trains as the paper did
    gates = TASKS["sort"].model
    assert off_protocol(TrainConfig(task="sort").resolved()) == {
        "sparsity": gates.sparsity, "target_parts": gates.target_parts, "classifier_step": gates.classifier_step,
        "epochs": gates.gated_epochs}  # 300: neither the task's budget (50) nor the paper's 250
    assert gates.sparsity > 0 and gates.target_parts > 0 and gates.classifier_step > 0
    assert sweep_experiment(4, 16, 8, replace(paper, layers=4, heads_cat=8, heads_num=8, mlps_cat=4, mlps_num=4)) == "extended"
    assert sweep_experiment(3, 8, 4, replace(paper, heads_cat=8, heads_num=0, mlps_cat=4, mlps_num=0)) == "extended"
    assert off_protocol(replace(paper, epochs=7, lr=0.1)) == {"epochs": 7, "lr": 0.1}
    assert off_protocol(replace(paper, epochs=250)) == {}  # the paper's own epochs, where sort's budget is 50


@pytest.mark.parametrize("task, train_max", [("hist", "10,20,30,40"), ("reverse", "10,20,30")])
def test_the_protocol_finds_the_committed_records_of_a_task_that_trains_otherwise_by_default(task, train_max):
    """hist's own training starts its temperature at 10 and reverse's trains a smaller model with
    soft attention; the protocol trains as the paper did (from 3, the paper's model), as every
    committed record of these tasks was trained: `tprog sweep` and `tprog lengthgen` build the
    same trials as before and find them in the ledger."""
    spec, paper = TASKS[task].model, TrainConfig(task=task, **PAPER_TRAINING).resolved()
    assert TrainConfig(task=task).resolved() != paper and (spec.tau_start or spec.short_model)
    assert paper.tau_start == TAU_START != TrainConfig(task="hist").resolved().tau_start
    ledger = Ledger(Path(__file__).resolve().parents[1] / "results")
    parser = cli.build_parser()
    sweep = parser.parse_args(["sweep", task])  # the paper's grid, 5 seeds
    trials = grid_trials(train_config(sweep, task), [2, 3], [4, 8], [2, 4], sweep.seeds)
    lengthgen = parser.parse_args(["lengthgen", task, "--seeds", "3", "--train-max", train_max])
    lengths = length_trials(train_config(lengthgen, task), [task], int_list(train_max, "--train-max", 1),
                            lengthgen.test_extra, lengthgen.seeds)
    assert {(t.config.layers, t.config.heads_cat, t.config.attention) for t in lengths} == {
        (spec.layers, spec.heads_cat, spec.attention)}  # the paper's model, not the task's own
    trials += lengths
    assert len(trials) == 40 + 3 * len(train_max.split(",")) and {trial.config.tau_start for trial in trials} == {3.0}
    missing = [t.name for t in trials if ledger.find(t.experiment, task, t.name, t.config) is None]
    assert missing == []


def test_length_trials_match_the_budgets_optimizer_steps_where_few_inputs_exist():
    """dyck1 at n = 10 has 1,024 strings (910 to train on: two batches an epoch, where a full
    training split of 16,000 takes 32), so its trials run 16 times the task's 100 epochs; a
    cell with inputs enough keeps the budget. The ledger counts the rule's epochs as the
    protocol's, and any other as off it."""
    assert train_split_size(20000, None) == 16000 and train_split_size(20000, 1024) == 910
    base = TrainConfig(task="hist", **PAPER_TRAINING)
    epochs = {}
    for task, n in (("dyck1", 10), ("dyck1", 20), ("hist", 10)):
        trial = length_trials(replace(base, task=task), [task], [n], 10, 1)[0]
        assert off_protocol(trial.config, trial.protocol) == {}
        epochs[task, n] = trial.config.epochs
    assert epochs == {("dyck1", 10): 1600, ("dyck1", 20): 100, ("hist", 10): 50}
    short = length_trials(replace(base, task="dyck1", epochs=3), ["dyck1"], [10], 10, 1)[0]
    assert short.config.epochs == 48 and off_protocol(short.config, short.protocol) == {"epochs": 48}
    # the paper's 250 epochs stand for the protocol only where no rule of the experiment sets them
    assert off_protocol(replace(short.config, epochs=250), short.protocol) == {"epochs": 250}


def test_failing_trial_is_recorded_and_others_finish(ray_session, tmp_path):
    good = grid_trials(TrainConfig(task="hist", epochs=2, n_examples=300), [1], [2], [2], seeds=2)
    broken = replace(good[0].config, extra={"no_such_setting": 1})  # the program model rejects it
    trials = [*good, Trial("broken", {**good[0].labels, "seed": 9}, broken)]
    rows = run_trials(tmp_path, "test", trials, "trials.csv", quiet=True)
    status = {r["trial"]: r for r in rows}
    assert [status[t.name]["status"] for t in good] == ["ok", "ok"]
    assert status["broken"]["status"] == "failed"
    assert "no_such_setting" in status["broken"]["error"] and "\n" not in status["broken"]["error"]
    assert "Traceback" in (tmp_path / "trials" / "broken" / "error.txt").read_text()
    assert "`broken`" in report.failures(rows)
    # Rerunning retries only the failed trial, which keeps its one row.
    stamps = [(tmp_path / "trials" / t.name / "model.safetensors").stat().st_mtime_ns for t in good]
    again = run_trials(tmp_path, "test", trials, "trials.csv", quiet=True)
    assert [r["trial"] for r in read_csv(tmp_path / "trials.csv")] == [t.name for t in trials]
    assert [r["status"] for r in again] == ["ok", "ok", "failed"]
    assert [(tmp_path / "trials" / t.name / "model.safetensors").stat().st_mtime_ns for t in good] == stamps


def test_tiny_length_generalization(ray_session, tmp_path, capsys):
    import matplotlib.image

    out = tmp_path / "length"
    code, stdout, err = tprog(capsys, "lengthgen", "hist,dyck1", "--train-max", "4,5", "--test-extra", "2",
                              "--seeds", "1", *TINY, "--out", str(out), "--no-ledger")
    assert code == 0, (stdout, err)
    rows = {(r["task"], r["n"]): r for r in read_csv(out / "results.csv")}
    assert set(rows) == {("hist", "4"), ("hist", "5"), ("dyck1", "4"), ("dyck1", "5")}
    assert (rows["hist", "5"]["train_lengths"], rows["hist", "5"]["test_lengths"]) == ("1-5", "6-7")
    assert (rows["dyck1", "5"]["train_lengths"], rows["dyck1", "5"]["test_lengths"]) == ("5-5", "10-10")
    assert all(r["status"] == "ok" for r in rows.values())
    for row in rows.values():  # positions cover the longest test sequence: none is mapped to a trained one
        run = load_run(out / "trials" / row["trial"])
        longest_test = max(len(seq) for seq in run.splits.test.inputs)
        longest_train = max(len(seq) for seq in run.splits.train.inputs)
        assert run.config["model"]["max_len"] == longest_test > longest_train
    summary = (out / "summary.md").read_text()
    assert "| hist | 5 | 1-5 | 6-7 | 1/1 |" in summary
    image = matplotlib.image.imread(out / "length_generalization.png")
    assert image.ndim == 3 and image.std() > 0.05
    assert (image[..., :3] < 0.5).mean() > 0.01  # lines and text drawn, not a blank canvas


def test_trials_train_on_the_threads_asked_and_the_ledger_says_so(ray_session, tmp_path, capsys):
    """--threads 2: each trial trains on two torch threads and two Ray CPUs, and its ledger record
    says so (its seconds depend on it); more threads than the cluster has CPUs is one line."""
    ledger = tmp_path / "results"
    common = ["lengthgen", "hist", "--train-max", "4", "--test-extra", "2", *TINY, "--ledger", str(ledger)]
    code, stdout, err = tprog(capsys, *common, "--seeds", "2", "--out", str(tmp_path / "two"), "--threads", "2")
    assert code == 0, (stdout, err)
    assert [record["threads"] for record in Ledger(ledger).records("lengthgen")] == [2, 2]
    code, _, err = tprog(capsys, *common, "--seeds", "3", "--out", str(tmp_path / "three"), "--threads", "3")
    assert code == 2 and err.count("\n") == 1
    assert "--threads 3 asks each trial for 3 CPUs and the Ray cluster has 2" in err
    assert len(Ledger(ledger).records("lengthgen")) == 2  # the third seed was refused, not run


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sweep", "hist", "--layers", ""], "--layers needs at least one value"),
        (["sweep", "hist", "--heads", "2,x"], "comma-separated integers"),
        (["sweep", "nope"], "unknown task 'nope'"),
        (["sweep", "hist", "--seeds", "0"], "--seeds must be at least 1"),
        (["sweep", "hist", "--model", "standard", "--mlps", "2,4"], "one MLP per layer"),
        (["lengthgen", "hist,nope"], "unknown task 'nope'"),
        (["lengthgen", "hist", "--train-max", "0"], "--train-max values must be at least 1"),
        (["lengthgen", "hist", "--train-max", "2"], "too small for hist: lengths 1..2 give only 42"),
        (["lengthgen", "hist", "--seeds", "0"], "--seeds must be at least 1"),
        (["lengthgen", "hist", "--threads", "0"], "--threads must be at least 1"),
        (["lengthgen", "hist", "--train-lengths", "1-4"], "use --train-max"),
        # Ray would retry an unreachable head for minutes, logging warnings: refused in one line instead
        (["lengthgen", "hist", "--address", "127.0.0.1:1"], "no Ray cluster answers at 127.0.0.1:1"),
        (["sweep", "hist", "--address", "head-node"], "--address 'head-node' is not HOST:PORT"),
    ],
)
def test_bad_arguments_give_one_line_errors(argv, message, tmp_path, capsys):
    code, _, err = tprog(capsys, *argv, "--out", str(tmp_path / "out"))
    assert code == 2
    assert err.startswith("tprog: error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "out").exists()  # refused before anything started


@pytest.mark.parametrize("command", [["sweep", "hist", "--layers", "1"], ["lengthgen", "hist", "--train-max", "10"]])
def test_an_experiment_writes_only_into_its_own_directory_and_ledger(command, tmp_path, capsys):
    """A non-empty directory that holds no experiment, a file as --out or a file as --ledger is
    refused in one line before anything is written: no file of the user's is overwritten."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.md").write_text("my notes\n")
    a_file = tmp_path / "a-file"
    a_file.write_text("x\n")
    cases = [(["--out", str(mine)], "is not empty and holds no experiment"),
             (["--out", str(a_file)], "is a file; choose a new or empty --out"),
             (["--out", str(tmp_path / "new"), "--ledger", str(a_file)], "is a file; pass the ledger's directory")]
    for flags, message in cases:
        code, _, err = tprog(capsys, *command, "--seeds", "1", *flags)
        assert code == 2 and err.count("\n") == 1 and message in err
    assert sorted(path.name for path in mine.iterdir()) == ["summary.md"] and (mine / "summary.md").read_text() == "my notes\n"
    assert a_file.read_text() == "x\n" and not (tmp_path / "new").exists()


def test_train_with_seeds_keeps_the_best_by_validation_and_decompiles_it(ray_session, tmp_path, capsys, proof_threads):
    out = tmp_path / "seeds"
    args = ["train", "sort", "--seeds", "0-2", "--epochs", "2", "--n-examples", "120", "--vocab-size", "3",
            "--train-lengths", "1-4", "--layers", "1", "--out", str(out), "--quiet", "--program", "--threads", "2"]
    assert cli.main(args) == 0
    assert proof_threads == [2, 2]  # the kept seed's program.py and program_full.py, proved on --threads
    printed = capsys.readouterr().out
    rows = read_csv(out / "seeds.csv")
    assert sorted(int(row["seed"]) for row in rows) == [0, 1, 2] and all(row["status"] == "ok" for row in rows)
    best = max(rows, key=lambda row: (float(row["val_accuracy"]), -int(row["seed"])))
    kept = out / "trials" / best["trial"]
    assert f"kept by validation: {kept}" in printed and (kept / "program.py").is_file()
    assert "0 disagreements" in printed


def test_seeds_of_a_word_task_read_relative_data_paths(ray_session, tmp_path, capsys, monkeypatch):
    """Ray runs each trial in its own directory, so --data-dir and --embeddings as given (relative
    to where the command ran) must reach the trials resolved."""
    monkeypatch.chdir(Path(__file__).parent)
    out = tmp_path / "seeds"
    args = ["train", "trec", "--seeds", "0-1", "--epochs", "1", "--data-dir", "fixtures/nlp/trec",
            "--embeddings", "fixtures/nlp/vectors.txt", "--out", str(out), "--quiet"]
    assert cli.main(args) == 0, capsys.readouterr()
    rows = read_csv(out / "seeds.csv")
    assert [row["status"] for row in rows] == ["ok", "ok"]
    config = json.loads((out / "trials" / rows[0]["trial"] / "config.json").read_text())["train"]
    assert config["data_dir"] == str(Path("fixtures/nlp/trec").resolve())


def test_protocol_cost_counts_the_trials_a_cell_still_lacks(tmp_path):
    from conftest import load_benchmark

    from transformer_programs.experiments.ledger import make_record

    cost = load_benchmark("protocol_cost")
    trials = cost.cell_trials("dyck1", 10)
    assert [t.name for t in trials] == ["dyck1-n10-s0", "dyck1-n10-s1", "dyck1-n10-s2"]
    assert {t.config.epochs for t in trials} == {1600}  # the protocol's step-matched epochs
    ledger = Ledger(tmp_path / "results")
    assert cost.missing(ledger, trials) == 3
    results = {"val_accuracy": 1.0, "test_accuracy": 0.8, "train_accuracy": 1.0}
    ledger.add(make_record("lengthgen", trials[1].name, trials[1].labels, trials[1].config, results, trials[1].protocol))
    assert cost.missing(ledger, trials) == 2

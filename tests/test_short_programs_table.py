"""The README's short programs table is the one benchmarks/short_programs.py generates from its
committed records, never typed by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import load_benchmark

ROOT = Path(__file__).resolve().parents[1]


def benchmark():
    """benchmarks/short_programs.py, loaded as a module."""
    return load_benchmark("short_programs")


def test_the_readme_table_is_generated_from_the_records() -> None:
    module = benchmark()
    readme = (ROOT / "README.md").read_text()
    block = readme.split(module.TABLE_START, 1)[1].split(module.TABLE_END, 1)[0]
    assert block.strip() == module.table().strip()
    assert block.count("\n| ") >= len(list(module.RECORDS.glob("*-paper.json")))  # a row per recorded seed
    trainings = {row.split(" | ")[2] for row in block.strip().splitlines()[2:]}
    assert all(training == "defaults" or training.endswith("(the paper's)") for training in trainings), trainings


def test_the_table_of_every_arm_is_generated_and_has_a_row_per_record() -> None:
    module = benchmark()
    document = module.EVERY_ARM_DOC.read_text()
    assert document == module.every_arm_document()
    assert document.count("\n| ") - 1 == len(list(module.RECORDS.glob("*.json")))  # less the header


def test_each_bar_is_a_fifth_of_the_papers_length_to_the_nearest_line() -> None:
    bars = {task: benchmark().line_bar(task) for task in benchmark().PAPER_LINES}
    assert bars == {"reverse": 143, "hist": 32, "double_hist": 85, "sort": 127, "most_freq": 133,
                    "dyck1": 178, "dyck2": 147}


PROGRAM = '''"""A Transformer Program."""

import sys

MODEL_SHA256 = "00"
SYMBOLS = {'a', 'b'}


def check(tokens):
    """Raises ValueError unless run() takes `tokens`."""
    if tokens[:1] != ['<s>']:
        raise ValueError("no")


NUM_ATTN_0_0 = {'<s>': 'a',
                'a': 'b'}


def mlp_0_0(x):
    """mlp_0_0 from positions: its value for x, by ranges."""
    return 0 if x <= 2 else 1


def count(queries, keys, predicate):
    """How many j have predicate(queries[i], keys[j]), for each i."""
    return [sum(1 for key in keys if predicate(query, key)) for query in queries]


def run(tokens):
    check(tokens)
    return tokens


if __name__ == "__main__":
    print(run(sys.argv[1:]))
'''


def test_model_lines_count_the_tables_parts_and_run_not_the_frame(tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    assert benchmark().model_lines(program) == 2 + 3 + 3  # the table's two lines, mlp_0_0's three, run()'s three


@pytest.mark.parametrize("pruned, drop, expected", [
    ({"lines": 48, "code_lines": 23}, 0.0, "yes"),  # 48 lines in all, 23 of code: within a bar of 32
    ({"lines": 48, "code_lines": 33}, 0.0, "no"),
    ({"lines": 48, "code_lines": 23}, 0.6, "no"),  # short enough, but lost more than half a point
    ({"lines": 48, "code_lines": 23}, None, "no"),  # no record of the paper's training to compare with
    ({"lines": 30}, 0.0, "yes"),  # no count of code, but the whole program is within the bar
    ({"lines": 48}, 0.0, "not recounted"),
    ({"lines": 48}, 0.6, "no"),
])
def test_the_bar_is_met_by_lines_of_code_within_half_a_point(pruned: dict, drop: float | None, expected: str) -> None:
    assert benchmark().verdict(pruned, drop, 32) == expected


def test_recount_adds_lines_of_code_from_the_runs_and_refuses_a_run_of_another_length(tmp_path: Path, monkeypatch,
                                                                                       capsys) -> None:
    module = benchmark()
    records, runs = tmp_path / "records", tmp_path / "runs"
    monkeypatch.setattr(module, "RECORDS", records)
    record = {"task": "hist", "seed": 0, "arm": "paper", "trained": {"lines": 48}, "pruned": {"lines": 48}}
    module.runio.write_json(module.record_path("hist", 0, "paper"), record)
    module.recount(runs)  # no runs there: the record is left as it is
    assert module.runio.read_json(module.record_path("hist", 0, "paper")) == record
    for name in ("hist-s0-paper", "hist-s0-paper-pruned"):
        (runs / name).mkdir(parents=True)
        (runs / name / "program.py").write_text("x = 1\n")
    monkeypatch.setattr(module, "summary", lambda directory: {"lines": 48, "code_lines": 23, "heads": 1})
    module.recount(runs)
    recounted = module.runio.read_json(module.record_path("hist", 0, "paper"))
    assert recounted["trained"]["code_lines"] == recounted["pruned"]["code_lines"] == 23
    assert recounted["trained"]["heads"] == recounted["pruned"]["heads"] == 1
    module.runio.write_json(module.record_path("hist", 0, "paper"), record)
    monkeypatch.setattr(module, "summary", lambda directory: {"lines": 50, "code_lines": 23, "heads": 1})
    with pytest.raises(SystemExit) as exit_info:
        module.recount(runs)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "not the run it records" in err


def test_table_refuses_a_readme_without_its_markers(tmp_path: Path, capsys) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# a README with no table markers\n")
    with pytest.raises(SystemExit) as exit_info:
        benchmark().main(["table", "--readme", str(readme)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "no short programs table markers" in err
    assert readme.read_text() == "# a README with no table markers\n"


@pytest.mark.parametrize("task, arm, settings, expected", [
    ("hist", "paper", {"sparsity": 0.0, "classifier_step": 0.0}, "defaults"),
    ("hist", "sp0.03-cs0.25", {"sparsity": 0.03, "classifier_step": 0.25},
     "`--sparsity 0.03 --classifier-step 0.25`"),
    # most_freq trains with gates, a step of 1/4 and the best of three starts by default: its paper
    # arm is not its defaults, and neither is an arm of one start
    ("most_freq", "paper", {"sparsity": 0.0, "classifier_step": 0.0},
     "`--sparsity 0 --classifier-step 0` (the paper's)"),
    ("most_freq", "sp0.03-cs0.25-e300-r3", {"sparsity": 0.03, "classifier_step": 0.25, "epochs": 300, "restarts": 3},
     "defaults"),
    ("most_freq", "sp0.03-cs0.25-e300", {"sparsity": 0.03, "classifier_step": 0.25, "epochs": 300},
     "`--sparsity 0.03 --classifier-step 0.25 --restarts 1`"),  # a record made before restarts: one start
    ("most_freq", "sp0-cs0.25", {"sparsity": 0.0, "classifier_step": 0.25}, "`--sparsity 0 --classifier-step 0.25`"),
    # an arm that trains longer than the task's budget says so
    ("reverse", "sp0.03-cs0.25-e140", {"sparsity": 0.03, "classifier_step": 0.25, "epochs": 140},
     "`--sparsity 0.03 --classifier-step 0.25 --epochs 140`"),
    ("reverse", "sp0.03-cs0.25", {"sparsity": 0.03, "classifier_step": 0.25, "epochs": 70},
     "`--sparsity 0.03 --classifier-step 0.25`"),
    ("reverse", "sp0.3-cs0.25-t8-e250", {"sparsity": 0.3, "classifier_step": 0.25, "target_parts": 8, "epochs": 250},
     "`--sparsity 0.3 --classifier-step 0.25 --target-parts 8 --epochs 250`"),
    # sort's gates come with a target and 300 epochs by default: an arm without them says so
    ("sort", "sp0.3-cs0.25-t8-e300", {"sparsity": 0.3, "classifier_step": 0.25, "target_parts": 8, "epochs": 300},
     "defaults"),
    ("sort", "sp0.1-cs0.25-t8-e300", {"sparsity": 0.1, "classifier_step": 0.25, "target_parts": 8, "epochs": 300},
     "`--sparsity 0.1 --classifier-step 0.25`"),
    ("sort", "sp0.2-cs0.25-t8-e250", {"sparsity": 0.2, "classifier_step": 0.25, "target_parts": 8, "epochs": 250},
     "`--sparsity 0.2 --classifier-step 0.25 --epochs 250`"),
    ("sort", "sp0.03-cs0.25", {"sparsity": 0.03, "classifier_step": 0.25, "target_parts": 0, "epochs": 50},
     "`--sparsity 0.03 --classifier-step 0.25 --target-parts 0 --epochs 50`"),
    ("sort", "paper", {"sparsity": 0.0, "classifier_step": 0.0, "target_parts": 0, "epochs": 50},
     "`--sparsity 0 --classifier-step 0` (the paper's)"),
])
def test_a_row_says_defaults_only_where_its_settings_are_the_tasks_defaults(
        task: str, arm: str, settings: dict, expected: str) -> None:
    assert benchmark().training_cell({"task": task, "arm": arm, "config": settings}) == expected


def test_an_arm_that_sets_its_epochs_or_a_target_of_parts_is_another_arm() -> None:
    module = benchmark()
    assert module.arm_name("sort", {"sparsity": 0.0, "classifier_step": 0.0}) == "paper"
    assert module.arm_name("sort", module.PAPER) == "paper"
    assert module.arm_name("hist", {"sparsity": 0.03, "classifier_step": 0.25, "tau_start": 3.0}) == "sp0.03-cs0.25"
    # hist's own training starts the temperature at 10, the paper's at 3
    assert module.arm_name("hist", {"sparsity": 0.0, "classifier_step": 0.0}) == "sp0-cs0-ts10"
    assert module.arm_name("hist", module.PAPER) == "paper"
    assert module.arm_name("reverse", {"sparsity": 0.03, "classifier_step": 0.25, "epochs": 140}) == "sp0.03-cs0.25-e140"
    assert module.arm_name("reverse", {"sparsity": 0.3, "classifier_step": 0.25, "target_parts": 8}) == "sp0.3-cs0.25-t8"
    assert module.arm_name("sort", {"sparsity": 0.1, "classifier_step": 0.25}) == "sp0.1-cs0.25-t8-e300"
    # most_freq's gates bring 300 epochs and three starts; one start is another arm
    assert module.arm_name("most_freq", {"sparsity": 0.03, "classifier_step": 0.25}) == "sp0.03-cs0.25-e300-r3"
    assert module.arm_name("most_freq", {"sparsity": 0.03, "classifier_step": 0.25, "restarts": 1}) == "sp0.03-cs0.25-e300"


def test_the_run_flags_set_the_short_arms_target_epochs_and_initial_temperature() -> None:
    module = benchmark()
    given = module.build_parser().parse_args(
        ["run", "reverse", "--sparsity", "0.05", "--target-parts", "10", "--epochs", "300", "--tau-start", "10"])
    settings = module.short_settings(given)
    assert settings == {"sparsity": 0.05, "classifier_step": 0.25, "target_parts": 10, "epochs": 300, "tau_start": 10.0}
    assert module.arm_name("reverse", settings) == "sp0.05-cs0.25-t10-e300-ts10"
    bare = module.short_settings(module.build_parser().parse_args(["run", "reverse"]))
    assert bare == {"sparsity": 0.03, "classifier_step": 0.25}


def test_a_short_arm_may_train_another_model_size_and_attention() -> None:
    module = benchmark()
    given = module.build_parser().parse_args(
        ["run", "reverse", "--sparsity", "0", "--classifier-step", "0", "--epochs", "250", "--layers", "2",
         "--heads-cat", "2", "--heads-num", "0", "--mlps-cat", "1", "--mlps-num", "0", "--attention", "soft"])
    settings = module.short_settings(given)
    assert settings == {"sparsity": 0.0, "classifier_step": 0.0, "epochs": 250, "layers": 2, "heads_cat": 2,
                        "heads_num": 0, "mlps_cat": 1, "mlps_num": 0, "attention": "soft"}
    assert module.arm_name("reverse", settings) == "sp0-cs0-e250-l2h2+0m1+0-soft"
    assert module.arm_name("reverse", {**module.PAPER, "heads_cat": 4}) == "paper"  # the paper's own size
    assert module.training_cell({"task": "reverse", "arm": "sp0-cs0-e250-l2h2+0m1+0-soft", "config": settings}) == (
        "`--sparsity 0 --classifier-step 0 --epochs 250 --layers 2 --heads-cat 2 --heads-num 0 --mlps-num 0 "
        "--attention soft`")  # reverse's model has 1 categorical MLP a layer already
    with pytest.raises(SystemExit):
        module.build_parser().parse_args(["run", "reverse", "--attention", "hard"])


def test_a_summary_counts_the_attention_heads_among_the_parts(trained, copy_run) -> None:
    from transformer_programs.program.decompile import decompile_run

    module = benchmark()
    run_dir = copy_run(trained(task="hist", epochs=2, n_examples=300))  # 1 layer: 2+2 heads, 1+1 MLPs
    decompile_run(run_dir, quiet=True)
    summary = module.summary(run_dir)
    assert (summary["parts"], summary["parts_of"], summary["heads"]) == (6, 6, 4)
    assert module.parts_cell(summary) == "6 of 6 (4 heads)"
    assert module.parts_cell({"parts": 2, "parts_of": 6, "heads": 1}) == "2 of 6 (1 head)"
    assert module.parts_cell({"parts": 9, "parts_of": 30}) == "9 of 30"  # a record made before heads were counted


@pytest.mark.parametrize("flags, message", [(["--epochs", "0"], "--epochs must be at least 1"),
                                            (["--sparsity", "-1"], "--sparsity must be a finite number")])
def test_run_refuses_bad_settings_before_it_trains(flags, message, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        benchmark().main(["run", "hist", *flags, "--runs", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()

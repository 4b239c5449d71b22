"""The HTML report as a user reads it: corrupt run files named in one line, one-epoch charts with
a point, long tables folded, pruning and the feature-function view on the page."""

from __future__ import annotations

from pathlib import Path

import pytest

from transformer_programs.analysis.report import line_chart, program_html
from transformer_programs.analysis.run_files import pruning_summary
from transformer_programs.cli import main

HIST = dict(task="hist", epochs=1, n_examples=120, vocab_size=3, train_lengths=(1, 4))
FIXTURES = Path(__file__).parent / "fixtures" / "nlp"


@pytest.fixture
def run_dir(trained, copy_run) -> Path:
    return copy_run(trained(**HIST))


@pytest.mark.parametrize(
    "name, content, message",
    [("results.json", '{"train": {"accuracy": 1.0, "exact_match": 1.0}}', 'results.json has no "val" object'),
     ("results.json", '{"train": {"accuracy": "high", "exact_match": 1}, "val": {}, "test": {}}', '"train.accuracy" must be a number'),
     ("metrics.csv", "step,cost\n1,0.5\n", "metrics.csv has no column 'epoch'"),
     ("metrics.csv", "epoch,loss,val_accuracy\n1,abc,0.5\n", "metrics.csv:2: a value that is not a number"),
     ("metrics.csv", b"epoch,loss,val_accuracy\n1,\xff,0.5\n", "metrics.csv is not UTF-8 text")],
)
def test_report_names_a_corrupt_run_file_in_one_line(run_dir, capsys, name, content, message):
    path = run_dir / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert main(["report", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tprog: error: ") and "\n" not in err and message in err, err
    assert not (run_dir / "report.html").exists()


def test_a_one_epoch_chart_shows_its_point():
    chart = line_chart("validation accuracy", [1.0], [0.5])
    assert chart.count("<circle") == 1


def test_long_statements_of_a_program_are_folded_under_their_first_line():
    table = "WORDS = [\n" + "".join(f"    'w{n}',\n" for n in range(40)) + "]\n"
    source = f"import sys\n\n{table}\n\ndef run(tokens):\n    return tokens\n"
    shown = program_html(source)
    assert shown.count("<details>") == 1 and "WORDS = [ ... (42 lines)</summary>" in shown
    assert shown.index("import") < shown.index("<details>") < shown.index("run")
    assert "w39" in shown  # folded, not dropped


def test_a_pruned_run_says_what_pruning_removed():
    results = {"val": {"accuracy": 0.99}, "test": {"accuracy": 0.98},
               "pruning": {"from": "runs/hist", "kept": {"parts": 2, "reads": 1}, "of": {"parts": 6, "reads": 9},
                           "before": {"val": 1.0, "test": 0.995}}}
    assert pruning_summary(results) == ("Pruned from runs/hist: kept 2 of 6 parts and 1 of 9 classifier reads; "
                                        "accuracy val 1.0000 -> 0.9900, test 0.9950 -> 0.9800.")
    assert pruning_summary({"val": {}}) is None


def test_a_word_task_report_shows_its_feature_functions_and_folds_its_word_table(trained, copy_run):
    run = copy_run(trained(task="trec", data_dir=str(FIXTURES / "trec"), embeddings=str(FIXTURES / "vectors.txt"),
                           epochs=1))
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "<h2>Feature functions</h2>" in page and "Embedding variables" in page
    assert "<details><summary>" in page.split("<h2>Program</h2>")[1].split("<h2>")[0]  # the word table, folded
    assert "Not verified" in page

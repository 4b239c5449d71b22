"""Word-task data a user may hand over broken: word vectors, labels and words that spell special
tokens are refused or read as ordinary data, never silently taken; and analysis reads words as
prediction does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import one_line_error

from transformer_programs.analysis.features import markdown_text
from transformer_programs.cli import main
from transformer_programs.runs import load_run
from transformer_programs.tasks import NLP_TASKS, nlp

FIXTURES = Path(__file__).parent / "fixtures" / "nlp"
GOOD = (FIXTURES / "vectors.txt").read_text().splitlines()


@pytest.mark.parametrize(
    "lines, message",
    [([GOOD[0] + " 0.5", *GOOD[1:]], "vectors.txt:1: expected 8 numbers (as most lines hold), got 9"),
     ([*GOOD[:3], "Oslo", *GOOD[3:]], "vectors.txt:4: expected 8 numbers (as most lines hold), got 0"),
     ([GOOD[0].replace("0.1195", "nan"), *GOOD[1:]], "vectors.txt:1: non-finite value in the vector of 'the'"),
     ([GOOD[0].replace("0.1195", "inf"), *GOOD[1:]], "vectors.txt:1: non-finite value"),
     (["the", "a"], "no line holds numbers")],
)
def test_malformed_word_vectors_are_refused_at_read_time(lines, message, tmp_path, capsys):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    assert main(["train", "trec", "--data-dir", str(FIXTURES / "trec"), "--embeddings", str(vectors), "--epochs", "1",
                 "--out", str(out), "--quiet"]) == 2
    assert message in one_line_error(capsys) and not out.exists()


def test_labels_come_from_the_task_and_an_unknown_one_is_refused(tmp_path, capsys):
    data = tmp_path / "trec"
    shutil.copytree(FIXTURES / "trec", data)
    run = tmp_path / "run"
    args = ["train", "trec", "--data-dir", str(data), "--embeddings", str(FIXTURES / "vectors.txt"), "--epochs", "1",
            "--out", str(run), "--quiet"]
    with (data / "TREC.test").open("a", encoding="latin-1") as handle:
        handle.write("ZZZ:new What is new ?\n")
    assert main(args) == 2
    assert "the test split has the label 'ZZZ', not one of the task's (ABBR DESC ENTY HUM LOC NUM)" in one_line_error(capsys)
    lines = (data / "TREC.test").read_text(encoding="latin-1").splitlines()
    (data / "TREC.test").write_text("\n".join([*lines[:-1], "<pad>:x What is <pad> ?"]) + "\n", encoding="latin-1")
    assert main(args) == 2 and "label '<pad>'" in one_line_error(capsys)
    # Only three labels occur in training, yet the vocabulary is the task's six.
    (data / "TREC.test").write_text("\n".join(lines[:-1]) + "\n", encoding="latin-1")
    kept = [line for line in (data / "TREC.train").read_text(encoding="latin-1").splitlines() if line[:3] in ("HUM", "LOC", "NUM")]
    (data / "TREC.train").write_text("\n".join(kept) + "\n", encoding="latin-1")
    assert main(args) == 0
    assert load_run(run).label_vocab.tokens == ("<pad>", "ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")


def test_words_that_spell_special_tokens_are_ordinary_words():
    rows = [(["What", "is", "<pad>", "or", "<s>", "and", "</s>", "?"], "DESC")]
    inputs, labels, _ = nlp.examples(NLP_TASKS["trec"], rows, (1, 30), "train")
    assert inputs[0] == ["<s>", "What", "is", "\\<pad>", "or", "\\<s>", "and", "\\</s>", "?", "</s>"]
    assert labels[0][0] == "DESC"


def test_trace_reads_unknown_words_as_predict_does(trained, capsys):
    run = trained(task="trec", data_dir=str(FIXTURES / "trec"), embeddings=str(FIXTURES / "vectors.txt"), epochs=1)
    words = ["<s>", "What", "Zorblaxian", "lives", "?", "</s>"]
    assert main(["predict", str(run), *words]) == 0
    predicted = capsys.readouterr().out.split()
    assert main(["trace", str(run), *words]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[-1].split()[1:] == predicted  # the trace's prediction row
    assert any(line.startswith("tokens") and "<unk>" in line and "Zorblaxian" not in line for line in table)


def test_words_in_the_features_page_are_shown_literally():
    assert markdown_text("a|b") == "a\\|b"
    assert markdown_text("<img src=x>") == "&lt;img src=x&gt;"
    assert markdown_text("*x* _y_ `z` [w]") == "\\*x\\* \\_y\\_ \\`z\\` \\[w\\]"

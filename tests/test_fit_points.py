"""The classifier refitted as integer points: the fitter on tables whose answer is known, and the
points pass on hand-built programs where refitting does what rounding the model's weights cannot."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
from scipy.optimize import linprog

from test_simplify import D, LABELS, MAX_LEN, VOCAB, every_input, hand_built, rows, same_predictions
from transformer_programs.program import generate
from transformer_programs.program.classifier_forms import as_points
from transformer_programs.program import fit_points
from transformer_programs.program.fit_points import PointFitter
from transformer_programs.program.ir import Classifier, NumericalAttention, Program
from transformer_programs.program.simplify import lines, with_values
from transformer_programs.tasks import InputSpace

BOTH = np.array([[a, b] for a in range(3) for b in range(3)])  # every joint value of two reads of 3 values


def scores_label(classifier: Classifier, values: np.ndarray, names: list[str]) -> np.ndarray:
    """Label ids the classifier gives each row of `values` (its reads' joint values)."""
    score = np.tile(np.asarray(classifier.bias), (len(values), 1))
    for column, name in enumerate(names):
        if name in classifier.numerical:
            score += np.outer(values[:, column], classifier.numerical[name])
        elif name in classifier.categorical:
            score += np.asarray(classifier.categorical[name])[values[:, column]]
    return score[:, 1:].argmax(1) + 1


def fitter(labels: np.ndarray) -> PointFitter:
    """A fitter on BOTH's joint values with `labels`, checking its points by their scores."""
    def same(classifier: Classifier) -> bool:
        return bool(np.array_equal(scores_label(classifier, BOTH, ["a", "b"]), labels))

    return PointFitter(["a", "b"], BOTH, labels, len(LABELS), {"a": 3, "b": 3}, same)


def test_points_that_give_every_label_are_small_integers():
    labels = np.where(BOTH[:, 0] > BOTH[:, 1], 1, np.where(BOTH[:, 0] == BOTH[:, 1], 2, 3))  # a > b, a = b, a < b
    fit = fitter(labels)
    assert fit.feasible(["a", "b"], set())
    points = fit.points(["a", "b"], set())
    assert points is not None
    np.testing.assert_array_equal(scores_label(points, BOTH, ["a", "b"]), labels)
    weights = [w for table in points.categorical.values() for row in table for w in row] + points.bias
    assert all(float(w).is_integer() and abs(w) <= 10 for w in weights)


def test_labels_no_points_can_give_are_refused():
    xor = 1 + ((BOTH[:, 0] > 0) ^ (BOTH[:, 1] > 0))  # not a sum of a part for a and a part for b
    fit = fitter(xor)
    assert not fit.feasible(["a", "b"], set())
    assert fit.points(["a", "b"], set()) is None
    assert not fitter(BOTH[:, 0] % 2 + 1).feasible(["b"], set())  # the label needs a


def test_a_program_presolve_stalls_on_is_solved_without_it(monkeypatch):
    # HiGHS's presolve ran past any time limit on one of reverse's programs that it solves in
    # seconds without presolve: a run past the limit (status 1) is tried again without it
    calls = []

    def stalling(**problem):
        calls.append(problem["options"].get("presolve", True))
        if calls[-1]:
            return SimpleNamespace(status=1)
        return linprog(**problem)

    monkeypatch.setattr(fit_points, "linprog", stalling)
    labels = np.where(BOTH[:, 0] > BOTH[:, 1], 1, np.where(BOTH[:, 0] == BOTH[:, 1], 2, 3))
    points = fitter(labels).points(["a", "b"], set())
    assert points is not None and False in calls
    np.testing.assert_array_equal(scores_label(points, BOTH, ["a", "b"]), labels)


def points_pass(program: Program, space: InputSpace) -> tuple[Program, Program]:
    """`program` with its exact values on `space`, and the points pass on it."""
    inputs = every_input(program, space)
    with_space = with_values(replace(program, input_space=space), inputs)
    return with_space, as_points(with_space, inputs, lines)


def test_a_read_the_weights_needed_only_as_a_bias_is_dropped(tmp_path):
    # '<s>' and 'a' -> x, 'b' -> y by 0.5, 'c' -> z; every position adds 0.6 to x, so 'b' -> x as well:
    # without positions, rounding the weights would change b's label; refitted, a bias does it
    position_rows = [[0.0, 0.6, 0.0, 0.0] for _ in range(D)]
    token_rows = rows(0, 1, 1, 2, 3, 0, 0, 0)
    token_rows[VOCAB.index("b")] = [0.0, 0.0, 0.5, 0.0]
    program = hand_built([], {"tokens": token_rows, "positions": position_rows}, {})
    space = InputSpace(("a", "b", "c"), 1, MAX_LEN - 1, False)
    before, after = points_pass(program, space)
    assert set(after.classifier.categorical) == {"tokens"} and not after.classifier.numerical
    code = generate(after)
    assert "'positions'" not in code and "[0, 0, 0]" not in code  # no read of positions, no row of no points
    same_predictions(before, after, tmp_path, every_input(program, space))


def test_a_count_read_a_row_per_value_is_refitted_as_a_number(tmp_path):
    count = NumericalAttention("num_attn_0_0", "tokens", "tokens", "ones", [VOCAB.index("a")] * D, False)
    by_count = [[0.0, 1.0, 0.0, 0.0] if n <= 2 else [0.0, 0.0, 1.0, 0.0] for n in range(MAX_LEN + 1)]  # x up to 2 a's
    program = hand_built([count], {"num_attn_0_0": by_count}, {"num_attn_0_0": "number"})
    space = InputSpace(("a", "b"), 1, MAX_LEN - 1, False)
    before, after = points_pass(program, space)
    assert list(after.classifier.numerical) == ["num_attn_0_0"] and not after.classifier.categorical
    assert lines(after) < lines(before)
    same_predictions(before, after, tmp_path, every_input(program, space))


def test_the_quick_refusal_of_a_read_never_contradicts_the_exact_check() -> None:
    """Dropping a read: `provably_changed` only says so where the exact check agrees, and
    `same_without` is the exact check, on every case of the shared table, with the model's float
    weights and rounded to integers (where ties are common)."""
    from test_program import CASES, build, inputs_for, padded
    from transformer_programs.program.classifier_forms import _joint_states, _LabelCheck, _rounded, _state_trace, _without
    from transformer_programs.program.ir import classifier_reads

    refused = 0
    for name, arch in CASES.items():
        _, program = build(sum(map(ord, name)), **arch)
        program = with_values(program, None)
        states = _joint_states(program, padded(inputs_for(program, 300, seed=1)), [])
        for classifier in (program.classifier, _rounded(program.classifier, 4)):
            shown = replace(program, classifier=classifier)
            check = _LabelCheck(shown, _state_trace(shown, states), _joint_states(shown, padded(inputs_for(
                program, 300, seed=1)), []).labels)
            for read in classifier_reads(shown):
                exact = check.same(_without(classifier, read))
                assert check.same_without(classifier, read) == exact, (name, read)
                refused += check.provably_changed(classifier, read)
                assert not (check.provably_changed(classifier, read) and exact), (name, read)
    assert refused > 20  # the quick bound does turn reads down

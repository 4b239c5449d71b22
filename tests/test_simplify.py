"""Simplification: each pass on a hand-built program whose rewrite is known, and the shared case
table simplified with no disagreement against the model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from test_program import CASES, build, inputs_for, padded
from transformer_programs.program import generate, run_batch, simplify, verify
from transformer_programs.program.domains import position_domains, value_domains
from transformer_programs.program.interpret import traces
from transformer_programs.program.ir import (
    CategoricalAttention,
    CategoricalMLP,
    Classifier,
    Layer,
    NumericalAttention,
    Program,
    Rules,
    Variable,
)
from transformer_programs.program.simplify import encode_space, fold_constant_reads, fold_constants, remove_dead
from transformer_programs.program.verify import load_program
from transformer_programs.tasks import InputSpace

VOCAB = ["<pad>", "<s>", "a", "b", "c", "d", "e", "f"]  # 8 token ids, 6 positions: values 6 and 7 no position
LABELS = ["<pad>", "x", "y", "z"]
MAX_LEN = 6
D = 8


def hand_built(components: list, reads: dict[str, list[list[float]]], kinds: dict[str, str]) -> Program:
    """One layer of `components` and a weights classifier over `reads` (variable -> [value][label])."""
    variables = [Variable("tokens", False, "token"), Variable("positions", False, "position"),
                 Variable("ones", True, "number", 1)]
    variables += [Variable(c.name, isinstance(c, NumericalAttention), kinds[c.name],
                           MAX_LEN if isinstance(c, NumericalAttention) else None) for c in components]
    layer = Layer([c for c in components if isinstance(c, CategoricalAttention)],
                  [c for c in components if isinstance(c, NumericalAttention)],
                  [c for c in components if isinstance(c, CategoricalMLP)], [])
    classifier = Classifier(bias=[0.0] * len(LABELS), categorical=reads, numerical={})
    return Program(VOCAB, LABELS, MAX_LEN, D, variables, [], [layer], classifier)


def rows(*labels_of_value: int) -> list[list[float]]:
    """Classifier rows over the value space: value v scores 1.0 for label labels_of_value[v]."""
    table = [[0.0] * len(LABELS) for _ in range(D)]
    for value, label in enumerate(labels_of_value):
        table[value][label] = 1.0
    return table


def every_input(program: Program, space: InputSpace | None = None) -> np.ndarray:
    """Every input of `space`, or every sequence of a, b, c after <s> up to MAX_LEN."""
    return encode_space(program, space or InputSpace(("a", "b", "c"), 0, MAX_LEN - 1, False))


def same_predictions(first: Program, second: Program, tmp_path: Path, inputs: np.ndarray) -> None:
    """The interpreter on both programs and the second's generated code agree on every input."""
    expected = run_batch(first, inputs)[0]
    np.testing.assert_array_equal(run_batch(second, inputs)[0] * (inputs != 0), expected * (inputs != 0))
    path = tmp_path / "simple.py"
    path.write_text(generate(second), encoding="utf-8")
    module = load_program(path)
    for row, labels in zip(inputs, expected):
        tokens = [second.input_vocab[i] for i in row if i != 0]
        assert module.run(tokens) == [LABELS[i] for i in labels[: len(tokens)]]


def test_a_shift_predicate_prints_as_k_equals_q_minus_1(tmp_path):
    shift = CategoricalAttention("attn_0_0", "positions", "positions", "tokens", [7, 0, 1, 2, 3, 4, 5, 6], False)
    program = hand_built([shift], {"attn_0_0": rows(1, 1, 2, 3, 1, 2, 3, 1)}, {"attn_0_0": "token"})
    code = generate(program)
    assert "select_closest(positions, positions, lambda q, k: k == q - 1)" in code
    same_predictions(program, program, tmp_path, every_input(program))


def test_a_reflection_predicate_prints_as_k_equals_c_minus_q(tmp_path):
    # query q looks for key 5 - q (positions 0..5 reversed), but for query 5, which looks for 3
    mirror = CategoricalAttention("attn_0_0", "positions", "positions", "tokens", [5, 4, 3, 2, 1, 3, 7, 7], False)
    program = hand_built([mirror], {"attn_0_0": rows(1, 1, 2, 3, 1, 2, 3, 1)}, {"attn_0_0": "token"})
    code = generate(program)
    assert "select_closest(positions, positions, lambda q, k: k == ATTN_0_0.get(q, 5 - q))" in code
    assert "ATTN_0_0 = {5: 3}" in code
    same_predictions(program, program, tmp_path, every_input(program))


def test_an_unreachable_branch_disappears(tmp_path):
    # '<s>' looks for 'a', a -> b, b -> c, c -> a, d -> a, e -> b, f -> c: no closed form fits
    predicate = [0, 2, 3, 4, 2, 2, 3, 4]
    head = CategoricalAttention("attn_0_0", "tokens", "tokens", "positions", predicate, False)
    program = hand_built([head], {"attn_0_0": rows(1, 2, 3, 1, 2, 3, 1, 2)}, {"attn_0_0": "position"})
    assert "'e': 'b'" in generate(program)  # every token can occur: 'e' keeps its entry
    space = InputSpace(("a", "b", "c"), 1, 4, False)
    simple = simplify(program, space)
    assert simple.variable("tokens").values == [1, 2, 3, 4]  # '<s>', 'a', 'b', 'c'
    code = generate(simple)
    assert "'d'" not in code and "'e'" not in code  # tokens the space never holds
    same_predictions(program, simple, tmp_path, every_input(program, space))


def test_a_constant_variable_folds_into_its_reader(tmp_path):
    constant = CategoricalMLP("mlp_0_0", "tokens", "positions", [[4] * D for _ in range(D)])  # always 4
    reader = CategoricalAttention("attn_0_1", "mlp_0_0", "tokens", "positions", [0, 1, 2, 3, 5, 5, 6, 7], False)
    program = hand_built([reader, constant], {"attn_0_1": rows(1, 2, 3, 1, 2, 3, 1, 2)},
                         {"mlp_0_0": "abstract", "attn_0_1": "position"})
    program.layers = [Layer([], [], [constant], []), Layer([reader], [], [], [])]
    program.variables = [program.variable(n) for n in ("tokens", "positions", "ones", "mlp_0_0", "attn_0_1")]
    program.classifier.categorical = {"attn_0_1": rows(1, 2, 3, 1, 2, 3, 1, 2)}
    simple = simplify(program, checks=every_input(program))
    assert "mlp_0_0" not in [v.name for v in simple.variables]
    code = generate(simple)
    assert "mlp_0_0" not in code
    assert "select_closest(tokens, tokens, lambda q, k: k == 'd')" in code  # every query looks for value 5
    same_predictions(program, simple, tmp_path, every_input(program))


def test_a_count_of_matching_keys_prints_as_count_without_ones(tmp_path):
    counter = NumericalAttention("num_attn_0_0", "tokens", "tokens", "ones", [VOCAB.index("a")] * D, True)
    program = hand_built([counter], {}, {"num_attn_0_0": "number"})
    program.classifier.numerical = {"num_attn_0_0": [0.0, -1.0, 1.0, 0.0]}
    program.classifier.bias = [0.0, 1.5, 0.0, 0.0]
    code = generate(program)
    assert "    num_attn_0_0_outputs = count(tokens, tokens, lambda q, k: k == 'a', causal=True)\n" in code
    assert "ones = " not in code and "numerical_aggregate" not in code
    same_predictions(program, program, tmp_path, every_input(program))


def count_then_sum(weights: list[float]) -> Program:
    """Counts of 'a' up to each position (layer 0), then their sum up to each position (layer 1),
    which the classifier reads with `weights`."""
    a = VOCAB.index("a")
    count = NumericalAttention("num_attn_0_0", "tokens", "tokens", "ones", [a] * D, True)
    total = NumericalAttention("num_attn_1_0", "tokens", "tokens", "num_attn_0_0", [a] * D, True)
    program = hand_built([count], {}, {"num_attn_0_0": "number"})
    program.variables.append(Variable("num_attn_1_0", True, "number", MAX_LEN ** 2))
    program.layers.append(Layer([], [total], [], []))
    program.classifier.numerical = {"num_attn_1_0": weights}
    return program


def test_counts_print_as_sums_of_ones_where_numerical_aggregate_is_printed_anyway_and_that_is_shorter(tmp_path):
    program = count_then_sum([0.0, -1.0, 1.0, 0.0])
    program.classifier.bias = [0.0, 4.5, 0.0, 0.0]
    code = generate(program)
    assert "def count(" not in code and "    ones = [1] * len(tokens)\n" in code
    assert "num_attn_0_0_outputs = numerical_aggregate(tokens, tokens, lambda q, k: k == 'a',\n" in code
    assert code.count("ones, causal=True)") == 1
    same_predictions(program, program, tmp_path, every_input(program))


def constant_read(constant_row: list[float]) -> Program:
    """A classifier reading tokens and mlp_0_0, an MLP whose output is always 4 and whose row
    for 4 is `constant_row`."""
    constant = CategoricalMLP("mlp_0_0", "tokens", "positions", [[4] * D for _ in range(D)])
    by_token = [[0.0, 0.25 * v, 1.0 - 0.375 * (v % 3), 0.5] for v in range(D)]
    program = hand_built([constant], {"tokens": by_token, "mlp_0_0": [list(constant_row)] * D}, {"mlp_0_0": "abstract"})
    program.classifier.bias = [0.0, 0.0, 1.0, 0.0]
    return fold_constants(program)


def test_a_constant_the_classifier_reads_joins_the_bias(tmp_path):
    program = constant_read([0.0, 0.125, 2.0**-30, -0.75])
    folded = remove_dead(fold_constant_reads(program))
    assert list(folded.classifier.categorical) == ["tokens"]
    assert folded.classifier.bias == [0.0, 0.125, 1.0 + 2.0**-30, -0.75]  # no float32: printed as float64
    code = generate(folded)
    assert "mlp_0_0" not in code and "CLASSIFIER_BIAS = [0.125, 1.0000000009313226, -0.75]" in code
    same_predictions(program, folded, tmp_path, every_input(program))


def test_a_constant_stays_where_moving_its_row_could_round_a_score_differently():
    program = constant_read([0.0, 2.0**-60, 0.0, 0.0])  # 1.0 + 2**-60 is not a float64
    assert fold_constant_reads(program) == program


def test_a_classifier_that_depends_on_one_variable_prints_as_a_table(tmp_path):
    copy = CategoricalAttention("attn_0_0", "tokens", "tokens", "positions", [0, 1, 2, 3, 4, 5, 6, 7], False)
    program = hand_built([copy], {"tokens": rows(0, 1, 2, 3, 3, 2, 1, 1), "attn_0_0": [[0.0] * 4] * D},
                         {"attn_0_0": "position"})
    simple = simplify(program, checks=every_input(program))
    assert isinstance(simple.classifier, Rules) and simple.classifier.reads == ["tokens"]
    assert [v.name for v in simple.variables] == ["tokens", "positions", "ones"]  # the head was read for nothing
    code = generate(simple)
    assert "CLASSIFIER = {" in code and "struct" not in code
    same_predictions(program, simple, tmp_path, every_input(program))


@pytest.mark.parametrize("name", list(CASES))
def test_the_case_table_simplified_agrees_with_the_model(name: str, tmp_path: Path) -> None:
    model, program = build(sum(map(ord, name)), **CASES[name])
    inputs = inputs_for(program, 300, seed=7)
    simple = simplify(program, checks=padded(inputs))
    path = tmp_path / "simple.py"
    path.write_text(generate(simple), encoding="utf-8")
    report = verify(model, simple, path, inputs)
    assert report.disagreements == 0, report.first_disagreement
    assert generate(simple).count("\n") <= generate(program).count("\n")
    space = InputSpace(("a", "b", "c"), 1, min(4, program.max_len - 1), False)
    on_space = simplify(program, space)
    path.write_text(generate(on_space), encoding="utf-8")
    report = verify(model, on_space, path, encode_space(program, space))
    assert report.disagreements == 0, report.first_disagreement


def test_a_duplicate_part_is_merged_into_the_first(tmp_path):
    """attn_0_1 computes exactly what attn_0_0 does; the classifier reads one, an MLP the other."""
    heads = [CategoricalAttention(f"attn_0_{h}", "positions", "positions", "tokens", [7, 0, 1, 2, 3, 4, 5, 6], False)
             for h in range(2)]
    mlp = CategoricalMLP("mlp_1_0", "attn_0_1", "attn_0_1", [[(a + 1) % D] * D for a in range(D)])
    program = hand_built([*heads, mlp], {"attn_0_0": rows(1, 1, 2, 3, 1, 2, 3, 1), "mlp_1_0": rows(1, 2, 1, 3, 2, 1, 1, 2)},
                         {"attn_0_0": "token", "attn_0_1": "token", "mlp_1_0": "abstract"})
    program.layers = [Layer(heads, [], [], []), Layer([], [], [mlp], [])]
    simple = simplify(program, InputSpace(("a", "b", "c"), 1, 4, False))
    names = [v.name for v in simple.variables]
    assert "attn_0_0" in names and "attn_0_1" not in names  # the MLP, if kept, reads attn_0_0
    assert all("attn_0_1" not in (c.first, c.second) for layer in simple.layers for c in layer.mlps)
    same_predictions(program, simple, tmp_path, every_input(program, InputSpace(("a", "b", "c"), 1, 4, False)))


def test_a_pass_that_changes_a_prediction_is_named(monkeypatch):
    import importlib
    from dataclasses import replace

    simplify_module = importlib.import_module("transformer_programs.program.simplify")  # the module, not the function

    copy = CategoricalAttention("attn_0_0", "tokens", "tokens", "positions", [0, 1, 2, 3, 4, 5, 6, 7], False)
    program = hand_built([copy], {"tokens": rows(0, 1, 2, 3, 3, 2, 1, 1)}, {"attn_0_0": "position"})
    always_z = lambda p: replace(p, classifier=replace(p.classifier, bias=[0.0, 0.0, 0.0, 100.0]))  # noqa: E731
    monkeypatch.setattr(simplify_module, "fold_constants", always_z)
    with pytest.raises(simplify_module.SimplifyError, match="pass 'fold constants' changed the prediction on"):
        simplify(program, checks=every_input(program))


def test_a_causal_sum_of_counts_is_bounded_by_the_positions_it_reads():
    """Counts of 'a' up to each position, then their sum up to each position: at most
    1 + 2 + ... + 6 = 21 over 6 positions, not 6 * 6; and what the interpreter computes lies within."""
    program = count_then_sum([0.0, 1.0, -1.0, 0.0])
    domains = value_domains(program)
    assert domains["num_attn_0_0"] == list(range(MAX_LEN + 1)) and domains["num_attn_1_0"] == list(range(22))
    inputs = every_input(program, InputSpace(("a", "b"), 0, MAX_LEN - 1, False))
    for valid, trace in traces(program, inputs):
        for name, values in trace.items():
            assert set(np.unique(values[valid]).tolist()) <= set(domains[name]), name
    assert max(trace["num_attn_1_0"].max() for _, trace in traces(program, inputs)) == 15  # all 'a' after <s>


def test_a_count_is_zero_at_positions_where_no_key_can_match_and_its_sum_bounded_by_the_rest():
    """Counts of 'a' asked only at positions 1 and 2 (elsewhere for '<pad>', which no real position
    holds), then their sum: at most 2 + 3 = 5, not 21; and what the interpreter computes lies within."""
    program = count_then_sum([0.0, 1.0, -1.0, 0.0])
    count = program.layers[0].numerical_attention[0]
    count.query, count.predicate = "positions", [0, VOCAB.index("a"), VOCAB.index("a"), 0, 0, 0, 0, 0]
    at = position_domains(program)
    assert at["num_attn_0_0"] == [{0}, {0, 1, 2}, {0, 1, 2, 3}, {0}, {0}, {0}]
    assert value_domains(program)["num_attn_1_0"] == list(range(6))
    inputs = every_input(program, InputSpace(("a", "b"), 0, MAX_LEN - 1, False))
    for valid, trace in traces(program, inputs):
        for name, values in trace.items():
            for i in range(MAX_LEN):
                assert set(np.unique(values[:, i][valid[:, i]]).tolist()) <= at[name][i], (name, i)
    assert max(trace["num_attn_1_0"].max() for _, trace in traces(program, inputs)) == 3  # 'a' at 1 and 2


def test_an_attention_head_reads_no_farther_than_a_key_certain_to_match():
    """A key that is 1 at position 2 and wherever the token is 'a': a causal head looking for 1
    reads, from position 2 on, no farther back than position 2; before it, any earlier position,
    or position 0 when none matches. A head for the previous position reads exactly it."""
    a = VOCAB.index("a")
    is_1 = [[int(p == 2 or t == a) for p in range(D)] for t in range(D)]
    key = CategoricalMLP("mlp_0_0", "tokens", "positions", is_1)
    program = hand_built([key], {}, {"mlp_0_0": "abstract"})
    looks_for_1 = CategoricalAttention("attn_1_0", "tokens", "mlp_0_0", "positions", [1] * D, True)
    previous = CategoricalAttention("attn_1_1", "positions", "positions", "positions", [0, 0, 1, 2, 3, 4, 5, 6], True)
    program.variables += [Variable("attn_1_0", False, "position"), Variable("attn_1_1", False, "position")]
    program.layers.append(Layer([looks_for_1, previous], [], [], []))
    at = position_domains(program)
    assert at["attn_1_0"] == [{0}, {0, 1}, {2}, {2, 3}, {2, 3, 4}, {2, 3, 4, 5}]
    assert at["attn_1_1"] == [{0}, {0}, {1}, {2}, {3}, {4}]
    for valid, trace in traces(program, every_input(program)):
        for i in range(MAX_LEN):
            assert set(np.unique(trace["attn_1_0"][:, i][valid[:, i]]).tolist()) <= at["attn_1_0"][i]


def test_targets_a_query_cannot_see_print_as_the_shift_they_break(tmp_path: Path) -> None:
    """A causal head for the previous position whose positions 0 and 1 look for later keys: a head
    that copies reads position 0 either way, so it prints as `k == q - 1`; a count would count
    position 0 for `q - 1` at position 1, so that exception stays."""
    previous = [5, 4, 1, 2, 3, 4, 5, 6]
    copies = CategoricalAttention("attn_0_0", "positions", "positions", "tokens", previous, True)
    counts = NumericalAttention("num_attn_0_0", "positions", "positions", "ones", previous, True)
    kinds = {"attn_0_0": "token", "num_attn_0_0": "number"}
    program = hand_built([copies, counts], {"attn_0_0": rows(0, 1, 2, 3, 1, 2, 3, 1)}, kinds)
    program.classifier.numerical = {"num_attn_0_0": [0.0, 0.5, -0.25, 0.0]}
    code = generate(program)
    assert "lambda q, k: k == q - 1, causal=True)" in code and "\nATTN_0_0 = " not in code
    assert "NUM_ATTN_0_0 = {1: None}" in code
    same_predictions(program, program, tmp_path, every_input(program))


def test_a_program_defined_on_an_input_space_has_its_tokens_where_the_space_puts_them(tmp_path: Path) -> None:
    """'<s>' only at position 0, so a head that copies from the '<s>' key reads position 0, and a
    table of token and position that is the position but for '<s>' after position 0 is the position."""
    space = InputSpace(("a", "b"), 1, MAX_LEN - 2, True)
    bos = CategoricalAttention("attn_0_0", "tokens", "tokens", "positions", [VOCAB.index("<s>")] * D, False)
    position = [[7 if t == VOCAB.index("<s>") and p > 0 else p for p in range(D)] for t in range(D)]
    mlp = CategoricalMLP("mlp_0_0", "tokens", "positions", position)
    reads = {"attn_0_0": rows(0, 1, 2, 3, 1, 2, 3, 1), "mlp_0_0": rows(1, 2, 3, 1, 2, 3, 1, 2)}
    program = hand_built([bos, mlp], reads, {"attn_0_0": "position", "mlp_0_0": "position"})
    program.input_vocab = [*VOCAB[:-1], "</s>"]
    program = replace(program, input_space=space)
    ids = [{program.input_vocab.index(token) for token in tokens} for tokens in
           [["<s>"], ["a", "b"], ["a", "b", "</s>"], ["a", "b", "</s>"], ["a", "b", "</s>"], ["</s>"]]]
    assert position_domains(program)["tokens"] == ids
    code = generate(program)
    assert "attn_0_0_outputs = [positions[0]] * len(tokens)  # no key ever matches" in code
    assert "mlp_0_0_outputs = list(positions)" in code
    same_predictions(program, program, tmp_path, every_input(program, space))


@pytest.mark.parametrize("name", list(CASES))
def test_every_value_the_interpreter_computes_lies_in_its_domain_at_its_position(name: str) -> None:
    _, program = build(sum(map(ord, name)), **CASES[name])
    at = position_domains(program)
    for valid, trace in traces(program, padded(inputs_for(program, 300, seed=3))):
        for variable, values in trace.items():
            for i in range(values.shape[1]):
                assert set(np.unique(values[:, i][valid[:, i]]).tolist()) <= at[variable][i], (variable, i)

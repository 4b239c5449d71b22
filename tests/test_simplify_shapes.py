"""Model shapes on which the simplifier once crashed, each found by fuzzing random models:
simplified, generated and verified on every input of an input space."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from test_program import build
from transformer_programs.program import generate, simplify, verify
from transformer_programs.program.classifier_forms import as_points
from transformer_programs.program.domains import value_domains
from transformer_programs.program.simplify import encode_space, lines
from transformer_programs.program.verify import load_program
from transformer_programs.tasks import InputSpace

SHAPES = {
    # A classifier reading a numerical MLP of a count, whose points are sized by the count's values
    # at real positions; padded positions, whose queries read the untrained pad row, count past them.
    "count_table_read_at_padding": (397, 2, dict(layers=1, heads_cat=1, heads_num=1, mlps_cat=0, mlps_num=2,
                                                 causal=True, max_len=4, tokens_variable=True)),
    # A per-position classifier with no `tokens` variable (the shape of conll_ner).
    "no_tokens_variable": (0, 3, dict(layers=2, heads_cat=0, heads_num=1, mlps_cat=1, mlps_num=1, causal=False,
                                      max_len=5, tokens_variable=False)),
}


@pytest.mark.parametrize("name", SHAPES)
def test_the_shape_simplifies_and_stays_equal_to_its_model(name: str, tmp_path: Path) -> None:
    seed, symbols, arch = SHAPES[name]
    tokens = ["<s>", *"abcd"[:symbols]]
    model, program = build(seed, tokens=tokens, labels=["x", "y", "z"], **arch)
    space = InputSpace(tuple(tokens[1:]), 1, arch["max_len"] - 1, False)
    simple = simplify(program, space)
    path = tmp_path / "program.py"
    path.write_text(generate(simple), encoding="utf-8")
    report = verify(model, simple, path, encode_space(program, space))
    assert report.disagreements == 0 and report.inputs == space.size(), report.first_disagreement


def test_symbols_that_end_a_docstring_or_escape_are_written_literally(tmp_path: Path) -> None:
    tokens = ["<s>", '"""', "\\", "\\N", "a"]
    model, program = build(3, tokens=tokens, labels=["x", "y"], layers=1, heads_cat=1, heads_num=0, mlps_cat=0,
                           mlps_num=0, max_len=4)
    space = InputSpace(tuple(tokens[1:]), 1, 3, False)
    simple = simplify(program, space)
    path = tmp_path / "program.py"
    path.write_text(generate(simple), encoding="utf-8")
    module = load_program(path)  # compiles
    assert "'\"\"\"' '\\\\' '\\\\N' 'a'" in module.__doc__.replace("\n", " ")  # the symbols, as repr writes them
    report = verify(model, simple, path, encode_space(program, space))
    assert report.disagreements == 0, report.first_disagreement


def test_positions_no_input_reaches_take_no_value(tmp_path: Path) -> None:
    model, program = build(0, tokens=["<s>", "a", "b"], labels=["x", "y", "z"], layers=1, heads_cat=1, heads_num=1,
                           mlps_cat=1, mlps_num=0, max_len=8)
    on_space = replace(program, input_space=InputSpace(("a", "b"), 1, 3, False))  # no values listed
    domains = value_domains(on_space)
    assert domains["positions"] == [0, 1, 2, 3] and domains["ones"] == [1]
    assert max(domains["num_attn_0_0"]) <= 4  # a count over at most four positions
    for seed in range(12):  # one of these crashed the points with a KeyError for position 4
        _, program = build(seed, tokens=["<s>", "a", "b"], labels=["x", "y", "z"], layers=1, heads_cat=1,
                           heads_num=1, mlps_cat=1, mlps_num=0, max_len=8)
        as_points(replace(program, input_space=on_space.input_space), None, lines)

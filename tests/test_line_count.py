"""Lines of code, counted as the paper counted its programs: no blank lines, comments or
docstrings."""

from __future__ import annotations

import pytest

from transformer_programs.program.line_count import code_lines

SOURCE = '''"""A module docstring
over two lines."""

import sys  # a comment after code is still code

# a comment alone


def f(x):
    """A docstring."""
    text = """a string that is not a docstring,

    over three lines"""
    return [x,
            # a comment inside brackets
            text]


class C:
    """Another docstring."""

    value = "#not a comment"
'''


def test_code_is_what_is_neither_blank_nor_comment_nor_docstring() -> None:
    # import, def, text = (its three lines less the blank one), return over two lines, class, value
    assert code_lines(SOURCE) == 1 + 1 + 2 + 2 + 1 + 1


@pytest.mark.parametrize("source, expected", [
    ("", 0),
    ("x = 1\n", 1),
    ("x = 1", 1),  # no final newline
    ("# only a comment\n\n", 0),
    ('"""only a docstring"""\n', 0),
    ('x = 1\n"""a string after code is a statement, not a docstring"""\n', 2),
])
def test_edge_cases(source: str, expected: int) -> None:
    assert code_lines(source) == expected


def test_blank_lines_and_section_comments_inside_a_function_are_not_code() -> None:
    program = "import numpy as np\n\n\ndef run(tokens):\n    # attn_0_0 ####\n    x = tokens\n\n    return x\n"
    assert code_lines(program) == 4


def test_source_that_is_not_python_is_refused() -> None:
    with pytest.raises(ValueError, match="not Python source"):
        code_lines("def f(:\n")

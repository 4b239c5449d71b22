"""Counting a program's lines of code the way the paper counted its programs' lengths.

A program's length, where it is set against the paper's (its Table 4), is its lines of code:
not blank, not only a comment, and not a docstring. That is the count `cloc` makes, and the
only count tried that gives a figure of that table from the authors' released programs: their
hist program has 195 lines, 160 of them code, and Table 4 gives hist 160 compressed lines (the
other released programs match no figure of the table, so they are other runs). The generated
programs carry docstrings and an input check the paper's programs do not have, so their whole
length (every newline) is reported beside it.
"""

from __future__ import annotations

import ast
import io
import tokenize

_NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
             tokenize.ENCODING, tokenize.ENDMARKER}


def docstring_lines(tree: ast.Module) -> set[int]:
    """The line numbers of every docstring: a string that is the first statement of the module,
    a class or a function."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def code_lines(source: str) -> int:
    """How many lines of `source` (Python) are code: they hold a token other than a comment, are
    not blank, and are not part of a docstring. ValueError if `source` is not Python."""
    try:
        tree = ast.parse(source)
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (SyntaxError, tokenize.TokenError) as error:
        raise ValueError(f"not Python source: {error}") from None
    text = source.splitlines()
    covered = {line for token in tokens if token.type not in _NOT_CODE
               for line in range(token.start[0], token.end[0] + 1)}
    return sum(1 for line in covered - docstring_lines(tree) if line <= len(text) and text[line - 1].strip())

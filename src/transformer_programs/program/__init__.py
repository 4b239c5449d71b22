"""Model -> program: extract the IR, simplify it, interpret it, generate Python, verify they agree."""

from .codegen import generate
from .decompile import decompile_run, predict_run
from .extract import extract
from .interpret import run_batch, run_tokens
from .ir import Program
from .simplify import simplify
from .verify import Report, random_inputs, verify

__all__ = [
    "Program",
    "Report",
    "decompile_run",
    "extract",
    "generate",
    "predict_run",
    "random_inputs",
    "run_batch",
    "run_tokens",
    "simplify",
    "verify",
]

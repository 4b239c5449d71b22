"""Model -> program: extract the IR, interpret it, generate Python, verify all three agree."""

from .codegen import generate
from .extract import extract
from .interpret import run_batch, run_tokens
from .ir import Program
from .verify import Report, decompile_run, predict_run, random_inputs, verify

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
    "verify",
]

"""The README's short programs table is the one benchmarks/short_programs.py generates from its
committed records, never typed by hand."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_table_is_generated_from_the_records() -> None:
    spec = importlib.util.spec_from_file_location("short_programs", ROOT / "benchmarks" / "short_programs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (ROOT / "README.md").read_text()
    block = readme.split(module.TABLE_START, 1)[1].split(module.TABLE_END, 1)[0]
    assert block.strip() == module.table().strip()
    assert block.count("\n| ") >= len(list(module.RECORDS.glob("*-paper.json")))  # a row per recorded seed

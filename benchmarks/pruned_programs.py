"""Issue 13's table from trained and pruned runs: test accuracy before and after pruning, the
lines of the full, simplified and pruned programs, against a third of the paper's compressed
length (met where the pruned program is no longer and lost at most 0.5 point of test
accuracy), and what their verification checked.

    python benchmarks/pruned_programs.py t13/hist t13/hist-pruned [RUN PRUNED_RUN ...]

Each pair is a run and its pruned run (`tprog prune RUN --out PRUNED_RUN`), both decompiled by
the code of today (`tprog decompile RUN` writes what this reads: RUN/verification.json).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from transformer_programs.config import ARCH_FIELDS
from transformer_programs.tasks import get_task

TABLE_MAX_DROP = 0.005  # the README table's pruning budget; a row pruned with another names it
PAPER_LINES = {  # the paper's Table 4: full and compressed lines
    "reverse": (1893, 713), "hist": (324, 160), "double_hist": (1309, 423), "sort": (1503, 635),
    "most_freq": (1880, 666), "dyck1": (9975, 892), "dyck2": (5406, 733),
}


def record(run: Path) -> dict:
    """A run's task and its verification record; exits with a one-line error (status 2) where the
    run has no decompiled programs or is not a RASP task's."""
    try:
        config = json.loads((run / "config.json").read_text())
        verification = json.loads((run / "verification.json").read_text())
    except (OSError, ValueError) as error:
        print(f"error: {run} is not a decompiled run ({error}); run `tprog decompile {run}` first", file=sys.stderr)
        sys.exit(2)
    task = config.get("train", config).get("task") if isinstance(config, dict) else None
    if task not in PAPER_LINES:
        print(f"error: {run} is a run of {task!r}, not of a RASP task ({', '.join(PAPER_LINES)})", file=sys.stderr)
        sys.exit(2)
    results = json.loads((run / "results.json").read_text()) if (run / "results.json").is_file() else {}
    return {"task": task, "train": config.get("train", config), "pruning": results.get("pruning", {}), **verification}


def label(trained: dict, pruned: dict) -> str:
    """The task, with the architecture where it is not the task's default and the pruning budget
    where it is not the table's."""
    task = trained["task"]
    defaults = get_task(task).model
    arch = {field: trained["train"].get(field) for field in ARCH_FIELDS}
    parts = [task]
    if any(arch[field] != getattr(defaults, field) for field in ARCH_FIELDS):
        parts.append(f"{arch['layers']} layers, {arch['heads_cat']}+{arch['heads_num']} heads, "
                     f"{arch['mlps_cat']}+{arch['mlps_num']} MLPs")
    budget = pruned["pruning"].get("config", {}).get("max_drop")
    if budget is not None and budget != TABLE_MAX_DROP:
        parts.append(f"`--max-drop {budget}`")
    return ", ".join(parts)


def row(trained: Path, pruned: Path) -> str:
    """One line of the table, in Markdown."""
    full, short = record(trained), record(pruned)
    task = full["task"]
    paper_full, paper_short = PAPER_LINES[task]
    bar = paper_short // 3
    inputs = f"{full['inputs']:,}, all (exhaustive)" if full["exhaustive"] else f"{full['inputs']:,} sampled"
    before, after = (100 * r["program_accuracy"]["test"] for r in (full, short))
    meets = "yes" if short["lines"] <= bar and before - after <= 0.5 + 1e-9 else "no"
    return (f"| {label(full, short)} | {before:.2f} | {after:.2f} | {full['lines_full']} | {full['lines']} | {short['lines']} | {bar} "
            f"| {paper_full} / {paper_short} | {inputs} | {full['disagreements'] + short['disagreements']} | {meets} |")


def main(paths: list[str]) -> None:
    if not paths or len(paths) % 2:
        print("usage: python benchmarks/pruned_programs.py RUN PRUNED_RUN [RUN PRUNED_RUN ...]", file=sys.stderr)
        sys.exit(2)
    rows = [row(Path(trained), Path(pruned)) for trained, pruned in zip(paths[::2], paths[1::2])]
    print("| task | test % trained | test % pruned | lines full | simplified | pruned | bar (⅓ paper) "
          "| paper full / compressed | verified inputs | disagreements | bar met (≤ ⅓, within 0.5 point) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main(sys.argv[1:])

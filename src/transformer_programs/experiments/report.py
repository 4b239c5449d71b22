"""Summaries of experiment tables (mean ± std over seeds, best-by-validation) as markdown and PNG."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from .. import runio

Key = tuple  # the values of a group's key columns, e.g. (layers, heads, mlps)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value); NaN for none."""
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def percent(value: float | None, std: float | None = None) -> str:
    """An accuracy in percent, with ± its standard deviation when given; '-' when missing."""
    if value is None or math.isnan(value):
        return "-"
    return f"{100 * value:.2f}" + ("" if std is None else f" ± {100 * std:.2f}")


def group(rows: list[dict], keys: Sequence[str]) -> dict[Key, list[dict]]:
    """Rows grouped by their values of `keys`, groups in first-seen order."""
    groups: dict[Key, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    return groups


def summarize(rows: list[dict], keys: Sequence[str], metrics: Sequence[str]) -> list[dict]:
    """Per group of `keys`: trials, finished ones, failed ones, and mean and std of each metric."""
    out = []
    for key, members in group(rows, keys).items():
        ok = [row for row in members if row["status"] == "ok"]
        summary = dict(zip(keys, key), trials=len(members), ok=len(ok), failed=len(members) - len(ok))
        for metric in metrics:
            summary[f"{metric}_mean"], summary[f"{metric}_std"] = mean_std([row[metric] for row in ok])
        out.append(summary)
    return out


def series(summaries: list[dict], metric: str, x: Callable[[dict], object]) -> tuple[list, list, list]:
    """(xs, means, stds) of `metric` over `summaries` (from `summarize`), for `plot_errorbars`."""
    return [x(s) for s in summaries], [s[f"{metric}_mean"] for s in summaries], [s[f"{metric}_std"] for s in summaries]


def select_by_validation(rows: list[dict], keys: Sequence[str]) -> dict[Key, dict]:
    """Per group of `keys`, the finished trial with the best validation accuracy (the paper's
    model selection); ties go to the earlier row (the lower seed)."""
    selected = {}
    for key, members in group([row for row in rows if row["status"] == "ok"], keys).items():
        selected[key] = max(members, key=lambda row: row["val_accuracy"])  # max keeps the first of ties
    return selected


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def failures(rows: list[dict]) -> str:
    """A markdown list of the failed trials and their errors (empty when there are none)."""
    failed = [row for row in rows if row["status"] != "ok"]
    if not failed:
        return ""
    lines = [f"- `{row['trial']}`: {row['error']}" for row in failed]
    return "\n## Failed trials\n\n" + "\n".join(lines) + "\n"


def plot_errorbars(
    path: Path,
    panels: dict[str, dict[str, tuple[list, list[float], list[float]]]],
    xlabel: str,
    title: str,
) -> None:
    """One panel per entry of `panels` ({line label: (xs, means, stds)}), accuracy in percent,
    error bars of one standard deviation, written as a PNG (atomically)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no window, any backend

    points = max((len(xs) for lines in panels.values() for xs, _, _ in lines.values()), default=0)
    width = max(5.5, 0.35 * points)
    fig = Figure(figsize=(width * len(panels), 4.5))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)
    for ax, (name, lines) in zip(axes[0], panels.items()):
        ticks = {x for xs, _, _ in lines.values() for x in xs}
        named = any(isinstance(x, str) for x in ticks)  # named configurations: no line between them
        for label, (xs, means, stds) in lines.items():
            ax.errorbar(xs, [100 * m for m in means], yerr=[100 * s for s in stds], marker="o", capsize=3,
                        linestyle="none" if named else "-", label=label)
        if named:
            ax.tick_params(axis="x", labelrotation=60)
        else:
            ax.set_xticks(sorted(ticks))
        ax.set_ylim(0, 102)
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy (%)")
    axes[0][-1].legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    runio.atomic_write_bytes(Path(path), buffer.getvalue())

"""One self-contained HTML page about a run: settings and metrics, training curves, the program,
its circuit, attention heatmaps of a few inputs, and its error groups. No script, no network:
styles are inline and images are inline SVG."""

from __future__ import annotations

import ast
import html
import io
import json
import keyword
import tokenize
from dataclasses import dataclass

import numpy as np

from .circuit import Circuit
from .errors import ErrorGroup

REPORT_MARK = "<!DOCTYPE html>\n<!-- a run report written by transformer_programs -->"  # how every report starts
CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { border: 1px solid #ddd; padding: 2px 6px; }
pre.program { background: #fafafa; border: 1px solid #ddd; padding: 1em; overflow-x: auto; font-size: 0.85em; }
.kw { color: #a626a4; font-weight: bold; } .str { color: #50a14f; } .num { color: #986801; }
.com { color: #999; font-style: italic; } .def { color: #4078f2; }
.heatmaps { display: flex; flex-wrap: wrap; gap: 1.5em; } .heatmap { font-size: 10px; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; } .scroll { overflow-x: auto; }
"""


@dataclass
class HeatmapInput:
    """One input with, for each attention head, which keys each query read."""

    tokens: list[str]
    reads: dict[str, np.ndarray]  # head -> (query, key) booleans


def highlight(source: str) -> str:
    """Python source as HTML with keywords, strings, numbers, comments and defined names marked."""
    offsets = [0]
    for line in source.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return html.escape(source)
    out, cursor, previous = [], 0, None
    for token in tokens:
        start = offsets[token.start[0] - 1] + token.start[1]
        end = offsets[token.end[0] - 1] + token.end[1]
        if start < cursor or start == end:
            continue
        kind = None
        if token.type == tokenize.NAME and keyword.iskeyword(token.string):
            kind = "kw"
        elif token.type == tokenize.NAME and previous == "def":
            kind = "def"
        elif token.type in (tokenize.STRING, tokenize.NUMBER, tokenize.COMMENT):
            kind = {tokenize.STRING: "str", tokenize.NUMBER: "num", tokenize.COMMENT: "com"}[token.type]
        text = html.escape(source[start:end])
        out += [html.escape(source[cursor:start]), f'<span class="{kind}">{text}</span>' if kind else text]
        cursor, previous = end, token.string
    return "".join(out) + html.escape(source[cursor:])


def line_chart(title: str, xs: list[float], ys: list[float], log: bool = False) -> str:
    """A small SVG line chart of ys against xs."""
    width, height, pad = 340, 200, 40
    values = [float(np.log10(y)) if log else float(y) for y in ys]
    if not values:
        return ""
    low, high = min(values), max(values)
    span_y, span_x = (high - low) or 1.0, (max(xs) - min(xs)) or 1.0

    points = [(pad + (x - min(xs)) / span_x * (width - 2 * pad), height - pad - (y - low) / span_y * (height - 2 * pad))
              for x, y in zip(xs, values)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#4078f2"/>'
                   for x, y in points) if len(points) <= 30 else ""  # a one-epoch chart still shows its point
    fmt = (lambda v: f"{10 ** v:.3g}") if log else (lambda v: f"{v:.3g}")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" font-size="10">'
            f'<text x="{pad}" y="14" font-weight="bold">{html.escape(title)}</text>'
            f'<rect x="{pad}" y="{pad}" width="{width - 2 * pad}" height="{height - 2 * pad}" fill="none" stroke="#ccc"/>'
            f'<polyline points="{path}" fill="none" stroke="#4078f2" stroke-width="1.5"/>{dots}'
            f'<text x="2" y="{pad + 4}">{fmt(high)}</text><text x="2" y="{height - pad}">{fmt(low)}</text>'
            f'<text x="{pad}" y="{height - pad + 14}">epoch {min(xs):g}</text>'
            f'<text x="{width - pad - 40}" y="{height - pad + 14}">{max(xs):g}</text></svg>')


def heatmap(head: str, tokens: list[str], reads: np.ndarray) -> str:
    """One head on one input: a query x key grid, a filled cell where the query read the key."""
    cell, margin = 16, 60
    size = len(tokens)
    items = [f'<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" width="{margin + size * cell + 4}" '
             f'height="{margin + size * cell + 18}"><text x="0" y="12" font-weight="bold">{html.escape(head)}</text>']
    for n, token in enumerate(tokens):
        label = html.escape(token[:6])
        items.append(f'<text x="{margin - 4}" y="{margin + n * cell + 12}" text-anchor="end">{label}</text>')
        items.append(f'<text x="{margin + n * cell + 4}" y="{margin - 4}" transform="rotate(-60 '
                     f'{margin + n * cell + 4} {margin - 4})">{label}</text>')
    for q in range(size):
        for k in range(size):
            fill = "#4078f2" if reads[q, k] else "#f4f4f4"
            items.append(f'<rect x="{margin + k * cell}" y="{margin + q * cell}" width="{cell - 1}" '
                         f'height="{cell - 1}" fill="{fill}"/>')
    items.append(f'<text x="0" y="{margin + size * cell + 14}">rows: queries, columns: keys</text>')
    return "".join([*items, "</svg>"])


def _table(header: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


@dataclass
class Page:
    """What one report shows: the run, its one program (source, circuit and errors all of it),
    how that program was proved, and what pruning removed."""

    title: str
    config: dict
    results: dict
    metrics: list[dict[str, float]]
    program_source: str
    program_note: str
    proof: str
    pruning: str | None
    circuit: Circuit
    inputs: list[HeatmapInput]
    errors: list[ErrorGroup]
    error_split: str
    features: str | None = None  # the feature-function view of a word task, as Markdown


FOLD_LINES = 25  # a top-level statement longer than this (a word table, float weights) is folded


def program_html(source: str) -> str:
    """The program highlighted, each long top-level statement folded under its first line."""
    try:
        statements = ast.parse(source).body
    except SyntaxError:
        return highlight(source)
    lines = source.splitlines(keepends=True)
    out, cursor = [], 0
    for statement in statements:
        first, last = statement.lineno - 1, statement.end_lineno
        if last - first > FOLD_LINES:
            head = lines[first].rstrip()
            out += [highlight("".join(lines[cursor:first])),
                    f"<details><summary>{html.escape(head)} ... ({last - first} lines)</summary>"
                    f"{highlight(''.join(lines[first:last]))}</details>"]
            cursor = last
    out.append(highlight("".join(lines[cursor:])))
    return "".join(out)


def render(page: Page) -> str:
    """The whole page."""
    results, metrics = page.results, page.metrics
    summary = [[split, f"{results[split]['accuracy']:.4f}", f"{results[split]['exact_match']:.4f}"]
               for split in ("train", "val", "test") if split in results]
    epochs = [row["epoch"] for row in metrics]
    charts = [line_chart("training loss", epochs, [row["loss"] for row in metrics]),
              line_chart("validation accuracy", epochs, [row["val_accuracy"] for row in metrics])]
    if metrics and "temperature" in metrics[0]:
        charts.append(line_chart("temperature (log)", epochs, [row["temperature"] for row in metrics], log=True))
    heatmaps = []
    for example in page.inputs:
        maps = "".join(heatmap(head, example.tokens, reads) for head, reads in example.reads.items())
        heatmaps.append(f"<h3>{html.escape(' '.join(example.tokens))}</h3><div class='heatmaps'>{maps}</div>")
    errors = page.errors
    groups = [[g.count, g.part, g.branch, g.predicted, g.expected, " ".join(g.example), g.position] for g in errors]
    error_html = f"<p>The program's mistakes on the {page.error_split} split, grouped by the branch of the part " \
                 "that chose the wrong value.</p>"
    error_html += _table(["count", "part", "branch", "predicted", "expected", "example", "position"], groups) \
        if errors else f"<p>No mistakes on the {page.error_split} split.</p>"
    if errors:
        error_html += f"<h3>Trace of the largest group's example</h3><pre>{html.escape(errors[0].trace.table())}</pre>"
    features = [] if page.features is None else [
        "<h2>Feature functions</h2>", f"<pre>{html.escape(page.features)}</pre>"]
    parts = [
        REPORT_MARK, "<html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">",
        f"<title>{html.escape(page.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(page.title)}</h1>",
        "<h2>Run</h2>", _table(["split", "accuracy", "exact match"], summary),
        *([f"<p class='pruning'>{html.escape(page.pruning)}</p>"] if page.pruning else []),
        f"<details><summary>config.json</summary><pre>{html.escape(json.dumps(page.config, indent=2))}</pre></details>",
        "<h2>Training</h2>", f"<div class='charts'>{''.join(charts)}</div>",
        "<h2>Program</h2>", f"<p>{html.escape(page.program_note)}</p>",
        f"<p class='proof'>{html.escape(page.proof)}</p>",
        f"<pre class='program'>{program_html(page.program_source)}</pre>",
        *features,
        "<h2>Circuit</h2>", "<p>The parts of the program above. Each is shaded by the validation accuracy lost "
        "when it is replaced by its most common value; grey parts are dead (nothing alive reads them).</p>",
        f"<div class='scroll'>{page.circuit.svg()}</div>", f"<details><summary>as text</summary><pre>"
        f"{html.escape(page.circuit.text())}</pre></details>",
        "<h2>Attention</h2>", *heatmaps,
        "<h2>Errors</h2>", error_html,
        "</body></html>",
    ]
    return "\n".join(parts)

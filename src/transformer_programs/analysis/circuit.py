"""Circuit: which part reads which, from the inputs to the classifier, each part scored by the
validation accuracy lost when it is ablated (replaced by its most common value)."""

from __future__ import annotations

import copy
import html
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from ..program.interpret import run_batch
from ..program.ir import (
    CategoricalAttention,
    CategoricalMLP,
    NumericalAttention,
    NumericalMLP,
    Program,
    classifier_reads,
    component_reads,
    live_variables,
)

INPUTS = ("tokens", "positions", "ones")
CIRCUIT_MARK = "<!-- a circuit written by transformer_programs -->\n"  # how every circuit image file starts
KINDS = {CategoricalAttention: "attention", NumericalAttention: "numerical attention", CategoricalMLP: "MLP",
         NumericalMLP: "numerical MLP"}


@dataclass
class Part:
    """One node of the circuit."""

    name: str
    kind: str  # input, embedding, constant, attention, numerical attention, MLP, numerical MLP, classifier
    layer: int  # -1 for inputs, embeddings and constants; len(layers) for the classifier
    reads: list[str]
    drop: float | None  # validation accuracy lost when ablated (None: not ablated)
    dead: bool  # neither the classifier nor a live part reads it, even through others


@dataclass
class Circuit:
    """A program's dependency graph with ablation scores."""

    accuracy: float  # of the program, on the inputs the scores were measured on
    parts: list[Part]  # inputs, then components in program order, then the classifier

    def ranked(self) -> list[Part]:
        """The ablated parts, the most damaging first (dead ones last)."""
        scored = [part for part in self.parts if part.drop is not None]
        return sorted(scored, key=lambda part: (part.dead, -part.drop))

    def text(self) -> str:
        """The graph as lines `part (kind) <- what it reads`, then the ablation ranking."""
        lines = [f"{'part':<16} {'kind':<20} reads"]
        for part in self.parts:
            mark = "  [dead]" if part.dead else ""
            lines.append(f"{part.name:<16} {part.kind:<20} {', '.join(part.reads) or '-'}{mark}")
        lines += ["", f"accuracy {self.accuracy:.4f}; lost when ablated (replaced by its most common value):"]
        for part in self.ranked():
            lines.append(f"  {part.name:<16} {part.drop:+.4f}{'  [dead]' if part.dead else ''}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return asdict(self)

    def svg(self) -> str:
        """The graph as an SVG image: one column per layer, edges from a variable to its readers,
        each part shaded by the accuracy lost without it, dead parts grey."""
        columns: dict[int, list[Part]] = {}
        for part in self.parts:
            columns.setdefault(part.layer, []).append(part)
        order = sorted(columns)
        box_w, box_h, gap_x, gap_y = 150, 34, 70, 14
        where = {}
        for x, layer in enumerate(order):
            for y, part in enumerate(columns[layer]):
                where[part.name] = (20 + x * (box_w + gap_x), 40 + y * (box_h + gap_y))
        width = 40 + len(order) * (box_w + gap_x)
        height = 60 + max(len(parts) for parts in columns.values()) * (box_h + gap_y)
        worst = max([part.drop or 0.0 for part in self.parts] + [1e-9])
        items = [f'<svg xmlns="http://www.w3.org/2000/svg" class="circuit" width="{width}" height="{height}" '
                 f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="11">']
        for x, layer in enumerate(order):
            title = "inputs" if layer < 0 else "classifier" if columns[layer][0].kind == "classifier" else f"layer {layer}"
            items.append(f'<text x="{20 + x * (box_w + gap_x)}" y="22" font-weight="bold">{title}</text>')
        for part in self.parts:
            x2, y2 = where[part.name]
            for source in part.reads:
                if source in where:
                    x1, y1 = where[source]
                    colour = "#bbb" if part.dead else "#557"
                    items.append(f'<line x1="{x1 + box_w}" y1="{y1 + box_h / 2}" x2="{x2}" y2="{y2 + box_h / 2}" '
                                 f'stroke="{colour}" stroke-width="1"/>')
        for part in self.parts:
            x, y = where[part.name]
            shade = 0 if part.drop is None else max(part.drop, 0.0) / worst
            fill = "#eee" if part.dead else f"rgb({255},{int(255 - 140 * shade)},{int(255 - 200 * shade)})"
            label = html.escape(part.name) + ("" if part.drop is None else f" {part.drop:+.3f}")
            items.append(f'<g><title>{html.escape(part.kind)}{" (dead)" if part.dead else ""}</title>'
                         f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="4" fill="{fill}" '
                         f'stroke="{"#aaa" if part.dead else "#333"}"/>'
                         f'<text x="{x + 6}" y="{y + 21}">{label}</text></g>')
        return "\n".join([*items, "</svg>"])


def accuracy(program: Program, inputs: np.ndarray, labels: np.ndarray) -> float:
    """Token accuracy of the interpreter over scored positions (label not <pad>)."""
    predicted = run_batch(program, inputs)[0]
    scored = labels != 0
    return float(((predicted == labels) & scored).sum() / max(int(scored.sum()), 1))


def most_common_values(program: Program, inputs: np.ndarray) -> dict[str, int]:
    """Each variable's most common value at real positions of `inputs`."""
    trace = run_batch(program, inputs)[1]
    valid = inputs != 0
    return {name: Counter(values[valid].tolist()).most_common(1)[0][0] for name, values in trace.items()}


def ablated(program: Program, name: str, value: int) -> Program:
    """The program with one part replaced by a constant value."""
    program = copy.deepcopy(program)
    for layer in program.layers:
        for group in (layer.attention, layer.numerical_attention, layer.mlps, layer.numerical_mlps):
            group[:] = [component for component in group if component.name != name]
    program.embeddings = [embedding for embedding in program.embeddings if embedding.name != name]
    program.variable(name).constant = value
    return program


def circuit(program: Program, inputs: np.ndarray, labels: np.ndarray) -> Circuit:
    """The circuit of `program`, ablations scored on (inputs, labels) id arrays (N, T)."""
    base = accuracy(program, inputs, labels)
    common = most_common_values(program, inputs)
    live = live_variables(program)
    parts = [Part(name, "input", -1, [], None, name not in live) for name in INPUTS if name in common]
    for embedding in program.embeddings:
        drop = base - accuracy(ablated(program, embedding.name, common[embedding.name]), inputs, labels)
        parts.append(Part(embedding.name, "embedding", -1, ["tokens"], drop, embedding.name not in live))
    for variable in program.variables:
        if variable.constant is not None:
            parts.append(Part(variable.name, "constant", -1, [], None, variable.name not in live))
    for index, layer in enumerate(program.layers):
        for component in layer.components():
            drop = base - accuracy(ablated(program, component.name, common[component.name]), inputs, labels)
            reads = list(dict.fromkeys(component_reads(component)))
            parts.append(Part(component.name, KINDS[type(component)], index, reads, drop, component.name not in live))
    parts.append(Part("classifier", "classifier", len(program.layers), classifier_reads(program), None, False))
    return Circuit(base, parts)

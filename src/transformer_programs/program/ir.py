"""Program IR: plain dataclasses for every part of a discretized Transformer Program."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

@dataclass
class Variable:
    """One variable of the residual stream; programs list them in variable order."""

    name: str
    numerical: bool
    # How values display: "token" (input-token ids, shown as token strings), "position",
    # "abstract" (categorical values 0..d-1) or "number" (exactly the numerical variables).
    kind: str
    bound: int | None = None  # numerical variables: the largest reachable value


@dataclass
class Embedding:
    """A learned categorical variable: its value for each input-token id."""

    name: str
    table: list[int]  # input-token id -> value


@dataclass
class CategoricalAttention:
    """Copies `value` from the closest key matching the predicate (docs/semantics.md)."""

    name: str
    query: str
    key: str
    value: str  # a categorical variable
    predicate: list[int]  # query value -> the one key value it matches
    causal: bool


@dataclass
class NumericalAttention:
    """Sums the numerical `value` over every key matching the predicate (docs/semantics.md)."""

    name: str
    query: str
    key: str
    value: str  # a numerical variable
    predicate: list[int]  # query value -> the one key value it matches
    causal: bool


@dataclass
class CategoricalMLP:
    """A lookup table over two categorical variables (possibly the same one)."""

    name: str
    first: str
    second: str
    table: list[list[int]]  # [first value][second value] -> output value


@dataclass
class NumericalMLP:
    """A lookup table over one numerical variable, covering every input 0..bound."""

    name: str
    source: str
    table: list[int]  # input 0..bound -> output value


@dataclass
class Layer:
    """One layer's components, each list in variable order."""

    attention: list[CategoricalAttention]
    numerical_attention: list[NumericalAttention]
    mlps: list[CategoricalMLP]
    numerical_mlps: list[NumericalMLP]

    def components(self) -> list:
        """Every component of the layer, in the order their outputs are created."""
        return [*self.attention, *self.numerical_attention, *self.mlps, *self.numerical_mlps]


@dataclass
class Classifier:
    """Linear classifier; weights are float32 values widened exactly to Python floats."""

    bias: list[float]  # per label
    categorical: dict[str, list[list[float]]]  # variable -> [value][label]
    numerical: dict[str, list[float]]  # variable -> weight per label


@dataclass
class Program:
    """A whole discretized model: the IR root."""

    input_vocab: list[str]  # id -> token; id 0 is "<pad>"
    label_vocab: list[str]  # id -> label; id 0 is "<pad>" (never predicted)
    max_len: int
    d: int  # size of the shared categorical value space
    variables: list[Variable]  # in variable order (docs/semantics.md)
    embeddings: list[Embedding]
    layers: list[Layer]
    classifier: Classifier

    def variable(self, name: str) -> Variable:
        """The variable called `name`."""
        for variable in self.variables:
            if variable.name == name:
                return variable
        raise KeyError(name)

    def to_json(self) -> str:
        """The program as JSON text; floats are written exactly (shortest round-trip repr)."""
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Program":
        """The program written by `to_json`."""
        data = json.loads(text)
        layers = [
            Layer(
                attention=[CategoricalAttention(**head) for head in layer["attention"]],
                numerical_attention=[NumericalAttention(**head) for head in layer["numerical_attention"]],
                mlps=[CategoricalMLP(**mlp) for mlp in layer["mlps"]],
                numerical_mlps=[NumericalMLP(**mlp) for mlp in layer["numerical_mlps"]],
            )
            for layer in data["layers"]
        ]
        return cls(
            input_vocab=data["input_vocab"],
            label_vocab=data["label_vocab"],
            max_len=data["max_len"],
            d=data["d"],
            variables=[Variable(**variable) for variable in data["variables"]],
            embeddings=[Embedding(**embedding) for embedding in data["embeddings"]],
            layers=layers,
            classifier=Classifier(**data["classifier"]),
        )


def value_domains(program: Program) -> dict[str, list[int]]:
    """For each variable, the sorted values it can take at a real (non-pad) position.

    A sound superset: tokens are the non-pad token ids, positions 0..max_len-1, an attention
    output takes its value variable's values, a table's output is its image over its inputs'
    domains, a numerical variable is 0..bound (`ones` is 1).
    """
    domains: dict[str, set[int]] = {
        "tokens": set(range(1, len(program.input_vocab))),
        "positions": set(range(program.max_len)),
        "ones": {1},
    }
    for embedding in program.embeddings:
        domains[embedding.name] = {embedding.table[token] for token in domains["tokens"]}
    for layer in program.layers:
        for head in layer.attention:
            domains[head.name] = domains[head.value]
        for head in layer.numerical_attention:
            domains[head.name] = set(range(program.variable(head.name).bound + 1))
        for mlp in layer.mlps:
            if mlp.first == mlp.second:
                domains[mlp.name] = {mlp.table[a][a] for a in domains[mlp.first]}
            else:
                domains[mlp.name] = {mlp.table[a][b] for a in domains[mlp.first] for b in domains[mlp.second]}
        for mlp in layer.numerical_mlps:
            domains[mlp.name] = {mlp.table[x] for x in domains[mlp.source]}
    return {name: sorted(values) for name, values in domains.items()}

"""Program IR: plain dataclasses for every part of a discretized Transformer Program."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from ..tasks.base import InputSpace


@dataclass
class Variable:
    """One variable of the residual stream; programs list them in variable order."""

    name: str
    numerical: bool
    # How values display: "token" (input-token ids, shown as token strings), "position",
    # "abstract" (categorical values 0..d-1) or "number" (exactly the numerical variables).
    kind: str
    bound: int | None = None  # numerical variables: the largest reachable value
    constant: int | None = None  # a pruned part: this value at every position, computed by nothing
    # The values it takes at real (non-pad) positions, where simplify has computed them exactly;
    # None: `value_domains` gives a sound superset.
    values: list[int] | None = None


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
    pooled: bool = False  # one label for the whole input, from each variable's mean over positions


@dataclass
class Rules:
    """The classifier as a table, computed from the weights' exact scores: the label of each
    joint value of the only variables the prediction depends on."""

    reads: list[str]  # in variable order
    table: list[list[int]]  # rows [value of reads[0], ..., value of reads[-1], label id]
    default: int  # the label id of every joint value the table does not list


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
    classifier: Classifier | Rules
    # The inputs the program is defined on (and raises on any other); None: every sequence of
    # its tokens up to max_len.
    input_space: InputSpace | None = None
    # Word tasks: how an input word becomes a token of input_vocab: every run of digits as "@"
    # (where the task says so), then any word the vocabulary lacks as `unknown`.
    unknown: str | None = None
    replace_numbers: bool = False

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
            classifier=Rules(**data["classifier"]) if "reads" in data["classifier"] else Classifier(**data["classifier"]),
            input_space=None if data.get("input_space") is None else _input_space(data["input_space"]),
            unknown=data.get("unknown"),
            replace_numbers=data.get("replace_numbers", False),
        )


def component_reads(component) -> list[str]:
    """The variables a layer component reads."""
    if isinstance(component, (CategoricalAttention, NumericalAttention)):
        return [component.query, component.key, component.value]
    if isinstance(component, CategoricalMLP):
        return [component.first, component.second]
    return [component.source]


def classifier_reads(program: Program) -> list[str]:
    """The variables the classifier reads, in variable order."""
    classifier = program.classifier
    read = set(classifier.reads) if isinstance(classifier, Rules) else {*classifier.categorical, *classifier.numerical}
    return [variable.name for variable in program.variables if variable.name in read]


def live_variables(program: Program) -> set[str]:
    """Every variable the classifier needs, directly or through the parts that compute what it reads."""
    needed = set(classifier_reads(program))
    for layer in reversed(program.layers):
        for component in reversed(layer.components()):
            if component.name in needed:
                needed.update(component_reads(component))
    return needed


def _input_space(data: dict) -> InputSpace:
    """An InputSpace from its JSON object (its symbols come back as a list)."""
    return InputSpace(**{**data, "symbols": tuple(data["symbols"])})

"""Program IR: plain dataclasses for every part of a discretized Transformer Program."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from itertools import accumulate, product

from ..tasks.base import InputSpace
from ..vocab import BOS, EOS


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


def _tokens_at(program: Program) -> list[frozenset[int]]:
    """The token ids each position may hold: any but '<pad>', or what the program's input space
    puts there."""
    space = program.input_space
    if space is None:
        return [frozenset(range(1, len(program.input_vocab)))] * program.max_len
    ids = {token: i for i, token in enumerate(program.input_vocab)}
    symbols = frozenset(ids[symbol] for symbol in space.symbols)
    at = []
    for i in range(program.max_len):
        holds = {ids[BOS]} if i == 0 else set(symbols) if i <= space.max_len else set()
        if space.eos and space.min_len < i <= space.max_len + 1:  # after min_len to max_len symbols
            holds.add(ids[EOS])
        at.append(frozenset(holds))
    return at


def value_domains(program: Program) -> dict[str, list[int]]:
    """For each variable, the sorted values it can take at a real (non-pad) position: the union
    over positions of `position_domains`."""
    return values_anywhere(position_domains(program))


def values_anywhere(at: dict[str, list[frozenset[int]]]) -> dict[str, list[int]]:
    """For each variable, the sorted values it may take at some position."""
    return {name: sorted(set().union(*set(at_each))) for name, at_each in at.items()}


def pairs_anywhere(at: dict[str, list[frozenset[int]]], first: str, second: str) -> list[tuple[int, int]]:
    """The sorted pairs of values two variables may take at one position (a pair per value when
    they are one variable)."""
    pairs: set[tuple[int, int]] = set()
    for firsts, seconds in set(zip(at[first], at[second])):
        pairs.update(((a, a) for a in firsts) if first == second else product(firsts, seconds))
    return sorted(pairs)


def one_input_function(component, at: dict[str, list[frozenset[int]]]) -> tuple[str, dict[int, int]] | None:
    """(source, {source value: output}) where a table's output depends on one variable only, over
    the values its inputs may take together (`position_domains`)."""
    if isinstance(component, NumericalMLP):
        last = len(component.table) - 1
        return component.source, {x: component.table[min(x, last)] for x in values_anywhere(at)[component.source]}
    if not isinstance(component, CategoricalMLP):
        return None
    pairs = pairs_anywhere(at, component.first, component.second)
    for source, position in ((component.first, 0), (component.second, 1)):
        outputs: dict[int, set[int]] = {}
        for a, b in pairs:
            outputs.setdefault((a, b)[position], set()).add(component.table[a][b])
        if all(len(values) == 1 for values in outputs.values()):
            return source, {x: values.pop() for x, values in outputs.items()}
    return None


def position_domains(program: Program) -> dict[str, list[frozenset[int]]]:
    """For each variable and each position i, a superset of the values it can take at position i
    of an input that reaches i; values simplify computed exactly narrow every position's set.

    Tokens are any non-pad token id (in a program defined on an input space: '<s>' at position 0,
    then its symbols, and '</s>' where an input may end), position i is i, a constant its value.
    A table's output is its image over its inputs' values at the same position. An attention head
    at query position i reads only key positions whose key can match a target of a query value
    possible at i (j <= i when causal), no farther than a key certain to match, and position 0
    when none may match. A numerical head's peak at i is the largest sum of its value's peaks
    over the key positions that can match one query value, so a causal count of counts at
    position 15 is at most 1 + 2 + ... + 16 = 136, not 16 * 16, and 0 where nothing can match; it
    takes 0..its peak.
    """
    known = {variable.name: frozenset(variable.values) for variable in program.variables if variable.values is not None}
    n = program.max_len
    domains: dict[str, list[frozenset[int]]] = {}
    shared: dict[tuple, frozenset[int]] = {}

    def once(key: tuple, compute: Callable[[], Iterable[int]]) -> frozenset[int]:
        """The set compute() gives, computed once per key: positions with equal inputs share it."""
        if key not in shared:
            shared[key] = frozenset(compute())
        return shared[key]

    def settle(name: str, at_each: list[frozenset[int]]) -> None:
        exact = known.get(name)
        if exact is not None:
            at_each = [once(("known", name, values), lambda: values & exact) for values in at_each]
        domains[name] = at_each

    def targets(head, i: int) -> set[int]:
        """The key values head looks for at query position i."""
        return {head.predicate[q] for q in domains[head.query][i]}

    def read(head: CategoricalAttention) -> list[frozenset[int]]:
        """The values head can copy, at each query position (sets of positions as bitmasks)."""
        keys, values = domains[head.key], domains[head.value]
        looked_for = set().union(*(targets(head, i) for i in range(n)))
        matching = {t: sum(1 << j for j in range(n) if t in keys[j]) for t in looked_for}
        certain = {t: sum(1 << j for j in range(n) if keys[j] == {t}) for t in looked_for}
        at_each = []
        for i in range(n):
            upto_i = (1 << (i + 1)) - 1
            window = upto_i if head.causal else (1 << n) - 1
            read_from = 0
            for target in targets(head, i):
                sure = certain[target] & upto_i  # positions <= i exist, so these keys surely match
                if sure:  # the nearest, at distance `reach`, bounds how far the head reads
                    reach = i - (sure.bit_length() - 1)
                    read_from |= matching[target] & window & (((1 << (2 * reach + 1)) - 1) << (i - reach))
                else:  # maybe no key matches, and the head reads position 0
                    read_from |= matching[target] & window | 1
            at_each.append(frozenset().union(*{values[j] for j in range(n) if read_from >> j & 1}))
        return at_each

    def summed(head: NumericalAttention) -> list[frozenset[int]]:
        """0..the head's peak, at each query position."""
        peaks = [max(values, default=0) for values in domains[head.value]]
        sums = {}
        for target in set().union(*(targets(head, i) for i in range(n))):
            matched = [peak if target in keys else 0 for peak, keys in zip(peaks, domains[head.key])]
            sums[target] = list(accumulate(matched)) if head.causal else [sum(matched)] * n
        bound = program.variable(head.name).bound
        at_each = (min(max((sums[t][i] for t in targets(head, i)), default=0), bound) for i in range(n))
        return [once(("sum", peak), lambda: range(peak + 1)) for peak in at_each]

    settle("tokens", _tokens_at(program))
    settle("positions", [frozenset({i}) for i in range(n)])
    settle("ones", [frozenset({1})] * n)
    for variable in program.variables:
        if variable.constant is not None:
            settle(variable.name, [frozenset({variable.constant})] * n)
    for embedding in program.embeddings:
        table = embedding.table
        settle(embedding.name, [once((embedding.name, t), lambda: {table[x] for x in t}) for t in domains["tokens"]])
    for layer in program.layers:
        for head in layer.attention:
            settle(head.name, read(head))
        for head in layer.numerical_attention:
            settle(head.name, summed(head))
        for mlp in layer.mlps:
            grid = mlp.table
            settle(mlp.name, [once((mlp.name, a, b), lambda: {grid[x][x] for x in a} if mlp.first == mlp.second else
                                   {grid[x][y] for x in a for y in b})
                              for a, b in zip(domains[mlp.first], domains[mlp.second])])
        for mlp in layer.numerical_mlps:
            line, last = mlp.table, len(mlp.table) - 1
            settle(mlp.name, [once((mlp.name, x), lambda: {line[min(v, last)] for v in x})
                              for x in domains[mlp.source]])
    names = [variable.name for variable in program.variables]
    return {name: domains[name] for name in (names if "tokens" in names else ["tokens", *names])}


def seen_target(head: CategoricalAttention | NumericalAttention,
                at: dict[str, list[frozenset[int]]]) -> Callable[[int, int], int | None]:
    """seen(q, t): the key value t that a query of value q looks for, or None where that reads as
    no match, by the values at each position `at` (`position_domains`): no key a query of value q
    sees (j <= i where it occurs, when causal) may hold t, or, for a head that copies, only the
    key at position 0, which it reads when none matches."""
    first: dict[int, int] = {}  # key value -> the first position that may hold it
    for j, values in enumerate(at[head.key]):
        if j > 0 or isinstance(head, NumericalAttention):
            for value in values:
                first.setdefault(value, j)
    last = {q: i for i, values in enumerate(at[head.query]) for q in values}
    return lambda q, t: t if t in first and (not head.causal or first[t] <= last[q]) else None

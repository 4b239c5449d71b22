"""Reachable values: for each variable of a program, the values it may take at each position,
a sound superset computed from the input tokens and positions through every part (exact where
simplify has listed them), and what they decide: which targets of a predicate any key may hold,
which pairs a table reads, whether a table reads one input only."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from itertools import accumulate, product

from ..vocab import BOS, EOS
from .ir import CategoricalAttention, CategoricalMLP, NumericalAttention, NumericalMLP, Program


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
    return {name: _anywhere(at_each) for name, at_each in at.items()}


def _anywhere(at_each: list[frozenset[int]]) -> list[int]:
    """The sorted values of one variable over every position (equal positions' sets are shared)."""
    return sorted(set().union(*set(at_each)))


def pairs_anywhere(at: dict[str, list[frozenset[int]]], first: str, second: str) -> list[tuple[int, int]]:
    """The sorted pairs of values two variables may take at one position (a pair per value when
    they are one variable)."""
    pairs: set[tuple[int, int]] = set()
    for firsts, seconds in set(zip(at[first], at[second])):
        pairs.update(((a, a) for a in firsts) if first == second else product(firsts, seconds))
    return sorted(pairs)


def joints_anywhere(at: dict[str, list[frozenset[int]]], names: list[str], cap: int) -> list[tuple[int, ...]] | None:
    """The sorted joint values that the variables `names` may take at one position, over every
    position some input reaches (one empty joint value for no names); None past `cap` of them."""
    if not names:
        return [()]
    rows: set[tuple[int, ...]] = set()
    for sets in set(zip(*(at[name] for name in names))):
        if all(sets):
            if math.prod(map(len, sets)) > cap:
                return None
            rows.update(product(*sets))
        if len(rows) > cap:
            return None
    return sorted(rows)


def one_input_function(component, at: dict[str, list[frozenset[int]]]) -> tuple[str, dict[int, int]] | None:
    """(source, {source value: output}) where a table's output depends on one variable only, over
    the values its inputs may take together (`position_domains`)."""
    if isinstance(component, NumericalMLP):
        last = len(component.table) - 1
        return component.source, {x: component.table[min(x, last)] for x in _anywhere(at[component.source])}
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
    then its symbols, and '</s>' where an input may end), position i is i, a constant its value;
    every variable takes no value at a position no input reaches (past the space's longest input).
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

    def targets(head) -> list[set[int]]:
        """The key values head looks for, at each query position."""
        return [{head.predicate[q] for q in queries} for queries in domains[head.query]]

    def read(head: CategoricalAttention) -> list[frozenset[int]]:
        """The values head can copy, at each query position (sets of positions as bitmasks)."""
        keys, values, wanted = domains[head.key], domains[head.value], targets(head)
        looked_for = set().union(*wanted)
        matching = {t: sum(1 << j for j in range(n) if t in keys[j]) for t in looked_for}
        certain = {t: sum(1 << j for j in range(n) if keys[j] == {t}) for t in looked_for}
        at_each = []
        for i in range(n):
            upto_i = (1 << (i + 1)) - 1
            window = upto_i if head.causal else (1 << n) - 1
            read_from = 0
            for target in wanted[i]:
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
        wanted = targets(head)
        sums = {}
        for target in set().union(*wanted):
            matched = [peak if target in keys else 0 for peak, keys in zip(peaks, domains[head.key])]
            sums[target] = list(accumulate(matched)) if head.causal else [sum(matched)] * n
        bound = program.variable(head.name).bound
        at_each = (min(max((sums[t][i] for t in wanted[i]), default=0), bound) if wanted[i] else None for i in range(n))
        return [frozenset() if peak is None else once(("sum", peak), lambda: range(peak + 1)) for peak in at_each]

    settle("tokens", _tokens_at(program))
    reached = [bool(tokens) for tokens in domains["tokens"]]  # positions some input reaches

    def where_reached(value: int) -> list[frozenset[int]]:
        return [frozenset({value}) if reached[i] else frozenset() for i in range(n)]

    settle("positions", [frozenset({i}) if reached[i] else frozenset() for i in range(n)])
    settle("ones", where_reached(1))
    for variable in program.variables:
        if variable.constant is not None:
            settle(variable.name, where_reached(variable.constant))
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

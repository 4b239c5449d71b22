"""IR interpreter: vectorized numpy evaluation of a Program, rule for rule as docs/semantics.md."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..vocab import BOS, DIGITS, EOS, PAD
from .ir import CategoricalAttention, CategoricalMLP, Classifier, NumericalAttention, NumericalMLP, Program, Rules


def matches(head: CategoricalAttention | NumericalAttention, trace: dict, valid: np.ndarray) -> np.ndarray:
    """(B, query, key) booleans: key is a candidate of the query and matches its predicate."""
    target = np.asarray(head.predicate)[trace[head.query]]  # (B, T): key value each query looks for
    match = target[:, :, None] == trace[head.key][:, None, :]  # (B, query, key)
    visible = valid[:, None, :]  # (B, 1, key): pad positions are never keys
    if head.causal:
        length = valid.shape[1]
        visible = visible & np.tri(length, dtype=bool)  # (B, query, key): key <= query
    return match & visible


def closest(match: np.ndarray) -> np.ndarray:
    """(B, query) key position each query reads: the matching key of smallest rank
    2|i-j| - [j<i], position 0 when none matches."""
    length = match.shape[-1]
    i, j = np.arange(length)[:, None], np.arange(length)[None, :]
    rank = 2 * np.abs(i - j) - (j < i)  # (query, key): distinct for distinct keys
    chosen = np.where(match, rank, 2 * length).argmin(-1)  # (B, query)
    return np.where(match.any(-1), chosen, 0)  # (B, query): BOS when nothing matches


def _categorical_attention(head: CategoricalAttention, trace: dict, valid: np.ndarray) -> np.ndarray:
    """Value at the key each query reads (`closest`)."""
    chosen = closest(matches(head, trace, valid))  # (B, query)
    return np.take_along_axis(trace[head.value], chosen, axis=1)  # (B, T)


def _numerical_attention(head: NumericalAttention, trace: dict, valid: np.ndarray) -> np.ndarray:
    """Sum of the value over every matching key (0 when none matches)."""
    match = matches(head, trace, valid)  # (B, query, key)
    return (match * trace[head.value][:, None, :]).sum(-1)  # (B, T)


def _numerical_mlp(mlp: NumericalMLP, trace: dict) -> np.ndarray:
    """Table lookup; inputs past the table's end read its last entry (docs/semantics.md)."""
    x = trace[mlp.source]  # (B, T)
    return np.asarray(mlp.table)[np.minimum(x, len(mlp.table) - 1)]  # (B, T)


def joint_keys(columns: list[np.ndarray], radices: list[int]) -> np.ndarray:
    """One integer per joint value of several variables: mixed-radix digits, value < radix each."""
    key = np.zeros(columns[0].shape if columns else (), dtype=np.int64)
    for column, radix in zip(columns, radices):
        key = key * radix + column
    return key


def _apply_rules(program: Program, rules: Rules, trace: dict[str, np.ndarray]) -> np.ndarray:
    """Label ids (B, T): the rules' label of each position's joint value, the default elsewhere."""
    shape = trace["tokens"].shape
    if not rules.table:
        return np.full(shape, rules.default)
    table = np.asarray(rules.table, dtype=np.int64)  # (rows, reads + 1)
    radices = [int(max(table[:, n].max(), trace[name].max(initial=0))) + 1 for n, name in enumerate(rules.reads)]
    keys = joint_keys(list(table[:, :-1].T), radices)  # (rows,)
    order = np.argsort(keys)
    keys, labels = keys[order], table[order, -1]
    values = joint_keys([trace[name] for name in rules.reads], radices)  # (B, T)
    where = np.minimum(np.searchsorted(keys, values), len(keys) - 1)  # (B, T)
    return np.where(keys[where] == values, labels[where], rules.default)


def read_rows(classifier: Classifier, name: str, values: np.ndarray) -> np.ndarray | None:
    """What one variable adds to the label scores at each position, (B, T, L), from its values
    (B, T); None where the classifier does not read it."""
    if name in classifier.numerical:
        return np.asarray(classifier.numerical[name]) * values[..., None].astype(np.float64)
    if name in classifier.categorical:
        return np.asarray(classifier.categorical[name])[values]
    return None


def label_scores(program: Program, trace: dict[str, np.ndarray], magnitudes: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """The float64 label scores (B, T or 1, L) of a weights classifier, summed as `classify` sums
    them, and with `magnitudes` the sum of the absolute values of the terms (a bound on their
    rounding error); see `classify`."""
    classifier = program.classifier
    valid = trace["tokens"] != 0  # (B, T)
    shape = trace["tokens"].shape
    rows = (shape[0], 1) if classifier.pooled else shape
    score = np.broadcast_to(np.asarray(classifier.bias), (*rows, len(classifier.bias))).copy()  # (B, T or 1, L)
    magnitude = np.abs(score) if magnitudes else None  # (B, T or 1, L)
    for variable in program.variables:
        # Padding's values (a count whose query read the untrained pad row, say) may lie outside
        # the tables a simplified classifier keeps: it reads 0 there, and is labelled 0.
        added = read_rows(classifier, variable.name, np.where(valid, trace[variable.name], 0))  # (B, T, L)
        if added is None:
            continue
        if classifier.pooled:
            total = np.zeros_like(score)  # (B, 1, L)
            for position in range(shape[1]):  # one addition at a time, in position order
                total = total + np.where(valid[:, position, None, None], added[:, position : position + 1], 0.0)
            added = total / valid.sum(1)[:, None, None]
        score = score + added
        if magnitudes:
            magnitude = magnitude + np.abs(added)
    return score, magnitude


def classify(program: Program, trace: dict[str, np.ndarray]) -> np.ndarray:
    """Label ids (B, T): the rules' label, or float64 scores summed in variable order over the
    variables the classifier reads, the first maximal label, never id 0 at a real position. Pooled,
    each variable adds the sum of its rows over the real positions, in position order, divided by
    their count, and every real position gets that one label. Padding is never classified: 0."""
    valid = trace["tokens"] != 0  # (B, T)
    if isinstance(program.classifier, Rules):
        return np.where(valid, _apply_rules(program, program.classifier, trace), 0)
    score, _ = label_scores(program, trace)  # (B, T or 1, L)
    return np.where(valid, score[..., 1:].argmax(-1) + 1, 0)  # (B, T)


def check_input_space(program: Program, tokens: np.ndarray) -> None:
    """ValueError unless every right-padded id row (B, T) is in the program's input space."""
    space = program.input_space
    if space is None:
        return
    ids = {token: i for i, token in enumerate(program.input_vocab)}
    lengths = (tokens != 0).sum(1)  # (B,)
    content = lengths - 1 - int(space.eos)  # (B,)
    rows = np.arange(len(tokens))
    positions = np.arange(tokens.shape[1])[None, :]  # (1, T)
    inside = (positions >= 1) & (positions <= content[:, None])  # (B, T): content positions
    symbols = np.isin(tokens, [ids[symbol] for symbol in space.symbols if symbol in ids])  # (B, T)
    ok = (tokens[:, 0] == ids.get(BOS, -1)) & (content >= space.min_len) & (content <= space.max_len)
    ok &= (symbols | ~inside).all(1) & ((tokens != 0) == (positions < lengths[:, None])).all(1)
    if space.eos:
        ok &= tokens[rows, np.maximum(lengths - 1, 0)] == ids.get(EOS, -1)
    if not ok.all():
        bad = [program.input_vocab[i] for i in tokens[int(np.flatnonzero(~ok)[0])] if i != 0]
        raise ValueError(f"{bad} is not an input of this program; it is defined on {space.describe()}")


def run_batch(program: Program, ids: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Predictions (B, T) and every variable's (B, T) values for right-padded id sequences (pad 0)."""
    tokens = np.asarray(ids, dtype=np.int64)
    if tokens.ndim != 2:
        raise ValueError(f"expected a (batch, length) array of token ids, got shape {tokens.shape}")
    batch, length = tokens.shape
    if length > program.max_len:
        raise ValueError(f"sequences of length {length} exceed the program's max_len {program.max_len}")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= len(program.input_vocab)):
        raise ValueError("token ids outside the input vocabulary")
    check_input_space(program, tokens)
    valid = tokens != 0  # (B, T)
    trace = {"tokens": tokens, "positions": np.broadcast_to(np.arange(length), (batch, length)).copy()}
    for embedding in program.embeddings:
        trace[embedding.name] = np.asarray(embedding.table)[tokens]
    trace["ones"] = np.ones((batch, length), dtype=np.int64)
    for variable in program.variables:
        if variable.constant is not None:
            trace[variable.name] = np.full((batch, length), variable.constant, dtype=np.int64)
    for layer in program.layers:
        for component in layer.components():
            if isinstance(component, CategoricalAttention):
                trace[component.name] = _categorical_attention(component, trace, valid)
            elif isinstance(component, NumericalAttention):
                trace[component.name] = _numerical_attention(component, trace, valid)
            elif isinstance(component, CategoricalMLP):
                trace[component.name] = np.asarray(component.table)[trace[component.first], trace[component.second]]
            else:
                trace[component.name] = _numerical_mlp(component, trace)
    order = [variable.name for variable in program.variables]
    trace = {name: trace[name] for name in (order if "tokens" in order else ["tokens", *order])}  # variable order
    return classify(program, trace), trace


CHUNK = 8192  # inputs per interpreter call where many inputs are run


def traces(program: Program, inputs: np.ndarray) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """(valid mask, trace) of the interpreter on `inputs` (N, T), a chunk of them at a time."""
    for start in range(0, len(inputs), CHUNK):
        chunk = inputs[start : start + CHUNK]
        yield chunk != 0, run_batch(program, chunk)[1]


def as_tokens(program: Program, words: list[str]) -> list[str]:
    """Input words as the program reads them (word tasks: digits as "@", unknown words as <unk>)."""
    if program.replace_numbers:
        words = [DIGITS.sub("@", word) for word in words]
    if program.unknown is not None:
        known = set(program.input_vocab)
        words = [word if word in known and word != PAD else program.unknown for word in words]
    return list(words)


def encode_tokens(program: Program, tokens: list[str]) -> np.ndarray:
    """One input, read as the program reads words (`as_tokens`), as a (1, T) id array;
    ValueError for an empty input or a token the program cannot read."""
    index = {token: i for i, token in enumerate(program.input_vocab) if token != PAD}
    if not tokens:
        raise ValueError("empty input: a sequence holds at least '<s>'")
    tokens = as_tokens(program, list(tokens))
    unknown = [token for token in tokens if token not in index]
    if unknown:
        raise ValueError(f"token {unknown[0]!r} is not in the input vocabulary")
    return np.array([[index[token] for token in tokens]])  # (1, T)


def run_tokens(program: Program, tokens: list[str]) -> list[str]:
    """The predicted label of every position of one sequence of token strings."""
    predictions, _ = run_batch(program, encode_tokens(program, tokens))
    return [program.label_vocab[label] for label in predictions[0]]

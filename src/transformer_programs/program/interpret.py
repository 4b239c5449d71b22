"""IR interpreter: vectorized numpy evaluation of a Program, rule for rule as docs/semantics.md."""

from __future__ import annotations

import numpy as np

from ..vocab import PAD
from .ir import CategoricalAttention, CategoricalMLP, NumericalAttention, NumericalMLP, Program


def _matches(head: CategoricalAttention | NumericalAttention, trace: dict, valid: np.ndarray) -> np.ndarray:
    """(B, query, key) booleans: key is a candidate of the query and matches its predicate."""
    target = np.asarray(head.predicate)[trace[head.query]]  # (B, T): key value each query looks for
    match = target[:, :, None] == trace[head.key][:, None, :]  # (B, query, key)
    visible = valid[:, None, :]  # (B, 1, key): pad positions are never keys
    if head.causal:
        length = valid.shape[1]
        visible = visible & np.tri(length, dtype=bool)  # (B, query, key): key <= query
    return match & visible


def _categorical_attention(head: CategoricalAttention, trace: dict, valid: np.ndarray) -> np.ndarray:
    """Value at the matching key of smallest rank 2|i-j| - [j<i]; position 0 when none matches."""
    match = _matches(head, trace, valid)  # (B, query, key)
    length = valid.shape[1]
    i, j = np.arange(length)[:, None], np.arange(length)[None, :]
    rank = 2 * np.abs(i - j) - (j < i)  # (query, key): distinct for distinct keys
    chosen = np.where(match, rank, 2 * length).argmin(-1)  # (B, query)
    chosen = np.where(match.any(-1), chosen, 0)  # (B, query): BOS when nothing matches
    return np.take_along_axis(trace[head.value], chosen, axis=1)  # (B, T)


def _numerical_attention(head: NumericalAttention, trace: dict, valid: np.ndarray) -> np.ndarray:
    """Sum of the value over every matching key (0 when none matches)."""
    match = _matches(head, trace, valid)  # (B, query, key)
    return (match * trace[head.value][:, None, :]).sum(-1)  # (B, T)


def _numerical_mlp(mlp: NumericalMLP, trace: dict) -> np.ndarray:
    """Table lookup; an input beyond the table's bound is an error, never a default."""
    x = trace[mlp.source]  # (B, T)
    if x.size and x.max() >= len(mlp.table):
        raise ValueError(f"{mlp.name}: input {x.max()} exceeds the bound {len(mlp.table) - 1} of {mlp.source}")
    return np.asarray(mlp.table)[x]  # (B, T)


def classify(program: Program, trace: dict[str, np.ndarray]) -> np.ndarray:
    """Label ids (B, T): float64 scores summed in variable order, first max label, never id 0."""
    classifier = program.classifier
    shape = trace["tokens"].shape
    score = np.broadcast_to(np.asarray(classifier.bias), (*shape, len(classifier.bias))).copy()  # (B, T, L)
    for variable in program.variables:
        values = trace[variable.name]  # (B, T)
        if variable.numerical:
            score = score + np.asarray(classifier.numerical[variable.name]) * values[..., None].astype(np.float64)
        else:
            score = score + np.asarray(classifier.categorical[variable.name])[values]  # (B, T, L)
    return score[..., 1:].argmax(-1) + 1  # (B, T)


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
    valid = tokens != 0  # (B, T)
    trace = {"tokens": tokens, "positions": np.broadcast_to(np.arange(length), (batch, length)).copy()}
    for embedding in program.embeddings:
        trace[embedding.name] = np.asarray(embedding.table)[tokens]
    trace["ones"] = np.ones((batch, length), dtype=np.int64)
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
    return classify(program, trace), trace


def run_tokens(program: Program, tokens: list[str]) -> list[str]:
    """The predicted label of every position of one sequence of token strings."""
    index = {token: i for i, token in enumerate(program.input_vocab) if token != PAD}
    if not tokens:
        raise ValueError("empty input: a sequence holds at least '<s>'")
    unknown = [token for token in tokens if token not in index]
    if unknown:
        raise ValueError(f"token {unknown[0]!r} is not in the input vocabulary")
    predictions, _ = run_batch(program, np.array([[index[token] for token in tokens]]))
    return [program.label_vocab[label] for label in predictions[0]]

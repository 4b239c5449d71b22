"""The paper's "feature function" view of a word-task program, which no reader takes in as 10,000
table rows: the most frequent training words of each value of each embedding variable, and for
each label the variable values that most favour it in the classifier."""

from __future__ import annotations

import html
import re
from collections import Counter

import numpy as np

from ..program.domains import value_domains
from ..program.ir import Classifier, Program
from .trace import show

MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#])")  # characters Markdown would read as markup
FEATURES_MARK = "# Feature functions: "  # how every features page starts
WORDS_PER_VALUE = 10
FEATURES_PER_LABEL = 10


def embedding_words(program: Program, training: list[list[str]]) -> dict[str, dict[int, list[tuple[str, int]]]]:
    """For each embedding variable and each of its values, its most frequent training words with counts."""
    counts = Counter(word for sentence in training for word in sentence)
    index = {token: i for i, token in enumerate(program.input_vocab)}
    out: dict[str, dict[int, list[tuple[str, int]]]] = {}
    for embedding in program.embeddings:
        by_value: dict[int, list[tuple[str, int]]] = {}
        for word, count in counts.most_common():
            if word in index:
                words = by_value.setdefault(embedding.table[index[word]], [])
                if len(words) < WORDS_PER_VALUE:
                    words.append((word, count))
        out[embedding.name] = dict(sorted(by_value.items()))
    return out


def favoured(program: Program) -> dict[str, list[tuple[str, float]]]:
    """For each label, the categorical variable values whose classifier weight for it most exceeds
    their mean weight for the other labels."""
    classifier = program.classifier
    if not isinstance(classifier, Classifier):
        return {}
    domains = value_domains(program)
    features = []  # (name=value, weights per label)
    for name, table in classifier.categorical.items():
        features += [(f"{name}={show(program, name, value)}", np.asarray(table[value])) for value in domains[name]]
    out = {}
    for label in range(1, len(program.label_vocab)):
        others = [n for n in range(1, len(program.label_vocab)) if n != label]
        margin = [(text, float(w[label] - np.mean(w[others]))) for text, w in features]
        out[program.label_vocab[label]] = sorted(margin, key=lambda item: -item[1])[:FEATURES_PER_LABEL]
    return out


def markdown_text(text: str) -> str:
    """Text (a word, a label) as Markdown that shows it literally: HTML and table pipes escaped."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def features_markdown(program: Program, training: list[list[str]], title: str) -> str:
    """Both views as one Markdown page."""
    lines = [f"{FEATURES_MARK}{markdown_text(title)}", "", "## Embedding variables", "",
             "Each value of each learned embedding, with its most frequent training words (and their counts).", ""]
    for name, by_value in embedding_words(program, training).items():
        lines += [f"### {name}", "", "| value | words |", "|---|---|"]
        lines += [f"| {value} | {', '.join(f'{markdown_text(w)} ({c})' for w, c in words)} |"
                  for value, words in by_value.items()]
        lines.append("")
    lines += ["## Classifier", "", "For each label, the variable values whose weight for it most exceeds their mean "
              "weight for the other labels" + (" (each counts by its share of the positions)"
                                               if getattr(program.classifier, "pooled", False) else "") + ".", ""]
    for label, features in favoured(program).items():
        lines += [f"### {markdown_text(label)}", "",
                  ", ".join(f"{markdown_text(text)} ({margin:+.2f})" for text, margin in features), ""]
    return "\n".join(lines)

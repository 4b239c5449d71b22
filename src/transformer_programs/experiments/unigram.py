"""The paper's "unigram" reference for named entities: tag each word with the tag it carries most
often in training, on the same splits and vocabulary as a Transformer Program run (words outside
the vocabulary read as <unk>, which gets the tag <unk> carries most often).

`python -m transformer_programs.experiments.unigram conll_ner [--data-dir DIR] [--vocab-size N]`
prints its entity precision, recall and F1 on validation and test.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict

from ..config import TrainConfig
from ..data import Dataset, build_dataset
from ..train import entity_scores
from ..vocab import PAD


def unigram_tags(data: Dataset) -> dict[str, str]:
    """Each training word's most frequent tag (the first seen of the most frequent on ties)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for words, tags in zip(data.splits.train.inputs, data.splits.train.labels):
        for word, tag in zip(words, tags):
            if tag != PAD:
                counts[word][tag] += 1
    return {word: tags.most_common(1)[0][0] for word, tags in counts.items()}


def unigram_scores(config: TrainConfig) -> dict[str, dict[str, float]]:
    """Entity precision, recall and F1 of the unigram tagger on validation and test (a word never
    seen in training, possible only where <unk> never occurs there, is tagged O)."""
    data = build_dataset(config)
    if not data.tagging:
        raise ValueError(f"{config.task}: the unigram reference is for tagging tasks (conll_ner)")
    tag_of = unigram_tags(data)
    scores = {}
    for name in ("val", "test"):
        split = getattr(data.splits, name)
        expected = [[tag for tag in tags if tag != PAD] for tags in split.labels]
        predicted = [[tag_of.get(word, "O") for word, tag in zip(words, tags) if tag != PAD]
                     for words, tags in zip(split.inputs, split.labels)]
        scores[name] = entity_scores(predicted, expected)
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the unigram reference for a tagging task")
    parser.add_argument("task", nargs="?", default="conll_ner")
    parser.add_argument("--data-dir")
    parser.add_argument("--vocab-size", type=int, help="words kept (default: the task's, as training uses)")
    args = parser.parse_args(argv)
    config = TrainConfig(task=args.task, data_dir=args.data_dir, vocab_size=args.vocab_size)
    scores = unigram_scores(config.resolved())
    print("split  precision  recall     F1")
    for name, row in scores.items():
        print(f"{name:5} {100 * row['precision']:10.2f} {100 * row['recall']:7.2f} {100 * row['f1']:6.2f}")


if __name__ == "__main__":
    main()

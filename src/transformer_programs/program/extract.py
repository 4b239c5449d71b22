"""Model -> Program: read the argmax of every discrete choice of a TransformerProgram."""

from __future__ import annotations

import torch

from ..model.program_config import variable_layout
from ..model.program_model import TransformerProgram
from ..vocab import Vocab
from .ir import (
    CategoricalAttention,
    CategoricalMLP,
    Classifier,
    Embedding,
    Layer,
    NumericalAttention,
    NumericalMLP,
    Program,
    Variable,
)


def _floats(tensor: torch.Tensor) -> list:
    """float32 weights widened exactly to Python floats (nested lists)."""
    return tensor.detach().double().tolist()


def _attention_heads(module, cls: type, prefix: str, cat_names: list[str], value_names: list[str]) -> list:
    """The heads of one attention module (or None) as IR records named f"{prefix}_{head}"."""
    if module is None:
        return []
    choices = zip(module.query.choice().tolist(), module.key.choice().tolist(), module.value.choice().tolist())
    tables = module.predicate.table().tolist()
    return [
        cls(f"{prefix}_{h}", cat_names[q], cat_names[k], value_names[v], tables[h], module.causal)
        for h, (q, k, v) in enumerate(choices)
    ]


def _kept(components: list, pruned: dict[str, int]) -> list:
    """The components that pruning has not replaced by a constant."""
    return [component for component in components if component.name not in pruned]


def extract(model: TransformerProgram, input_vocab: Vocab, label_vocab: Vocab, unknown: str | None = None,
            replace_numbers: bool = False) -> Program:
    """The Program of a TransformerProgram: same variables, tables and classifier, exactly (word
    tasks: with how their inputs become tokens)."""
    config = model.config
    if len(input_vocab) != config.n_tokens or len(label_vocab) != config.n_labels:
        raise ValueError(
            f"vocabularies of {len(input_vocab)} tokens and {len(label_vocab)} labels do not fit a model "
            f"built for {config.n_tokens} and {config.n_labels}"
        )
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"the model's {name} holds a non-finite weight (NaN or infinity); it has no program")
    layout = variable_layout(config)
    cat_names = [name for name, kind in layout if kind == "cat"]
    num_names = [name for name, kind in layout if kind == "num"]
    kinds = {"tokens": "token", "positions": "position"}  # display kinds; the rest are "abstract"
    embeddings = []
    if model.embed is not None:
        embeddings = [Embedding(f"embed_{k}", row) for k, row in enumerate(model.embed.table().tolist())]
    bounds = [1]  # per numerical variable, as TransformerProgram.discrete computes them
    layers = []
    with torch.no_grad():
        for index, block in enumerate(model.blocks):
            bounds = block.numerical_bounds(bounds, config.max_len)
            attention = _attention_heads(block.cat_attn, CategoricalAttention, f"attn_{index}", cat_names, cat_names)
            numerical = _attention_heads(block.num_attn, NumericalAttention, f"num_attn_{index}", cat_names, num_names)
            mlps, numerical_mlps = [], []
            if block.cat_mlp is not None:
                pairs = zip(block.cat_mlp.first.choice().tolist(), block.cat_mlp.second.choice().tolist())
                tables = block.cat_mlp.table().tolist()
                mlps = [
                    CategoricalMLP(f"mlp_{index}_{m}", cat_names[a], cat_names[b], tables[m])
                    for m, (a, b) in enumerate(pairs)
                ]
            if block.num_mlp is not None:
                sources = block.num_mlp.source.choice().tolist()
                tables = block.num_mlp.table([bounds[i] for i in sources])
                numerical_mlps = [
                    NumericalMLP(f"num_mlp_{index}_{m}", num_names[i], tables[m].tolist())
                    for m, i in enumerate(sources)
                ]
            for head in attention:
                kinds[head.name] = kinds.get(head.value, "abstract")
            pruned = config.pruned
            layers.append(Layer(*(_kept(part, pruned) for part in (attention, numerical, mlps, numerical_mlps))))
    bound_of = dict(zip(num_names, bounds))
    variables = [
        Variable(name, kind == "num", "number" if kind == "num" else kinds.get(name, "abstract"), bound_of.get(name),
                 config.pruned.get(name))
        for name, kind in layout
    ]
    read = [name for name, _ in layout if name not in config.unread]
    categorical = dict(zip(cat_names, _floats(model.classifier_cat)))
    numerical = dict(zip(num_names, _floats(model.classifier_num)))
    classifier = Classifier(
        bias=_floats(model.classifier_bias),
        categorical={name: categorical[name] for name in read if name in categorical},
        numerical={name: numerical[name] for name in read if name in numerical},
        pooled=config.pooled,
    )
    return Program(
        input_vocab=list(input_vocab.tokens),
        label_vocab=list(label_vocab.tokens),
        max_len=config.max_len,
        d=config.d,
        variables=variables,
        embeddings=embeddings,
        layers=layers,
        classifier=classifier,
        unknown=unknown,
        replace_numbers=replace_numbers,
    )

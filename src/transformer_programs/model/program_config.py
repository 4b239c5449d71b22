"""The shape of a TransformerProgram: its settings (`ProgramConfig`) and the names and kinds of
its variables and parts, in the order docs/semantics.md gives them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

ATTENTION_KINDS = ("sharp", "soft")  # relaxed categorical attention (layers.CategoricalAttention)


@dataclass
class ProgramConfig:
    """Everything needed to rebuild a TransformerProgram."""

    n_tokens: int  # input vocabulary size, <pad> included
    n_labels: int  # label vocabulary size, <pad> included (never predicted)
    max_len: int  # positions 0..max_len-1: the longest sequence of any split
    layers: int = 3
    heads_cat: int = 4  # categorical attention heads per layer
    heads_num: int = 4  # numerical attention heads per layer
    mlps_cat: int = 2  # categorical MLPs per layer
    mlps_num: int = 2  # numerical MLPs per layer
    n_embed_vars: int = 0  # learned categorical token embeddings beside the one-hot tokens
    causal: bool = False  # queries see only earlier keys (dyck, induction)
    mlp_hidden: int = 64  # hidden width of every categorical MLP before it is read off as a table
    # Training only, the discrete model is the same: "sharp" attention reads the nearest match
    # from the start; "soft" (the paper's log-match logits) averages over likely matches while
    # the temperature is high, which dyck2 needs (README, Results) and induction cannot bear.
    attention: str = "sharp"
    # Pruning (tprog prune), empty for a trained run: layer outputs replaced by a constant value
    # at every position, and variables the classifier does not read.
    pruned: dict[str, int] = field(default_factory=dict)
    unread: list[str] = field(default_factory=list)

    # Word tasks: a small value space (d_values) in which tokens are read only through the learned
    # embeddings, dropout on layer outputs, and a classifier pooled over positions (one label per text).
    d_values: int | None = None  # values of categorical variables; default: one per token id
    tokens_variable: bool = True  # whether the token ids are a variable of the stream
    dropout: float = 0.0  # on every layer output, in training
    pooled: bool = False  # the classifier reads every variable's mean over real positions
    # A learned L0 gate per part and per classifier read (model/gates.py): a closed gate prunes
    # its part (constant 0) or unreads its variable, on top of `pruned` and `unread`.
    gates: bool = False
    # The classifier's weights are multiples of this once rounding starts (model/points.py); 0: free floats.
    classifier_step: float = 0.0

    @property
    def d(self) -> int:
        """Size of the shared value space of categorical variables."""
        return max(self.d_values or self.n_tokens, self.max_len)

    def to_dict(self) -> dict:
        return asdict(self)


def layer_layout(config: ProgramConfig, layer: int) -> list[tuple[str, str]]:
    """(name, "cat" | "num") of one layer's outputs (heads, then MLPs), in variable order."""
    layout = [(f"attn_{layer}_{h}", "cat") for h in range(config.heads_cat)]
    layout += [(f"num_attn_{layer}_{h}", "num") for h in range(config.heads_num)]
    layout += [(f"mlp_{layer}_{m}", "cat") for m in range(config.mlps_cat)]
    return layout + [(f"num_mlp_{layer}_{m}", "cat") for m in range(config.mlps_num)]


def variable_layout(config: ProgramConfig) -> list[tuple[str, str]]:
    """(name, "cat" | "num") of every variable, in the order of docs/semantics.md."""
    layout = [("tokens", "cat")] if config.tokens_variable else []
    layout += [("positions", "cat")]
    layout += [(f"embed_{k}", "cat") for k in range(config.n_embed_vars)]
    layout.append(("ones", "num"))
    for layer in range(config.layers):
        layout += layer_layout(config, layer)
    return layout


def part_names(config: ProgramConfig) -> list[str]:
    """Every layer output of the model, in variable order."""
    return [name for layer in range(config.layers) for name, _ in layer_layout(config, layer)]



def check_pruning(config: ProgramConfig) -> None:
    """Pruned parts must be layer outputs with a constant in range; unread names must be variables."""
    kinds = dict(variable_layout(config))
    parts = set(part_names(config))
    for name, value in config.pruned.items():
        if name not in parts:
            raise ValueError(f"pruned part {name!r} is not a layer output of this model")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"pruned part {name!r} needs a non-negative integer constant, got {value!r}")
        if kinds[name] == "cat" and value >= config.d:
            raise ValueError(f"pruned part {name!r}: constant {value} is outside the values 0..{config.d - 1}")
    unknown = [name for name in config.unread if name not in kinds]
    if unknown:
        raise ValueError(f"unread variable {unknown[0]!r} is not a variable of this model")

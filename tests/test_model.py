"""The Transformer Program model: shapes, masking, determinism, relaxed -> discrete collapse."""

import pytest
import torch

from transformer_programs.model.layers import NumericalMLP, discrete_match, key_mask, tie_break_rank
from transformer_programs.model.program_config import ProgramConfig, variable_layout
from transformer_programs.model.program_model import TransformerProgram, linear_readout

CONFIGS = {
    "full": dict(layers=2, heads_cat=2, heads_num=2, mlps_cat=1, mlps_num=1),
    "embeddings": dict(layers=2, heads_cat=2, heads_num=1, mlps_cat=1, mlps_num=1, n_embed_vars=2),
    "categorical only": dict(layers=2, heads_cat=3, heads_num=0, mlps_cat=2, mlps_num=0),
    "numerical only": dict(layers=2, heads_cat=0, heads_num=3, mlps_cat=0, mlps_num=2),
    "causal": dict(layers=2, heads_cat=2, heads_num=2, mlps_cat=1, mlps_num=1, causal=True),
    "attention only": dict(layers=3, heads_cat=1, heads_num=0, mlps_cat=0, mlps_num=0, causal=True),
    "soft attention": dict(layers=2, heads_cat=2, heads_num=1, mlps_cat=1, mlps_num=1, causal=True, attention="soft"),
}


def make(name: str, seed: int = 0, n_tokens: int = 9, max_len: int = 8) -> TransformerProgram:
    torch.manual_seed(seed)
    return TransformerProgram(ProgramConfig(n_tokens=n_tokens, n_labels=6, max_len=max_len, **CONFIGS[name]))


def batch(n: int = 64, length: int = 8, n_tokens: int = 9, seed: int = 1) -> torch.Tensor:
    """Random sequences starting with BOS (id 1), right-padded with id 0 to random lengths."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(2, n_tokens, (n, length), generator=gen)  # (n, T)
    tokens[:, 0] = 1
    lengths = torch.randint(1, length + 1, (n,), generator=gen)
    tokens[torch.arange(length)[None, :] >= lengths[:, None]] = 0
    return tokens


@pytest.mark.parametrize("name", CONFIGS)
def test_shapes_of_both_paths(name):
    model = make(name)
    tokens = batch()
    logits = model(tokens, 1.0, torch.Generator().manual_seed(0))
    assert logits.shape == (64, 8, 6)
    predictions, trace = model.discrete(tokens)
    assert predictions.shape == (64, 8)
    assert list(trace) == [name for name, _ in variable_layout(model.config)]
    assert all(values.shape == (64, 8) for values in trace.values())
    assert predictions.min() >= 1  # the padding label is never predicted


@pytest.mark.parametrize("name", CONFIGS)
def test_padding_does_not_change_valid_positions(name):
    model = make(name)
    short = batch(length=6)
    padded = torch.cat([short, torch.zeros(64, 2, dtype=torch.long)], dim=1)
    valid = short != 0
    assert torch.equal(model.predict(short)[valid], model.predict(padded)[:, :6][valid])
    relaxed_short = model(short, 0.5)[valid]
    relaxed_padded = model(padded, 0.5)[:, :6][valid]
    assert torch.allclose(relaxed_short, relaxed_padded, atol=1e-5)


def test_causal_model_ignores_the_future():
    model = make("causal")
    tokens = batch(length=8)
    tokens[tokens == 0] = 3  # full length, so changing the tail is visible to a non-causal model
    changed = tokens.clone()
    changed[:, 5:] = torch.where(changed[:, 5:] == 4, 5, 4)
    assert torch.equal(model.predict(tokens)[:, :5], model.predict(changed)[:, :5])
    assert torch.allclose(model(tokens, 0.7)[:, :5], model(changed, 0.7)[:, :5], atol=1e-5)
    non_causal = make("full")
    assert not torch.equal(non_causal.predict(tokens)[:, :5], non_causal.predict(changed)[:, :5])


@pytest.mark.parametrize("name", CONFIGS)
def test_discrete_model_is_deterministic_and_row_independent(name):
    model = make(name)
    tokens = batch()
    first, trace = model.discrete(tokens)
    again, _ = model.discrete(tokens)
    assert torch.equal(first, again)
    alone = torch.cat([model.predict(tokens[i : i + 1]) for i in range(len(tokens))])
    assert torch.equal(first, alone)


@pytest.mark.parametrize("name", CONFIGS)
def test_relaxed_model_collapses_to_discrete_as_temperature_falls(name):
    model = make(name).double()
    tokens = batch(n=256)
    valid = tokens != 0
    discrete = model.predict(tokens)

    def agreement(tau: float) -> float:
        with torch.no_grad():
            relaxed = model(tokens, tau)[..., 1:].argmax(-1) + 1
        return (relaxed == discrete)[valid].double().mean().item()

    assert agreement(1e-7) == 1.0
    assert agreement(3.0) < 1.0  # at the initial temperature the relaxation is far from argmax


def test_gumbel_noise_is_seeded():
    model = make("full")
    tokens = batch()
    a = model(tokens, 1.0, torch.Generator().manual_seed(5))
    b = model(tokens, 1.0, torch.Generator().manual_seed(5))
    c = model(tokens, 1.0, torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_linear_readout_by_chunk_equals_one_product_over_every_variable():
    generator = torch.Generator().manual_seed(0)
    batch_size, length, d, labels = 3, 5, 4, 6
    chunks = [torch.rand(c, batch_size, length, d, generator=generator, dtype=torch.float64) for c in (2, 3, 1)]
    num = torch.rand(2, batch_size, length, generator=generator, dtype=torch.float64)
    weights_cat = torch.randn(6, d, labels, generator=generator, dtype=torch.float64)
    weights_num = torch.randn(2, labels, generator=generator, dtype=torch.float64)
    bias = torch.randn(labels, generator=generator, dtype=torch.float64)
    stream = torch.cat(chunks)  # (V, B, T, d)
    expected = (torch.einsum("vbtd,vdl->btl", stream, weights_cat) + torch.einsum("nbt,nl->btl", num, weights_num)
                + bias).reshape(-1, labels)  # (B*T, L)
    assert torch.allclose(linear_readout(chunks, num, weights_cat, weights_num, bias), expected)
    assert not torch.allclose(linear_readout(chunks[::-1], num, weights_cat, weights_num, bias), expected)  # order matters


def test_tie_break_rank_prefers_nearest_then_earlier():
    rank = tie_break_rank(5)
    query = 2
    order = sorted(range(5), key=lambda key: rank[query, key].item())
    assert order == [2, 1, 3, 0, 4]


def test_categorical_attention_chooses_closest_match_or_bos():
    """A one-head model reading tokens with predicate 'same token': hand-checked choices."""
    torch.manual_seed(0)
    config = ProgramConfig(n_tokens=6, n_labels=3, max_len=6, layers=1, heads_cat=1, heads_num=0, mlps_cat=0, mlps_num=0)
    model = TransformerProgram(config)
    head = model.blocks[0].cat_attn
    with torch.no_grad():
        for selector, var in ((head.query, 0), (head.key, 0), (head.value, 1)):  # tokens, tokens, positions
            selector.logits.zero_()
            selector.logits[0, var] = 5.0
        head.predicate.logits.copy_(torch.eye(config.d)[None] * 5)  # query value v matches key value v
    tokens = torch.tensor([[1, 2, 3, 2, 2, 4]])  # <s> a b a a c (ids)
    _, trace = model.discrete(tokens)
    # Each position matches itself first; nothing else is nearer.
    assert trace["attn_0_0"].tolist() == [[0, 1, 2, 3, 4, 5]]
    with torch.no_grad():
        head.predicate.logits.copy_(torch.roll(torch.eye(config.d), 1, dims=1)[None] * 5)  # v matches v+1
    _, trace = model.discrete(tokens)
    # a(2)->b(3): nearest b; b(3)->4: nearest 4 at position 5; a at 3 and 4: b at 2 (left, nearer);
    # c(4)->5: no match -> BOS; <s>(1)->2: nearest a.
    assert trace["attn_0_0"].tolist() == [[1, 2, 5, 2, 2, 0]]


def test_numerical_bounds_compound_across_layers():
    model = make("numerical only", max_len=8)
    tokens = batch()
    _, trace = model.discrete(tokens)
    bounds = [1]
    for block in model.blocks:
        bounds = block.numerical_bounds(bounds, model.config.max_len)
    numerical = [name for name, kind in variable_layout(model.config) if kind == "num"]
    for name, bound in zip(numerical, bounds):
        assert trace[name].min() >= 0 and trace[name].max() <= bound


def test_unknown_attention_is_rejected():
    with pytest.raises(ValueError, match="unknown attention 'hard'"):
        TransformerProgram(ProgramConfig(n_tokens=9, n_labels=6, max_len=8, attention="hard"))


def test_soft_attention_spreads_over_matches_while_sharp_reads_the_nearest():
    """At a high temperature (no noise) soft attention averages its matches; sharp does not."""
    torch.manual_seed(0)
    heads = {}
    for kind in ("sharp", "soft"):
        config = ProgramConfig(n_tokens=9, n_labels=6, max_len=8, layers=1, heads_cat=1, heads_num=0,
                               mlps_cat=0, mlps_num=0, attention=kind)
        heads[kind] = TransformerProgram(config).blocks[0].cat_attn
    tokens = torch.tensor([[1, 4, 4, 4, 4, 4, 4, 4]])
    one_hot = torch.nn.functional.one_hot(tokens, 9).double()[None]  # (1 head, B, T, d)
    positions = torch.nn.functional.one_hot(torch.arange(8), 9).double()[None, None]  # (1, 1, T, d)
    for head in heads.values():
        head.double()
        head.predicate.logits.data[:] = -50.0
        head.predicate.logits.data[0, 4, 4] = 50.0  # token 4 matches token 4: every key but BOS
    weights = {kind: head.relaxed(one_hot, one_hot, positions, tokens != 0, 3.0, None)[0, 0, 4]
               for kind, head in heads.items()}  # (d,): where query 4 reads from
    assert weights["sharp"].argmax() == 4  # itself, the nearest match, well ahead of the farthest
    assert weights["sharp"][4] > 5 * weights["sharp"][1]
    soft = weights["soft"][1:8]  # every match about equally; BOS, no match, far less
    assert soft.max() < 1.5 * soft.min() and weights["soft"][0] < 0.25 * soft.min()


@pytest.mark.parametrize("kind", ["sharp", "soft"])
def test_attention_stays_finite_when_dropout_scales_a_match_above_one(kind):
    """Dropout at 0.5 doubles kept values, so q^T P k can reach 2: BOS's fallback score must not
    go negative (soft attention's log of it was NaN, and a CoNLL run diverged at epoch 7)."""
    config = ProgramConfig(n_tokens=9, n_labels=6, max_len=8, layers=1, heads_cat=1, heads_num=0,
                           mlps_cat=0, mlps_num=0, attention=kind)
    head = TransformerProgram(config).blocks[0].cat_attn.double()
    head.predicate.logits.data[:] = -50.0
    head.predicate.logits.data[0, 4, 4] = 50.0  # token 4 matches token 4
    tokens = torch.tensor([[1, 4, 2, 0]])
    kept_twice = 2 * torch.nn.functional.one_hot(tokens, 9).double()[None]  # (1 head, B, T, d): as after dropout
    out = head.relaxed(kept_twice, kept_twice, kept_twice, tokens != 0, 1.0, torch.Generator().manual_seed(0))
    assert torch.isfinite(out).all()


def test_too_long_input_is_rejected():
    model = make("full", max_len=4)
    with pytest.raises(ValueError, match="max_len"):
        model.predict(batch(length=6))


def test_numerical_mlp_reads_one_row_per_count_and_interpolates_between():
    mlp = NumericalMLP(n_mlps=2, n_num_vars=3, d=5, max_count=4)
    rows = mlp.count_rows.detach()  # (M, counts, d)
    counts = torch.tensor([[0.0, 3.0, 4.0, 9.0], [1.0, 2.5, 3.25, 4.0]])  # (M, n)
    logits = mlp.logits(counts).detach()  # (M, n, d)
    assert torch.equal(logits[0, 0], rows[0, 0]) and torch.equal(logits[0, 1], rows[0, 3])
    assert torch.equal(logits[0, 2], rows[0, 4]) and torch.equal(logits[0, 3], rows[0, 4])  # beyond: last row
    assert torch.allclose(logits[1, 1], (rows[1, 2] + rows[1, 3]) / 2)
    assert torch.allclose(logits[1, 2], 0.75 * rows[1, 3] + 0.25 * rows[1, 4])
    # the discrete table is the argmax row of each count up to the last row, which larger counts read
    tables = mlp.table([6, 2])
    assert tables[0].tolist() == [int(rows[0, x].argmax()) for x in range(5)]
    assert tables[1].tolist() == [int(rows[1, x].argmax()) for x in range(3)]
    counts = torch.tensor([[[0] * 3, [4] * 3, [5] * 3, [6] * 3]])  # (B, T, N): every variable 0, 4, 5, 6
    last = int(tables[0][-1])
    assert mlp.discrete(counts, [6, 6])[0, :, 0].tolist() == [int(tables[0][0]), last, last, last]  # bound per MLP
    # a soft count passes gradient to both neighbouring rows and to the count itself
    soft = torch.tensor([[2.5], [0.0]], requires_grad=True)
    mlp.logits(soft)[0, 0, 0].backward()
    assert mlp.count_rows.grad[0, 2, 0] == 0.5 and mlp.count_rows.grad[0, 3, 0] == 0.5
    assert soft.grad[0, 0] == rows[0, 3, 0] - rows[0, 2, 0]


@pytest.mark.parametrize("kind", ["sharp", "soft"])
def test_gumbel_sample_at_low_temperature_reads_a_matching_key(kind):
    """As τ falls a Gumbel-softmax sample becomes a draw from softmax(logits), not their argmax:
    a non-matching key must sit far enough below a match that the draw (almost) never lands on it.

    Soft logits put a non-match 13.8 below a match, less under 1 of rank: never, here. Sharp ones
    put it 2 * max_len + 2 below, less up to 2 * max_len - 2 of rank, so a near non-match can
    outdraw a far match with weight e^-4: rarely (2 of 9,220 reads here).
    """
    length, d = 8, 9
    config = ProgramConfig(n_tokens=d, n_labels=6, max_len=length, layers=1, heads_cat=4, heads_num=0,
                           mlps_cat=0, mlps_num=0, causal=True, attention=kind)
    head = TransformerProgram(config).blocks[0].cat_attn.double()
    gen = torch.Generator().manual_seed(0)
    table = torch.randint(0, d, (4, d), generator=gen)  # (H, query value): the matched key value
    with torch.no_grad():
        head.predicate.logits.copy_(1e3 * torch.nn.functional.one_hot(table, d))  # every sample is the table
    tokens = batch(n=512, length=length, seed=2)  # only its padding matters: which keys are visible
    values = torch.randint(0, 5, (4, *tokens.shape), generator=gen)  # (H, B, T): q = k; 5 values, several matches
    one_hot = torch.nn.functional.one_hot(values, d).double()  # (H, B, T, d)
    positions = torch.nn.functional.one_hot(torch.arange(length), d).double().expand_as(one_hot)  # (H, B, T, d)
    valid = tokens != 0  # (B, T)
    with torch.no_grad():
        read = head.relaxed(one_hot, one_hot, positions, valid, 1e-4, gen).argmax(-1)  # (H, B, T): key read
    match = discrete_match(values.transpose(0, 1), values.transpose(0, 1), table, key_mask(valid, True))  # (B, H, q, k)
    read = read.transpose(0, 1)  # (B, H, T)
    read_matches = match.gather(-1, read[..., None]).squeeze(-1)  # (B, H, T)
    fallback = ~match.any(-1) & (read == 0)  # (B, H, T): no match anywhere, BOS read
    queries = valid[:, None, :].expand_as(read)
    stray = 1 - (read_matches | fallback)[queries].double().mean().item()
    assert stray <= {"soft": 0.0, "sharp": 1e-3}[kind]

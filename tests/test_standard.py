"""The standard-transformer baseline: shapes, causal masking, config keys, training and loading."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from transformer_programs.model import build_model
from transformer_programs.model.standard import StandardConfig, StandardTransformer
from transformer_programs.config import TrainConfig
from transformer_programs.data import build_dataset
from transformer_programs.runs import load_run
from transformer_programs.train import evaluate, train


@pytest.fixture
def one_thread():
    """One intra-op thread: on a small shared machine more threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def model(causal: bool = False, **overrides) -> StandardTransformer:
    torch.manual_seed(0)
    sizes = dict(n_tokens=7, n_labels=5, max_len=10, layers=2, heads=4, hidden=32, mlp_hidden=32)
    return StandardTransformer(StandardConfig(causal=causal, **{**sizes, **overrides})).eval()


def test_shapes_and_predictions():
    net = model()
    tokens = torch.randint(1, 7, (3, 8))
    logits = net(tokens, 0.5, torch.Generator())
    assert logits.shape == (3, 8, 5)
    predicted = net.predict(tokens)
    assert predicted.shape == (3, 8)
    assert predicted.min() >= 1 and predicted.max() <= 4  # never <pad>
    assert torch.equal(predicted, logits[..., 1:].argmax(-1) + 1)
    with pytest.raises(ValueError, match="max_len"):
        net(torch.ones(1, 11, dtype=torch.long))


@pytest.mark.parametrize("causal", [True, False])
def test_causal_mask_hides_future_tokens(causal):
    net = model(causal=causal)
    tokens = torch.randint(1, 7, (4, 9))
    changed = tokens.clone()
    changed[:, 5:] = (changed[:, 5:] % 6) + 1  # every later token different
    before, after = net(tokens)[:, :5], net(changed)[:, :5]
    if causal:
        assert torch.allclose(before, after, atol=1e-6)
    else:  # the same check on a bidirectional model must notice the change
        assert not torch.allclose(before, after, atol=1e-6)


def test_padding_keys_are_ignored():
    net = model()
    tokens = torch.tensor([[1, 2, 3, 0, 0]])
    other_length = torch.tensor([[1, 2, 3, 0, 0, 0, 0]])
    assert torch.allclose(net(tokens)[:, :3], net(other_length)[:, :3], atol=1e-6)


def test_config_from_run_keys():
    keys = dict(n_tokens=7, n_labels=5, max_len=10, causal=True, layers=2, heads_cat=3, heads_num=2,
                mlps_cat=4, mlps_num=4, n_embed_vars=1, hidden=16)
    config = StandardConfig.from_dict(keys)
    assert (config.heads, config.hidden, config.layers, config.causal) == (5, 16, 2, True)
    assert isinstance(build_model("standard", keys), StandardTransformer)
    with pytest.raises(ValueError, match="hiden"):
        StandardConfig.from_dict({**keys, "hiden": 8})


def test_attention_free_layers_work():
    net = model(heads=0)
    assert net(torch.randint(1, 7, (2, 6))).shape == (2, 6, 5)


def test_training_on_hist_beats_chance_and_loads(tmp_path, one_thread):
    config = TrainConfig(task="hist", model="standard", epochs=8, lr=3e-3, n_examples=1000,
                         extra={"hidden": 64, "mlp_hidden": 64})
    results = train(config, tmp_path / "run", quiet=True)
    labels = build_dataset(config.resolved()).tensors["test"][1]
    counts = Counter(labels[labels != 0].tolist())
    chance = max(counts.values()) / sum(counts.values())  # always predicting the commonest count
    assert results["test"]["accuracy"] > chance + 0.2, (results["test"]["accuracy"], chance)
    for name in ("config.json", "model.safetensors", "metrics.csv", "results.json"):
        assert (tmp_path / "run" / name).exists()
    run = load_run(tmp_path / "run")
    assert isinstance(run.model, StandardTransformer)
    assert run.model.config.hidden == 64 and run.model.config.heads == 4  # hist: 2 + 2 heads
    again = evaluate(run.model, *run.dataset.tensors["test"])
    assert again["accuracy"] == results["test"]["accuracy"]

"""Model -> program: the discretized model, the IR interpreter and the generated file agree."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from transformer_programs.model.program_config import ProgramConfig
from transformer_programs.model.program_model import TransformerProgram
from transformer_programs.program import Program, extract, generate, random_inputs, run_batch, run_tokens, verify
from transformer_programs.program.verify import load_program
from transformer_programs.vocab import Vocab

TOKENS = ["<s>", "a", "b", "c", "d", "e"]
LABELS = ["x", "y", "z", "w", "v"]
HOSTILE = ["<s>", "'", '"', "\\", "\n", "def", "None", "é", "🙂", "a b", "{x}", '"""', "#", ")\nimport os"]

# The shared table: every component type, alone and mixed, causal and not.
CASES = {
    "categorical_attention": dict(layers=2, heads_cat=3, heads_num=0, mlps_cat=0, mlps_num=0),
    "categorical_attention_causal": dict(layers=2, heads_cat=3, heads_num=0, mlps_cat=0, mlps_num=0, causal=True),
    "numerical_attention": dict(layers=2, heads_cat=0, heads_num=3, mlps_cat=0, mlps_num=0),
    "categorical_mlps": dict(layers=2, heads_cat=2, heads_num=0, mlps_cat=3, mlps_num=0),
    "numerical_mlps_compounding": dict(layers=3, heads_cat=1, heads_num=2, mlps_cat=0, mlps_num=2),
    "numerical_mlps_causal": dict(layers=3, heads_cat=1, heads_num=2, mlps_cat=1, mlps_num=2, causal=True),
    "embeddings": dict(layers=1, heads_cat=2, heads_num=1, mlps_cat=1, mlps_num=0, n_embed_vars=2),
    "mix": dict(layers=2, heads_cat=2, heads_num=2, mlps_cat=2, mlps_num=2, n_embed_vars=1),
    "mix_causal": dict(layers=2, heads_cat=2, heads_num=2, mlps_cat=2, mlps_num=2, n_embed_vars=1, causal=True),
    "more_tokens_than_positions": dict(layers=2, heads_cat=2, heads_num=1, mlps_cat=1, mlps_num=1, max_len=4),
    "long": dict(layers=2, heads_cat=2, heads_num=2, mlps_cat=1, mlps_num=1, max_len=14),
    "classifier_only": dict(layers=0),
}


def build(seed: int, tokens: list[str] = TOKENS, labels: list[str] = LABELS, **arch) -> tuple:
    """A model with random weights (no training), its vocabularies and its program."""
    torch.manual_seed(seed)
    input_vocab, label_vocab = Vocab.build(tokens), Vocab.build(labels)
    arch.setdefault("max_len", 8)
    config = ProgramConfig(n_tokens=len(input_vocab), n_labels=len(label_vocab), **arch)
    model = TransformerProgram(config).eval()
    with torch.no_grad():  # make the numerical weights and the bias matter too
        model.classifier_num.normal_(std=0.05)
        model.classifier_bias.normal_(std=0.1)
    return model, extract(model, input_vocab, label_vocab)


def write(program: Program, directory: Path) -> Path:
    path = directory / "program.py"
    path.write_text(generate(program), encoding="utf-8")
    return path


def inputs_for(program: Program, n: int, seed: int) -> list[list[int]]:
    """Random inputs over every length, with the extremes (only BOS; max_len) always present."""
    longest = random_inputs(program, 3, program.max_len, program.max_len, seed=seed + 1)
    return [[program.input_vocab.index("<s>")], *longest, *random_inputs(program, n, 1, program.max_len, seed=seed)]


def padded(sequences: list[list[int]]) -> np.ndarray:
    out = np.zeros((len(sequences), max(map(len, sequences))), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        out[row, : len(sequence)] = sequence
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_three_semantics_agree(name: str, tmp_path: Path) -> None:
    model, program = build(sum(map(ord, name)), **CASES[name])
    report = verify(model, program, write(program, tmp_path), inputs_for(program, 300, seed=7))
    assert report.disagreements == 0, report.first_disagreement
    assert report.inputs == 304 and report.model_vs_interpreter == report.model_vs_program == 0
    ids = padded(inputs_for(program, 100, seed=8))  # every variable, padded positions included
    model_labels, model_trace = model.discrete(torch.from_numpy(ids))
    labels, trace = run_batch(program, ids)
    assert list(trace) == [variable.name for variable in program.variables] == list(model_trace)
    for variable, values in model_trace.items():
        np.testing.assert_array_equal(trace[variable], values.numpy(), err_msg=variable)
    np.testing.assert_array_equal(labels, model_labels.numpy() * (ids != 0))  # padding is not classified: 0


def test_numerical_bounds_compound_and_tables_cover_them() -> None:
    model, program = build(3, **CASES["numerical_mlps_compounding"])
    layers, max_len = program.layers, program.max_len
    assert program.variable("ones").bound == 1
    for layer in layers:
        for head in layer.numerical_attention:
            assert program.variable(head.name).bound == max_len * program.variable(head.value).bound
    assert max(v.bound for v in program.variables if v.numerical) > max_len  # compounding happened
    for mlp in (mlp for layer in layers for mlp in layer.numerical_mlps):
        assert len(mlp.table) == program.variable(mlp.source).bound + 1


def tie_break_model(causal: bool) -> tuple:
    """One head: query token 'a' or 'b' matches key token 'a', '<s>' matches nothing; it copies
    the chosen position, and the classifier predicts label f"p{position}"."""
    input_vocab, label_vocab = Vocab.build(["<s>", "a", "b"]), Vocab.build([f"p{i}" for i in range(6)])
    config = ProgramConfig(n_tokens=4, n_labels=7, max_len=6, layers=1, heads_cat=1, heads_num=0, mlps_cat=0,
                           mlps_num=0, causal=causal)
    model = TransformerProgram(config).eval()
    s, a, b = 1, 2, 3
    attention = model.blocks[0].cat_attn
    with torch.no_grad():
        for selector, variable in ((attention.query, 0), (attention.key, 0), (attention.value, 1)):
            selector.logits.zero_()[0, variable] = 10.0  # 0: tokens, 1: positions
        attention.predicate.logits.zero_()
        attention.predicate.logits[0, a, a] = attention.predicate.logits[0, b, a] = 10.0
        attention.predicate.logits[0, s, 5] = 10.0  # value 5 is no token: '<s>' never matches
        model.classifier_cat.zero_()
        model.classifier_cat[2, torch.arange(6), torch.arange(6) + 1] = 1.0  # attn_0_0 = p -> label p{p}
    return model, extract(model, input_vocab, label_vocab)


@pytest.mark.parametrize(
    "causal, tokens, expected",
    [
        # self (distance 0) beats farther matches; at equal distance the earlier key wins;
        # no match (at '<s>') falls back to position 0.
        (False, "<s> a b a a", "p0 p1 p1 p3 p4"),
        (False, "<s> b a a", "p0 p2 p2 p3"),
        (True, "<s> b a a", "p0 p0 p2 p3"),  # causal: the later 'a' is invisible to position 1
        (True, "<s> a b a b", "p0 p1 p1 p3 p3"),
    ],
)
def test_tie_break_hand_checked(causal: bool, tokens: str, expected: str, tmp_path: Path) -> None:
    model, program = tie_break_model(causal)
    sequence, labels = tokens.split(), expected.split()
    module = load_program(write(program, tmp_path))
    ids = torch.tensor([[program.input_vocab.index(token) for token in sequence]])
    assert [program.label_vocab[i] for i in model.discrete(ids)[0][0].tolist()] == labels
    assert run_tokens(program, sequence) == labels
    assert module.run(sequence) == labels


def test_generated_select_closest_rule(tmp_path: Path) -> None:
    _, program = tie_break_model(False)
    module = load_program(write(program, tmp_path))
    keys = [0, 1, 1, 0, 1]  # positions 1, 2 and 4 match; 0 and 3 do not
    match = lambda query, key: key == query  # noqa: E731
    assert module.select_closest([1, 1, 1, 1, 1], keys, match, causal=False) == [1, 1, 2, 2, 4]
    assert module.select_closest([7, 7, 7, 7, 7], keys, match, causal=False) == [0, 0, 0, 0, 0]
    assert module.select_closest([1, 1, 1, 1, 1], keys, match, causal=True) == [0, 1, 2, 2, 4]


def test_hostile_vocabulary(tmp_path: Path) -> None:
    model, program = build(5, tokens=HOSTILE, labels=HOSTILE[1:], **CASES["mix"])
    path = write(program, tmp_path)
    report = verify(model, program, path, inputs_for(program, 200, seed=3))
    assert report.disagreements == 0, report.first_disagreement
    tree = ast.parse(path.read_text(encoding="utf-8"))  # the file does only what it says:
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert [alias.name for node in imports for alias in node.names] == ["struct", "sys"]
    top = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    helpers = {"check", "select_closest", "aggregate", "count", "numerical_aggregate", "f32", "classify", "run"}
    mlps = {m.name for layer in program.layers for m in layer.mlps + layer.numerical_mlps}
    assert {"check", "run", "classify", "select_closest"} <= top <= helpers | mlps
    sequence = HOSTILE[:1] + HOSTILE[1:][::-1][: program.max_len - 1]
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    # -I: no PYTHONPATH, no cwd on the path; -S: not even the venv's site-packages (the package)
    done = subprocess.run([sys.executable, "-I", "-S", str(path), *sequence], cwd=cwd, capture_output=True,
                          encoding="utf-8", timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == " ".join(run_tokens(program, sequence)) + "\n"


def test_bad_inputs_raise_clear_errors(tmp_path: Path) -> None:
    _, program = build(1, **CASES["mix"])
    path = write(program, tmp_path)
    module = load_program(path)
    for bad, message in ((["<s>", "zz"], "unknown token 'zz'"), (["<s>", "<pad>"], "unknown token '<pad>'"),
                         (["<s>"] + ["a"] * 8, "exceed the maximum length 8"), ([], "empty input")):
        with pytest.raises(ValueError, match=message):
            module.run(bad)
        with pytest.raises(ValueError):
            run_tokens(program, bad)
    done = subprocess.run([sys.executable, "-I", "-S", str(path), "<s>", "zz"], cwd=tmp_path, capture_output=True,
                          encoding="utf-8", timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: unknown token 'zz'") and done.stderr.count("\n") == 1


def test_json_round_trip_is_exact() -> None:
    _, program = build(2, tokens=HOSTILE, **CASES["mix"])
    text = program.to_json()
    again = Program.from_json(text)
    assert again == program and again.to_json() == text
    assert json.loads(text)["classifier"]["bias"] == program.classifier.bias
    ids = padded(inputs_for(program, 50, seed=4))
    np.testing.assert_array_equal(run_batch(again, ids)[0], run_batch(program, ids)[0])


def test_classifier_weights_are_exact_float32() -> None:
    model, program = build(4, **CASES["mix"])
    weights = model.classifier_cat.detach()
    for index, (name, table) in enumerate(program.classifier.categorical.items()):
        assert np.array_equal(np.array(table, dtype=np.float64), weights[index].double().numpy()), name
        assert np.array(table, dtype=np.float32).astype(np.float64).tolist() == table


@pytest.mark.parametrize("big", ["bias", "tokens"])
def test_classifier_sums_in_variable_order(big: str, tmp_path: Path) -> None:
    """Labels 1 and 2 get 1.0 (from the bias or from `tokens`), label 2 then three times 2**-54:
    added one at a time in variable order each rounds away (a tie, so label 1 wins as the first
    maximum); summed in another order they reach 1 + 2**-52 and label 2 would win."""
    model, program = build(0, layers=0, n_embed_vars=1)
    tiny = 2.0**-54
    with torch.no_grad():
        model.classifier_cat.zero_()
        model.classifier_num.zero_()
        model.classifier_bias.zero_()
        model.classifier_bias[0] = 5.0  # <pad> is never predicted, whatever its score
        if big == "bias":
            model.classifier_bias[1:3] = 1.0
            model.classifier_cat[0, :, 2] = tiny  # tokens
        else:
            model.classifier_cat[0, :, 1:3] = 1.0
        model.classifier_cat[1, :, 2] = tiny  # positions
        model.classifier_cat[2, :, 2] = tiny  # embed_0
        model.classifier_num[0, 2] = tiny  # ones
    program = extract(model, Vocab.build(TOKENS), Vocab.build(LABELS))
    sequence = ["<s>", "a", "b"]
    ids = torch.tensor([[program.input_vocab.index(token) for token in sequence]])
    assert model.discrete(ids)[0].tolist() == [[1, 1, 1]]
    assert run_tokens(program, sequence) == ["x", "x", "x"]
    assert load_program(write(program, tmp_path)).run(sequence) == ["x", "x", "x"]


def test_verify_reports_the_smallest_disagreement(tmp_path: Path) -> None:
    model, program = build(6, **CASES["categorical_attention"])
    path = write(program, tmp_path)
    head = program.layers[0].attention[0]
    head.predicate = [(target + 1) % program.d for target in head.predicate]  # a wrong interpreter
    inputs = inputs_for(program, 300, seed=9)
    report = verify(model, program, path, inputs)
    assert report.disagreements > 0 and report.model_vs_program == 0
    assert report.model_vs_interpreter == report.disagreements
    first = report.first_disagreement
    assert first["first_differing_variable"]["variable"] == head.name
    assert first["model"] == first["program"] != first["interpreter"]
    interpreted = [run_batch(program, np.array([s]))[0].tolist() for s in inputs]
    failing = [s for s, labels in zip(inputs, interpreted) if labels != model.discrete(torch.tensor([s]))[0].tolist()]
    assert len(first["tokens"]) <= min(map(len, failing))


def test_generated_program_split_over_processes_gives_each_input_its_own_prediction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    verify_module = importlib.import_module("transformer_programs.program.verify")

    model, program = build(11, **CASES["mix"])
    path = write(program, tmp_path)
    inputs = inputs_for(program, 500, seed=4)
    alone = verify(model, program, path, inputs)
    monkeypatch.setattr(verify_module.os, "sched_getaffinity", lambda pid: {0, 1, 2})
    monkeypatch.setattr(verify_module, "PER_PROCESS", 100)  # 504 inputs: three processes
    monkeypatch.setattr(verify_module, "CHUNK", 50)  # eleven chunks, put back in order
    pools, pool = [], verify_module.ProcessPoolExecutor
    monkeypatch.setattr(verify_module, "ProcessPoolExecutor", lambda n, **kw: pools.append(n) or pool(n, **kw))
    split = verify(model, program, path, inputs)
    assert pools == [3] and split.predictions == alone.predictions and split.disagreements == 0
    wrapped = "\n_honest_run = run\n\ndef run(tokens):\n    return ['x'] * len(_honest_run(tokens))\n"
    path.write_text(generate(program) + wrapped, encoding="utf-8")  # a file that always says 'x'
    wrong = verify(model, program, path, inputs)
    expected = sum(labels != [LABELS.index("x") + 1] * len(labels) for labels in alone.predictions)
    assert wrong.model_vs_program == wrong.disagreements == expected > 0


def test_numerical_mlp_tables_stay_small_when_counts_compound(tmp_path: Path) -> None:
    """4 layers over 40 positions: counts compound (up to 40**4), but the model learns at most 1,025 rows per
    MLP, so tables (model and IR) hold at most that many entries, and the program stays exact."""
    model, program = build(9, layers=4, heads_cat=1, heads_num=2, mlps_cat=0, mlps_num=2, max_len=40)
    bounds = [v.bound for v in program.variables if v.numerical]
    assert max(bounds) > 1025  # compounded past the rows the model learns
    tables = [mlp.table for layer in program.layers for mlp in layer.numerical_mlps]
    assert tables and max(map(len, tables)) <= 1025
    assert len(program.to_json()) < 1_000_000
    inputs = inputs_for(program, 60, seed=5)
    report = verify(model, program, write(program, tmp_path), inputs)
    assert report.disagreements == 0, report.first_disagreement

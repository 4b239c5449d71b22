"""The proof by tables: it proves every program of the shared case table, fails on each kind of
injected bug, never passes a program that disagrees, and rests on sound reachable values."""

from __future__ import annotations

import copy
import json
import random
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from test_program import CASES, build, inputs_for, padded
from test_simplify import D, constant_read, hand_built, rows

from transformer_programs.cli import main
from transformer_programs.program import generate, run_batch, simplified_proof, simplify, verify
from transformer_programs.program.classifier_forms import scaled_to_integers
from transformer_programs.program.domains import position_domains
from transformer_programs.program.generated_proof import generated_gaps
from transformer_programs.program.ir import CategoricalAttention, Variable, component_reads
from transformer_programs.program.prove import listed_gaps, model_gaps, prove
from transformer_programs.program.simplified_proof import simplified_gaps
from transformer_programs.program.simplify import fold_constant_reads, merge_duplicates, remove_dead
from transformer_programs.program.verify import load_program


def proved(program, tmp_path: Path, source: str | None = None) -> list[str]:
    """The generated program's gaps against its IR (the generated text of `program` unless given)."""
    source = generate(program) if source is None else source
    path = tmp_path / f"program_{abs(hash(source))}.py"
    path.write_text(source, encoding="utf-8")
    return generated_gaps(program, source, load_program(path))


@pytest.mark.parametrize("name", list(CASES))
def test_every_case_is_proved_on_every_input(name: str, tmp_path: Path) -> None:
    model, full = build(sum(map(ord, name)), **CASES[name])
    assert model_gaps(model, full) == []
    assert proved(full, tmp_path) == []
    checks = padded(inputs_for(full, 200, seed=3))
    short = simplify(full, None, checks)
    source = generate(short)
    path = tmp_path / "short.py"
    path.write_text(source, encoding="utf-8")
    proof = prove(model, full, short, source, load_program(path), None)
    assert proof["unproved"] == [] and proof["scope"] == "every input"
    # the proof's claim, checked by running: all three agree on inputs the simplification never saw
    report = verify(model, short, path, inputs_for(full, 300, seed=4))
    assert report.disagreements == 0, report.first_disagreement


def test_a_changed_table_entry_of_the_generated_program_fails_the_proof(tmp_path: Path) -> None:
    _, program = build(11, **CASES["mix"])
    source = generate(program)
    entry = re.search(r"^MLP_1_0 = \{\((\d+), (\d+)\): (\d+)", source, re.MULTILINE)
    changed = source[: entry.start(3)] + str(int(entry.group(3)) + 1) + source[entry.end(3) :]
    head = program.layers[1].mlps[0]
    expected = {head.first: int(entry.group(1)), head.second: int(entry.group(2))}
    assert proved(program, tmp_path, changed) == [
        f"mlp_1_0: gives {int(entry.group(3)) + 1} at {expected}, its table {entry.group(3)}"]


def test_a_changed_predicate_of_the_ir_fails_the_proof() -> None:
    model, program = build(11, **CASES["mix"])
    changed = copy.deepcopy(program)
    head = changed.layers[0].attention[0]
    head.predicate[1] = (head.predicate[1] + 1) % changed.d
    assert model_gaps(model, changed) == ["attn_0_0: not the model's (its inputs or its table)"]


def test_a_changed_float_of_the_model_fails_the_proof() -> None:
    model, program = build(11, **CASES["mix"])
    with torch.no_grad():
        model.classifier_cat[0, 1, 2] += 2**-10
    assert model_gaps(model, program) == ["classifier: its weights are not the model's"]


def test_a_changed_part_of_a_simplified_program_fails_the_proof() -> None:
    _, full = build(11, **CASES["mix"])
    short = simplify(full, None, padded(inputs_for(full, 200, seed=3)))
    changed = copy.deepcopy(short)
    mlp = changed.layers[0].mlps[0]
    at = position_domains(full)
    a, b = next(iter(at[mlp.first][1])), next(iter(at[mlp.second][1]))  # reachable at position 1
    mlp.table[a][b] = (mlp.table[a][b] + 1) % changed.d
    assert simplified_gaps(full, changed) == [f"{mlp.name}: not proved to compute the full program's {mlp.name}"]


def test_a_part_read_through_its_duplicate_is_proved() -> None:
    """simplify reads a duplicate part through the first one; the proof shows the two equal."""
    _, full = build(5, **CASES["mix"])
    first, second = full.layers[0].mlps
    second.first, second.second, second.table = first.first, first.second, copy.deepcopy(first.table)
    short = simplify(full, None, padded(inputs_for(full, 300, seed=3)))
    readers = [c for layer in short.layers for c in layer.components() if first.name in component_reads(c)]
    assert {c.name for c in readers} >= {"attn_1_1", "num_attn_1_0"}  # read mlp_0_1 in the full program
    assert simplified_gaps(full, short) == []
    changed = copy.deepcopy(full)  # the full program's mlp_0_1 no longer equals mlp_0_0
    at = position_domains(full)
    a, b = next(iter(at[first.first][1])), next(iter(at[first.second][1]))
    changed.layers[0].mlps[1].table[a][b] = (first.table[a][b] + 1) % full.d
    assert simplified_gaps(changed, short) != []


def test_a_simplified_classifier_of_points_that_disagrees_fails_the_proof() -> None:
    _, full = build(sum(map(ord, "more_tokens_than_positions")), **CASES["more_tokens_than_positions"])
    short = simplify(full, None, padded(inputs_for(full, 200, seed=3)))
    assert all(float(w).is_integer() for w in short.classifier.bias) and simplified_gaps(full, short) == []
    changed = copy.deepcopy(short)
    changed.classifier.bias[2] += 10**6  # label 2 everywhere
    gaps = simplified_gaps(full, changed)
    assert len(gaps) == 1 and gaps[0].startswith("classifier: its weights are not the full program's, and it labels")


def test_a_classifier_scaled_to_integers_with_a_constant_in_its_bias_is_proved_by_its_weights(monkeypatch) -> None:
    """A classifier trained on a step, scaled to integers and with a constant read's row moved into
    its bias (both rewrites at once), is proved without listing a joint value of its reads."""
    monkeypatch.setattr(simplified_proof, "MAX_CLASSIFIER_JOINT", 1)  # no proof by listing
    full = constant_read([0.0, 0.125, 0.5, -0.75])  # weights on a grid of 1/8
    scaled = replace(full, classifier=scaled_to_integers(full.classifier))
    short = remove_dead(fold_constant_reads(scaled))
    assert list(short.classifier.categorical) == ["tokens"] and short.classifier.bias == [0.0, 1.0, 12.0, -6.0]
    assert simplified_gaps(full, short) == []
    changed = copy.deepcopy(short)
    changed.classifier.bias[2] += 1
    assert simplified_gaps(full, changed) == [
        "classifier: its bias is not proved to hold the rows of the constants it no longer reads, "
        "and its reads take more than 1 joint values"]


def test_integer_points_read_through_a_duplicate_head_are_proved_by_their_weights(monkeypatch) -> None:
    """Two heads that compute the same thing: simplify reads the second through the first and adds
    its row of points to the first's. The proof shows the heads equal and the rows' sum exact,
    without listing a joint value of the reads; a sum off by one point is not proved."""
    monkeypatch.setattr(simplified_proof, "MAX_CLASSIFIER_JOINT", 1)  # no proof by listing
    twins = [CategoricalAttention(name, "tokens", "tokens", "positions", [1, 2, 0, 3, 5, 4, 7, 6], False)
             for name in ("attn_0_0", "attn_0_1")]
    by_value = [[0.25 * ((v + label) % 3) for label in range(4)] for v in range(D)]  # on a grid of 1/4
    reads = {"tokens": by_value, "attn_0_0": by_value[::-1], "attn_0_1": [row[::-1] for row in by_value]}
    full = hand_built(twins, reads, {"attn_0_0": "position", "attn_0_1": "position"})
    short = remove_dead(merge_duplicates(replace(full, classifier=scaled_to_integers(full.classifier))))
    assert list(short.classifier.categorical) == ["tokens", "attn_0_0"]
    assert [c.name for c in short.layers[0].components()] == ["attn_0_0"]
    assert simplified_gaps(full, short) == []
    changed = copy.deepcopy(short)
    changed.classifier.categorical["attn_0_0"][1][2] += 1
    assert simplified_gaps(full, changed) == [
        "classifier: its weights are not the full program's, and its reads take more than 1 joint values"]


def test_a_word_programs_reading_of_words_is_proved(tmp_path: Path) -> None:
    _, program = build(5, tokens=["<s>", "<unk>", "@", "a", "b"], **CASES["mix"])
    program.unknown, program.replace_numbers = "<unk>", True
    source = generate(program)
    assert "def read_word(" in source and proved(program, tmp_path, source) == []
    changed = source.replace('re.sub("[0-9]+", "@", word)', 're.sub("[0-8]+", "@", word)')
    assert proved(program, tmp_path, changed) == ["read_word: differs from the project's template of that rule"]
    longer = source.replace("if len(tokens) > MAX_LEN:", "if len(tokens) > MAX_LEN + 1:")
    assert proved(program, tmp_path, longer) == ["check: differs from the project's template of that rule"]
    unread = source.replace("    tokens = [read_word(token) for token in tokens]\n", "")
    assert proved(program, tmp_path, unread) == ["run: reads words otherwise than the program (read_word)"]


def test_a_listed_space_is_run_and_its_values_bounded() -> None:
    model, program = build(11, **CASES["mix"])
    inputs = padded(inputs_for(program, 100, seed=5))
    assert listed_gaps(model, program, inputs) == []
    changed = copy.deepcopy(program)
    changed.classifier.bias[1] += 1e6  # label 1 everywhere: the model does not agree
    assert listed_gaps(model, changed, inputs)[0].startswith("predictions: the model and the IR differ on")
    narrowed = copy.deepcopy(program)
    narrowed.variables[-1].values = [0]  # a claim of reachable values that running refutes
    assert "outside the values the program declares" in listed_gaps(model, narrowed, inputs)[0]


def test_no_program_that_disagrees_passes_the_proof(tmp_path: Path) -> None:
    """A fuzz: change one number of a generated program; if the proof still passes, running all
    three must show no disagreement."""
    rng = random.Random(0)
    passed = caught = 0
    for name in ("mix", "mix_causal", "numerical_mlps_compounding", "embeddings"):
        model, program = build(sum(map(ord, name)), **CASES[name])
        source = generate(program)
        numbers = list(re.finditer(r"(?<![\w.])\d+(?![\w.])", source))
        for trial in range(12):
            number = rng.choice(numbers)
            changed = source[: number.start()] + str(int(number.group()) + 1) + source[number.end() :]
            path = tmp_path / f"{name}_{trial}.py"
            path.write_text(changed, encoding="utf-8")
            try:
                module = load_program(path)
            except Exception:  # no longer a Python program
                continue
            if generated_gaps(program, changed, module):
                caught += 1
                continue
            passed += 1
            report = verify(model, program, path, inputs_for(program, 200, seed=trial))
            assert report.disagreements == 0, (name, changed.splitlines()[changed[: number.start()].count("\n")])
    assert caught > 3 * passed  # most changes matter and are caught


@pytest.mark.parametrize("name", ["mix", "mix_causal", "long", "numerical_mlps_causal"])
def test_reachable_values_are_sound(name: str) -> None:
    """Every value a variable takes at position i of a random input is among position_domains' values at i."""
    _, program = build(sum(map(ord, name)), **CASES[name])
    at = position_domains(program)
    ids = padded(inputs_for(program, 400, seed=9))
    _, trace = run_batch(program, ids)
    valid = ids != 0
    for variable, values in trace.items():
        for i in range(ids.shape[1]):
            seen = set(np.unique(values[:, i][valid[:, i]]).tolist())
            assert seen <= at[variable][i], (variable, i, seen - at[variable][i])


def test_decompile_records_each_programs_proof(trained, copy_run, capsys) -> None:
    run = copy_run(trained(task="hist", epochs=3, n_examples=200, seed=0))
    assert main(["decompile", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    record = json.loads((run / "verification.json").read_text())
    proofs = {name: report["proof"] for name, report in record["programs"].items()}
    assert proofs["program_full"]["scope"] == "every input" and proofs["program_full"]["unproved"] == []
    assert proofs["program"]["scope"] == "every listed input" and proofs["program"]["unproved"] == []
    assert record["programs"]["program"]["inputs"] == min(record["inputs"], 5000)  # the second check
    assert "program.py: " in out and f"proved on every one of its {record['inputs']:,} inputs" in out


def test_what_the_proof_leaves_is_checked_on_every_input(trained, copy_run, capsys, monkeypatch) -> None:
    import transformer_programs.program.decompile as decompile

    def with_a_gap(*args):
        proof = prove(*args)
        return {**proof, "unproved": [*proof["unproved"], "mlp_0_0: a gap, for the test"]}

    monkeypatch.setattr(decompile, "prove", with_a_gap)
    run = copy_run(trained(task="hist", epochs=3, n_examples=200, seed=0))
    assert main(["decompile", str(run), "--quiet"]) == 0
    record = json.loads((run / "verification.json").read_text())
    for report in record["programs"].values():
        assert report["proof"]["scope"] == "every listed input" and report["inputs"] == record["inputs"]
        assert report["proof"]["method"] == f"model, IR and program run on all {record['inputs']} verification inputs"
    assert "not proved (1 parts, first mlp_0_0: a gap, for the test)" in capsys.readouterr().out


def test_a_constant_only_a_never_matching_head_reads_is_not_printed_and_still_proved(tmp_path: Path) -> None:
    """A head whose query is a constant that no key matches reads position 0 whatever the query:
    the constant is dead in the code, so it is not printed, and the proof does not ask for it."""
    head = CategoricalAttention("attn_0_1", "mlp_0_0", "positions", "tokens", [7] * D, False)  # no position is 7
    program = hand_built([head], {"attn_0_1": rows(1, 2, 3, 1, 2, 3, 1, 2)}, {"attn_0_1": "token"})
    program.variables.insert(3, Variable("mlp_0_0", False, "abstract", constant=7))
    source = generate(program)
    assert "mlp_0_0" not in source and "attn_0_1_outputs = [tokens[0]] * len(tokens)" in source
    assert proved(program, tmp_path) == []
    reading = source.replace("[tokens[0]] * len(tokens)", "[tokens[0]] * len(tokens) + mlp_0_0_outputs[:0]")
    assert proved(program, tmp_path, reading) != []  # read, it must be computed as the IR's constant

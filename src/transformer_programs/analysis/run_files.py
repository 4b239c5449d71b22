"""A run's records as the report reads them (results.json, metrics.csv, verification.json),
checked field by field: a corrupt file is named in one line, never a traceback."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .. import runio

SPLITS = ("train", "val", "test")
METRIC_COLUMNS = ("epoch", "loss", "val_accuracy")  # temperature is optional (standard runs have none)


def read_results(path: Path) -> dict:
    """results.json, with each split's accuracy and exact match checked to be numbers ({} when absent)."""
    if not path.is_file():
        return {}
    results = runio.read_json(path)
    for split in SPLITS:
        scores = results.get(split)
        if not isinstance(scores, dict):
            raise runio.RunError(f'{path} has no "{split}" object; train the run again or remove the file')
        for field in ("accuracy", "exact_match"):
            value = scores.get(field)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise runio.RunError(f'{path}: "{split}.{field}" must be a number, got {value!r}')
    return results


def read_metrics(path: Path) -> list[dict[str, float]]:
    """metrics.csv's rows as numbers ([] when absent)."""
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise runio.RunError(f"{path} is not UTF-8 text; train the run again or remove the file") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = reader.fieldnames or []
    missing = [name for name in METRIC_COLUMNS if name not in columns]
    if missing:
        raise runio.RunError(f"{path} has no column {missing[0]!r} (it needs {', '.join(METRIC_COLUMNS)})")
    rows = []
    for line, row in enumerate(reader, start=2):
        try:
            rows.append({name: float(value) for name, value in row.items() if name and value not in ("", None)})
        except ValueError:
            raise runio.RunError(f"{path}:{line}: a value that is not a number") from None
        missing = [name for name in METRIC_COLUMNS if name not in rows[-1]]
        if missing:
            raise runio.RunError(f"{path}:{line}: no {missing[0]}")
    return rows


def proof_line(record: dict, report: dict) -> str:
    """How one program of verification.json was proved and checked, in a clause."""
    checked = (f"checked by running model, IR and program on {report['inputs']:,} inputs: "
               f"{report['disagreements']} disagreements")
    proof = report.get("proof")
    if proof is None:  # written before programs were proved
        return checked
    if proof["scope"] == "every input":
        scope = "every input it takes"
    elif proof["scope"] == "every listed input":
        scope = f"every one of its {record['inputs']:,} inputs ({record.get('input_space')})"
    else:
        scope = "no input: sampled"
    if proof["unproved"]:
        return f"not proved ({len(proof['unproved'])} parts, first {proof['unproved'][0]}); {checked}"
    return f"proved on {scope} in {proof['seconds']:.2f} s; {checked}"


def proof_summary(path: Path) -> str:
    """How the run's programs were checked against its model, in a sentence (from verification.json)."""
    if not path.is_file():
        return "Not verified: `tprog decompile RUN` writes and verifies the program."
    record = runio.read_json(path)
    inputs, disagreements = record.get("inputs"), record.get("disagreements")
    programs = record.get("programs")
    if not isinstance(inputs, int) or not isinstance(disagreements, int) or not isinstance(programs, dict):
        raise runio.RunError(f'{path}: "inputs" and "disagreements" must be whole numbers, "programs" an object')
    if all("proof" in report for report in programs.values()):
        return " ".join(f"{report['path']}: {proof_line(record, report)}." for report in programs.values())
    how = (f"on every one of its {inputs:,} possible inputs (exhaustive: {record.get('input_space')})"
           if record.get("exhaustive") else f"on {inputs:,} inputs (sampled: validation, test and random ones)")
    return f"Verified against the model {how}: {disagreements} disagreements."


def pruning_line(results: dict) -> str:
    """What pruning kept and the accuracy before and after, in words (results.json of a pruned run)."""
    pruning = results["pruning"]
    kept, total, before = pruning["kept"], pruning["of"], pruning["before"]
    return (f"kept {kept['parts']} of {total['parts']} parts and {kept['reads']} of {total['reads']} classifier "
            f"reads; accuracy val {before['val']:.4f} -> {results['val']['accuracy']:.4f}, "
            f"test {before['test']:.4f} -> {results['test']['accuracy']:.4f}")


def pruning_summary(results: dict) -> str | None:
    """What pruning removed and the accuracy before and after, in a sentence (None: not pruned)."""
    pruning = results.get("pruning")
    if not isinstance(pruning, dict):
        return None
    try:
        return f"Pruned from {pruning['from']}: {pruning_line(results)}."
    except (KeyError, TypeError, ValueError):
        raise runio.RunError('results.json: "pruning" lacks kept, of, before or from; prune the run again') from None

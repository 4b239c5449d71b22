"""What the variables of a plain-addition program carry: run on every input the task has, it
prints, for each place of the sum, how well each quantity of that place (the sum of its two
digits, whether that sum carries, whether it is 9, the carry coming in, the digit written) is
determined by one variable, and by the best pair of variables, at the label position of that
place. "Determined" is the share of those positions where the quantity is the one most common
for the variable's value (within each pair of operand lengths); beside it, the same share from
the operand lengths alone. A quantity at 1.000 is read off that variable; one that no variable
determines is spread over several.

    python benchmarks/addition_reading.py RUN [--pairs]

RUN is a run of `addition` (`tprog train addition`, either digit order); --pairs also searches
every pair of variables (slower).
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from itertools import combinations, product

import numpy as np

from transformer_programs.api import Run
from transformer_programs.program.interpret import run_batch

QUANTITIES = ("pair sum", "carries", "is 9", "carry in", "digit")


def all_inputs(run: Run) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Every input of the run's lengths as (N, T) ids, with (a, b, how many digits a has, how many b has)."""
    config = run.loaded.train_config
    low, high = config.train_lengths
    index = run.loaded.input_vocab.index
    rows, operands = [], []
    for len_a, len_b in product(range(low, high + 1), repeat=2):
        for digits in product(range(config.vocab_size), repeat=len_a + len_b):
            a, b = digits[:len_a], digits[len_a:]
            tokens = ["<s>", *map(str, a), "+", *map(str, b)]
            rows.append([index[token] for token in tokens])
            operands.append((int("".join(map(str, a)), config.vocab_size), int("".join(map(str, b)), config.vocab_size),
                             len_a, len_b))
    width = max(map(len, rows))
    return np.array([row + [0] * (width - len(row)) for row in rows]), operands


def place_table(run: Run, operands: list[tuple[int, int, int, int]], predicted: np.ndarray) -> dict[str, np.ndarray]:
    """One row per written digit of every sum: its input, label position, place, operand lengths,
    the quantities of that place, and whether the program wrote it right."""
    base = run.loaded.train_config.vocab_size
    reverse = run.loaded.train_config.reverse_sum
    labels = run.loaded.label_vocab.tokens
    table = defaultdict(list)
    for n, (a, b, len_a, len_b) in enumerate(operands):
        written = np.base_repr(a + b, base)
        carry = 0
        for place in range(len(written)):
            pair = a // base**place % base + b // base**place % base
            position = 1 + (place if reverse else len(written) - 1 - place)
            digit = written[len(written) - 1 - place]
            for key, value in (("input", n), ("position", position), ("place", place), ("layout", len_a * 100 + len_b),
                               ("pair sum", pair), ("carries", int(pair + carry >= base)), ("is 9", int(pair == base - 1)),
                               ("carry in", carry), ("digit", int(digit, base)),
                               ("right", labels[predicted[n, position]] == digit)):
                table[key].append(value)
            carry = (pair + carry) // base
    return {key: np.array(values) for key, values in table.items()}


def determined(keys: list[np.ndarray], quantity: np.ndarray) -> float:
    """The share of rows whose quantity is the most common one among the rows with their keys."""
    counts = defaultdict(Counter)
    for row in zip(*(key.tolist() for key in keys), quantity.tolist()):
        counts[row[:-1]][row[-1]] += 1
    return sum(max(counter.values()) for counter in counts.values()) / len(quantity)


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print("usage: python benchmarks/addition_reading.py RUN [--pairs]", file=sys.stderr)
        return 2
    run = Run(argv[0])
    if run.loaded.train_config.task != "addition":
        print(f"error: {argv[0]} is a run of {run.loaded.train_config.task}; this reads plain addition only", file=sys.stderr)
        return 2
    program = run.simplified
    inputs, operands = all_inputs(run)
    predicted, trace = run_batch(program, inputs)  # (N, T), {variable: (N, T)}
    table = place_table(run, operands, predicted)
    names = [name for name in trace if name not in ("tokens", "positions", "ones")]
    print(f"{run.path}: {len(operands):,} inputs, {len(table['right']):,} digits written, "
          f"{table['right'].mean():.4f} right; {len(names)} variables")
    for place in np.unique(table["place"]).tolist():
        rows = table["place"] == place
        layout = table["layout"][rows]
        values = {name: trace[name][table["input"][rows], table["position"][rows]] for name in names}
        print(f"place {place} ({rows.sum():,} digits, {table['right'][rows].mean():.4f} right)")
        for quantity in QUANTITIES:
            wanted = table[quantity][rows]
            if len(np.unique(wanted)) == 1:
                continue
            single = sorted(((determined([layout, values[name]], wanted), name) for name in names), reverse=True)[:3]
            line = (f"  {quantity:9s} from the lengths alone {determined([layout], wanted):.3f}; "
                    + ", ".join(f"{name} {share:.3f}" for share, name in single))
            if "--pairs" in argv:
                share, pair = max((determined([layout, values[x], values[y]], wanted), (x, y))
                                  for x, y in combinations(names, 2))
                line += f"; best pair {pair[0]} + {pair[1]} {share:.3f}"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Program -> one standalone, readable Python file (standard library only, weights inside, exact).

Every part prints in the shortest form that is exact over the values its inputs can take
(`position_domains`): a predicate as `k == q - 1` or `k == '3'`, a table that ignores an input, an
identity, a shift or a threshold of a count as that expression, anything else as a lookup
table. The classifier prints as rules when the IR holds rules, else as its weights (`weights_code`).
"""

from __future__ import annotations

import re
from collections import Counter

from ..vocab import BOS, EOS, PAD
from .domains import (
    one_input_function,
    pairs_anywhere,
    position_domains,
    seen_target,
    values_anywhere,
)
from .templates import (
    ABOUT,
    CHECK_ANY,
    COUNT,
    DECODE,
    HEADER,
    LARGE_VOCABULARY,
    MAIN,
    NUMERICAL_AGGREGATE,
    SELECT_CLOSEST,
    VALUE_DIGITS,
    WIDTH,
    docstring_text,
    function_lines,
    spaced,
    wrapped,
    read_word_text,
    wrapped_words,
)
from .ir import (
    CategoricalAttention,
    CategoricalMLP,
    Classifier,
    NumericalAttention,
    NumericalMLP,
    Program,
    Rules,
    classifier_reads,
    component_reads,
)
from .weights_code import weights_lines

SHORT_NAMES = {"tokens": "token", "positions": "position", "ones": "one"}
CHECK_DOC = "Raises ValueError unless run() takes `tokens`."
INPUTS = ("tokens", "positions", "ones")

def list_name(variable: str) -> str:
    """Name of the list holding a variable's value at every position inside run()."""
    return variable if variable in SHORT_NAMES else f"{variable}_outputs"


def _runs(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(last input, output) of each run of equal outputs over inputs in increasing order."""
    runs: list[tuple[int, int]] = []
    for x, y in points:
        if runs and runs[-1][1] == y:
            runs[-1] = (x, y)
        else:
            runs.append((x, y))
    return runs


class _Writer:
    """Source text for each part of one program: definitions above run() and statements in it."""

    def __init__(self, program: Program, counts: bool):
        self.program = program
        self.counts = counts  # a head that sums `ones` as count(...)
        self.at = position_domains(program)  # variable -> the values it may take at each position
        self.domains = values_anywhere(self.at)
        self.kinds = {"tokens": "token", **{variable.name: variable.kind for variable in program.variables}}
        self.definitions: list[list[str]] = []  # blocks above run(): tables, then functions, in order

    def counted(self, component) -> bool:
        """Whether a part prints as a count() of matching keys, which reads no `ones`."""
        return self.counts and isinstance(component, NumericalAttention) and component.value == "ones"

    def code_reads(self, component) -> list[str]:
        """The variables a part's printed code reads."""
        reads = component_reads(component)
        return reads[:2] if self.counted(component) else reads

    def show(self, variable: str, value: int) -> str:
        """A value of `variable` as a Python literal: the token string for token values."""
        if self.kinds[variable] == "token":
            return repr(self.program.input_vocab[value])
        return repr(int(value))

    def is_number(self, variable: str) -> bool:
        """Whether the variable's values print as integers (so `q + 1` means something)."""
        return self.kinds[variable] != "token"

    def table(self, name: str, entries: list[tuple[str, str]]) -> None:
        """Define NAME = {key: value, ...} above run()."""
        self.definitions.append(wrapped(f"{name} = {{", [f"{k}: {v}" for k, v in entries], ", ", "}", ""))

    # --- attention ---------------------------------------------------------------------------

    def predicate(self, head: CategoricalAttention | NumericalAttention) -> str | None:
        """The predicate as a lambda over (query value, key value); None when nothing matches.

        The key value each reachable query looks for (None: none it sees, `seen_target`) is printed as the
        closed form that fits the most queries, `k == c`, `k == q + c` or `k == c - q` (the first
        of them on ties), with the queries it does not fit in a table of exceptions; as a plain
        table when that is shorter.
        """
        keys = set(self.domains[head.key])
        seen = seen_target(head, self.at)
        looked_for = {q: seen(q, head.predicate[q]) for q in self.domains[head.query]}
        if all(target is None for target in looked_for.values()):
            return None
        forms: dict[str, dict[int, int | None]] = {}
        for c in keys:
            forms[f"{self.show(head.key, c)}"] = {q: seen(q, c) for q in looked_for}
        if self.kinds[head.query] == self.kinds[head.key]:
            offsets = range(-self.program.d, self.program.d) if self.is_number(head.key) else [0]
            for offset in offsets:
                shift = f" + {offset}" if offset > 0 else f" - {-offset}" if offset else ""
                forms["q" + shift] = {q: seen(q, q + offset) for q in looked_for}
            if self.is_number(head.key):  # a reflection: the key at a fixed distance from the end
                for total in range(2 * self.program.d - 1):
                    forms[f"{total} - q"] = {q: seen(q, total - q) for q in looked_for}
        best, exceptions = min(
            ((form, {q: t for q, t in looked_for.items() if fits[q] != t}) for form, fits in forms.items()),
            key=lambda pair: len(pair[1]),
        )
        name = head.name.upper()
        matched = {q: t for q, t in looked_for.items() if t is not None}
        if not exceptions:
            return f"lambda q, k: k == {best}"
        if len(exceptions) < len(matched):
            self.table(name, [(self.show(head.query, q), "None" if t is None else self.show(head.key, t))
                              for q, t in exceptions.items()])
            return f"lambda q, k: k == {name}.get(q, {best})"
        self.table(name, [(self.show(head.query, q), self.show(head.key, t)) for q, t in matched.items()])
        return f"lambda q, k: k == {name}.get(q)"

    def attention(self, head: CategoricalAttention | NumericalAttention) -> list[str]:
        out = list_name(head.name)
        q, k, v = (list_name(name) for name in (head.query, head.key, head.value))
        predicate = self.predicate(head)
        causal = ", causal=True" if head.causal else ""
        if isinstance(head, NumericalAttention):
            if predicate is None:
                return [f"    {out} = [0] * len(tokens)  # no key ever matches"]
            if self.counted(head):
                return wrapped(f"{out} = count(", [q, k, predicate + causal], ", ", ")", "    ")
            return wrapped(f"{out} = numerical_aggregate(", [q, k, predicate, v + causal], ", ", ")", "    ")
        if predicate is None:
            return [f"    {out} = [{v}[0]] * len(tokens)  # no key ever matches: every query reads position 0"]
        pattern = wrapped("pattern = select_closest(", [q, k, predicate + causal], ", ", ")", "    ")
        return [*pattern, f"    {out} = aggregate(pattern, {v})"]

    # --- MLPs --------------------------------------------------------------------------------

    def one_input(self, out_name: str, source: str, outputs: dict[int, str]) -> str:
        """A list expression computing `out_name` at every position from one variable, given
        its output (a literal) for each reachable input value."""
        x = list_name(source)
        values = sorted(outputs)
        distinct = set(outputs.values())
        if len(distinct) == 1:
            return f"[{distinct.pop()}] * len(tokens)"
        if self.is_number(source):
            if all(outputs[v] == repr(str(v)) for v in values):
                return f"[str(x) for x in {x}]"
            for offset in range(-self.program.d, self.program.d):
                if all(outputs[v] == repr(v + offset) for v in values):
                    shift = f" + {offset}" if offset > 0 else f" - {-offset}" if offset else ""
                    return f"[x{shift} for x in {x}]" if shift else f"list({x})"
            runs = _runs([(v, outputs[v]) for v in values])
            if len(runs) == 2:
                (last, low), (_, high) = runs
                return f"[{low} if x <= {last} else {high} for x in {x}]"
            if len(runs) <= len(values) // 2:
                body = []
                for last, output in runs[:-1]:
                    body += [f"    if x <= {last}:", f"        return {output}"]
                doc = f"{out_name} from {source}: its value for x, by ranges."
                self.definitions.append(function_lines(out_name, ["x"], doc, [*body, f"    return {runs[-1][1]}"]))
                return f"[{out_name}(x) for x in {x}]"
        default = Counter(outputs.values()).most_common(1)[0][0]
        name = out_name.upper()
        self.table(name, [(self.show(source, v), outputs[v]) for v in values if outputs[v] != default])
        return f"[{name}.get(x, {default}) for x in {x}]"

    def mlp(self, mlp: CategoricalMLP) -> list[str]:
        found = one_input_function(mlp, self.at)
        if found is not None:  # it ignores the other input
            source, outputs = found
            code = self.one_input(mlp.name, source, {v: repr(output) for v, output in outputs.items()})
            return [f"    {list_name(mlp.name)} = {code}"]
        pairs = {(a, b): mlp.table[a][b] for a, b in pairs_anywhere(self.at, mlp.first, mlp.second)}
        default = Counter(pairs.values()).most_common(1)[0][0]
        name = mlp.name.upper()
        entries = [
            (f"({self.show(mlp.first, a)}, {self.show(mlp.second, b)})", repr(output))
            for (a, b), output in pairs.items()
            if output != default
        ]
        self.table(name, entries)
        a, b = list_name(mlp.first), list_name(mlp.second)
        return [f"    {list_name(mlp.name)} = [{name}.get(pair, {default!r}) for pair in zip({a}, {b})]"]

    def numerical_mlp(self, mlp: NumericalMLP) -> list[str]:
        last = len(mlp.table) - 1
        outputs = {x: repr(mlp.table[min(x, last)]) for x in self.domains[mlp.source]}
        return [f"    {list_name(mlp.name)} = " + self.one_input(mlp.name, mlp.source, outputs)]

    def component(self, component) -> list[str]:
        if isinstance(component, (CategoricalAttention, NumericalAttention)):
            return self.attention(component)
        if isinstance(component, CategoricalMLP):
            return self.mlp(component)
        return self.numerical_mlp(component)

    # --- classifier --------------------------------------------------------------------------

    def rules(self, rules: Rules) -> list[str]:
        """The return statement of run() for a classifier given as rules."""
        labels = self.program.label_vocab
        default = repr(labels[rules.default])
        if not rules.reads:
            return [f"    return [{default}] * len(tokens)"]
        if len(rules.reads) == 1:
            read = rules.reads[0]
            listed = {row[0]: row[1] for row in rules.table}
            outputs = {v: repr(labels[listed.get(v, rules.default)]) for v in self.domains[read]}
            return ["    return " + self.one_input("classifier", read, outputs)]
        entries = [
            (f"({', '.join(self.show(name, value) for name, value in zip(rules.reads, row))})", repr(labels[row[-1]]))
            for row in rules.table
        ]
        comment = f"# The classifier: the label of each joint value of {len(rules.reads)} variables (any other: {default})."
        table = wrapped("CLASSIFIER = {", [f"{k}: {v}" for k, v in entries], ", ", "}", "")
        self.definitions.append([comment, *table])
        names = [list_name(name) for name in rules.reads]
        return wrapped(f"return [CLASSIFIER.get(key, {default}) for key in zip(", names, ", ", ")]", "    ")

    # --- the whole file ----------------------------------------------------------------------

    def runfunction(self, body_parts: list[str], used: set[str]) -> list[str]:
        program = self.program
        body = ["    tokens = list(tokens)", "    check(tokens)"]
        if program.unknown is not None or program.replace_numbers:
            body.append("    tokens = [read_word(token) for token in tokens]")
        if "positions" in used:
            body.append("    positions = list(range(len(tokens)))")
        if "ones" in used:
            body.append("    ones = [1] * len(tokens)")
        body += [f"    {list_name(e.name)} = [{e.name.upper()}[token] for token in tokens]" for e in program.embeddings]
        code = "\n".join(body_parts)
        for variable in program.variables:  # a constant the printed code never reads is not printed
            if variable.constant is not None and re.search(rf"\b{list_name(variable.name)}\b", code):
                value = self.show(variable.name, variable.constant)
                body.append(f"    {list_name(variable.name)} = [{value}] * len(tokens)  # constant")
        body += body_parts
        doc = "Reads the input tokens; returns the predicted label of every position."
        return function_lines("run", ["tokens"], doc, body)


def check_function(program: Program) -> list[str]:
    """The lines of check(): it takes any known tokens up to MAX_LEN (any words, for word
    tasks), or exactly the input space."""
    space = program.input_space
    if space is None:
        body = CHECK_ANY[:4] if program.unknown is not None else CHECK_ANY
        return function_lines("check", ["tokens"], CHECK_DOC, body)
    conditions = [f"tokens[:1] != [{BOS!r}]"]
    if space.eos:
        conditions.append(f"tokens[-1] != {EOS!r}")
    conditions += [f"not {space.min_len} <= len(content) <= {space.max_len}", "not set(content) <= SYMBOLS"]
    condition = wrapped_words("if " + " or ".join(conditions) + ":", WIDTH - 4)
    if len(condition) > 1:
        condition = ["if (" + condition[0][3:], *("        " + line for line in condition[1:])]
        condition[-1] = condition[-1][:-1] + "):"
    message = wrapped_words(f"it takes {space.describe()}", WIDTH - 20)
    lines = [
        f"    content = {'tokens[1:-1]' if space.eos else 'tokens[1:]'}",
        *("    " + line for line in condition),
        '        raise ValueError(f"{tokens} is not an input of this program; "',
        *(f"                         {line + ' ' if n < len(message) - 1 else line!r}" for n, line in enumerate(message)),
    ]
    lines[-1] += ")"
    return function_lines("check", ["tokens"], CHECK_DOC, lines)


def generate(program: Program, model_sha256: str | None = None) -> str:
    """Source of a standalone Python file computing `program`, bit-identical to the model;
    `model_sha256` names the model it is verified against. A head that sums `ones` prints as a
    count(), unless numerical_aggregate() is printed anyway and summing `ones` is shorter."""
    text = _source(program, model_sha256, counts=True)
    if "def count(" in text and "def numerical_aggregate(" in text:
        return min(text, _source(program, model_sha256, counts=False), key=lambda t: t.count("\n"))
    return text


def _source(program: Program, model_sha256: str | None, counts: bool) -> str:
    """generate()'s text, with a head that sums `ones` written as a count() or not."""
    writer = _Writer(program, counts)
    statements: list[str] = []
    for index, layer in enumerate(program.layers):
        statements.append(f"    # layer {index}")
        for component in layer.components():
            statements += writer.component(component)
    classifier = program.classifier
    classifier_lines: list[str] = []
    if isinstance(classifier, Rules):
        statements += writer.rules(classifier)
    else:
        entries = [f"{name!r}: {list_name(name)}" for name in classifier_reads(program)]
        mapping = wrapped("variables = {", entries, ", ", "}", "    ")
        if len(mapping) > 1:
            mapping[0] += "  # every variable the classifier reads, in variable order"
        statements += mapping
        if classifier.pooled:
            statements.append("    return [classify(variables)] * len(tokens)")
        else:
            statements += ["    return [classify({name: values[i] for name, values in variables.items()})",
                           "            for i in range(len(tokens))]"]
        classifier_lines = weights_lines(classifier, writer.domains, writer.show)
    read = {name for layer in program.layers for component in layer.components() for name in writer.code_reads(component)}
    used = read | set(classifier_reads(program))

    space = program.input_space
    domain = "" if space is None else (f"It takes {space.describe()}, and raises ValueError on any other input "
                                       "(from a shell: one error line, exit status 2). ")
    about = "\n".join(wrapped_words(docstring_text(ABOUT.format(bos=repr(BOS), domain=domain))))
    imports = "import re\n" if program.replace_numbers else ""
    imports += "import struct\n" if "def f32(" in "\n".join(classifier_lines) else ""
    lines = [HEADER.format(about=about, imports=imports)]
    if model_sha256 is not None:
        lines += ["# The model this program was verified against: sha256 of its config and weights.",
                  f'MODEL_SHA256 = "{model_sha256}"']
    if space is None:
        lines += wrapped("INPUT_TOKENS = [", [repr(t) for t in program.input_vocab if t != PAD], ", ", "]", "")
        lines += ["KNOWN_TOKENS = set(INPUT_TOKENS)", f"MAX_LEN = {program.max_len}"]
    else:
        lines += wrapped("SYMBOLS = {", [repr(symbol) for symbol in space.symbols], ", ", "}", "")
    if isinstance(classifier, Classifier):
        lines += wrapped("LABELS = [", [repr(label) for label in program.label_vocab[1:]], ", ", "]", "")
    lines += check_function(program)
    if program.unknown is not None or program.replace_numbers:
        lines.append(read_word_text(program.unknown, program.replace_numbers))
    body_text = "\n".join(statements)
    if "select_closest(" in body_text:
        lines.append(SELECT_CLOSEST.rstrip("\n"))
    if "= count(" in body_text:
        lines.append(COUNT.rstrip("\n"))
    if "numerical_aggregate(" in body_text:
        lines.append(NUMERICAL_AGGREGATE.rstrip("\n"))
    lines += _embeddings(writer)
    lines += spaced(writer.definitions)
    lines += classifier_lines
    lines += writer.runfunction(statements, used)
    lines.append(MAIN.rstrip("\n"))
    return "\n".join(lines) + "\n"


def _embeddings(writer: _Writer) -> list[str]:
    """The learned embeddings' tables: lookup tables above run() for a small vocabulary; for a
    word vocabulary, data: one string per embedding, a character per word of INPUT_TOKENS."""
    program = writer.program
    if len(program.input_vocab) <= LARGE_VOCABULARY or program.d > len(VALUE_DIGITS):
        for embedding in program.embeddings:
            entries = [(writer.show("tokens", t), repr(embedding.table[t])) for t in writer.domains["tokens"]]
            writer.table(embedding.name.upper(), entries)
        return []
    lines = ["", f"VALUE_DIGITS = {VALUE_DIGITS!r}", DECODE.rstrip("\n")] if program.embeddings else []
    for embedding in program.embeddings:
        text = "".join(VALUE_DIGITS[value] for value in embedding.table[1:])  # INPUT_TOKENS order: all but <pad>
        chunks = [repr(text[start : start + WIDTH - 10]) for start in range(0, len(text), WIDTH - 10)]
        lines += ["", f"{embedding.name.upper()} = dict(zip(INPUT_TOKENS, decode(", *("    " + c for c in chunks), ")))"]
    return lines

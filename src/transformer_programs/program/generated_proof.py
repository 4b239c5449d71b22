"""Proof that a generated program computes its IR on every input it takes, without running it.

The generated file's rule functions must be the project's templates, word for word; run() must
compute every part of the IR, in order, from the variables the part reads, by the rule of its
kind (attention) or a per-position expression (MLPs, embeddings, and each constant it names: one
it never names cannot change what it computes), equal to the IR's
table on every value its inputs can take (`position_domains`, a sound superset); and its
classifier must hold the IR's weights or rules on every value. The rules being the same, equal
tables give equal predictions on every input (see `prove`).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from types import ModuleType

from .codegen import check_function, list_name
from .domains import joints_anywhere, position_domains
from .ir import (
    CategoricalAttention,
    CategoricalMLP,
    Classifier,
    NumericalAttention,
    Program,
    Rules,
    classifier_reads,
)
from .templates import (
    CLASSIFY_POOLED,
    CLASSIFY_WEIGHTS,
    COUNT,
    DECODE,
    F32,
    NUMERICAL_AGGREGATE,
    SELECT_CLOSEST,
    read_word_text,
)

MAX_JOINT = 2_000_000  # joint values of a part's inputs checked one by one, at most


def _functions(source: str | ast.Module) -> dict[str, str]:
    """Each top-level function of `source` (text or a parsed module), as a dump of its syntax tree."""
    tree = ast.parse(source) if isinstance(source, str) else source
    return {node.name: ast.dump(node) for node in tree.body if isinstance(node, ast.FunctionDef)}


def _expression(text: str) -> str:
    """A dump of the syntax tree of one statement or expression."""
    return ast.dump(ast.parse(text).body[0])


class _Proof:
    """The generated program of one IR, checked part by part against it."""

    def __init__(self, program: Program, source: str, module: ModuleType):
        self.program, self.module = program, module
        self.at = position_domains(program)  # variable -> the values it may take at each position
        self.kinds = {"tokens": "token", **{variable.name: variable.kind for variable in program.variables}}
        self.names = {list_name(name): name for name in self.at}  # run()'s list -> the variable it holds
        self.tree = ast.parse(source)
        self.gaps: list[str] = []

    def shown(self, variable: str, value: int):
        """A value of `variable` as the generated program holds it: the token string for tokens."""
        return self.program.input_vocab[value] if self.kinds[variable] == "token" else value

    def gap(self, part: str, reason: str) -> None:
        self.gaps.append(f"{part}: {reason}")

    # --- the fixed text ------------------------------------------------------------------------

    def inputs(self) -> None:
        """The file takes the program's inputs: its tokens and length, or its input space's symbols."""
        module, program = self.module.__dict__, self.program
        if program.input_space is None:
            if module.get("MAX_LEN") != program.max_len or module.get("INPUT_TOKENS") != program.input_vocab[1:] \
                    or module.get("KNOWN_TOKENS") != set(program.input_vocab[1:]):
                self.gap("inputs", "MAX_LEN, INPUT_TOKENS or KNOWN_TOKENS are not the program's")
        elif module.get("SYMBOLS") != set(program.input_space.symbols):
            self.gap("inputs", "SYMBOLS are not the program's input space's")

    def templates(self) -> None:
        """Every rule function the file defines is the template's, word for word, and check()
        takes exactly the program's inputs."""
        program = self.program
        expected = {**_functions(SELECT_CLOSEST), **_functions(COUNT), **_functions(NUMERICAL_AGGREGATE),
                    **_functions(F32), **_functions(DECODE), **_functions("\n".join(check_function(program)))}
        if program.unknown is not None or program.replace_numbers:
            expected.update(_functions(read_word_text(program.unknown, program.replace_numbers)))
        classifier = program.classifier
        if isinstance(classifier, Classifier):
            expected.update(_functions(CLASSIFY_POOLED if classifier.pooled else CLASSIFY_WEIGHTS))
        for name, dump in _functions(self.tree).items():
            if name in expected and dump != expected[name]:
                self.gap(name, "differs from the project's template of that rule")
            if name in ("classify", "read_word", "check") and name not in expected:
                self.gap(name, "defined where the program has no such rule")

    # --- run() ---------------------------------------------------------------------------------

    def statements(self) -> list[ast.stmt]:
        """run()'s statements, docstring aside."""
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "run":
                body = node.body
                return body[1:] if body and isinstance(body[0], ast.Expr) else body
        self.gap("run", "the file defines no run()")
        return []

    def list_read(self, node: ast.expr) -> str | None:
        """The variable whose list `node` names, if it names one."""
        return self.names.get(node.id) if isinstance(node, ast.Name) else None

    def cells(self, node: ast.expr) -> tuple[list[str], Callable[[list[list]], list]] | None:
        """(variables read, evaluate) for a statement that computes each position from the same
        position of the lists it reads: `[expr for x in X]`, `[expr for pair in zip(A, B)]`,
        `list(X)` or `[constant] * len(tokens)`; None for any other form."""
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "list" \
                and len(node.args) == 1 and self.list_read(node.args[0]):
            return [self.list_read(node.args[0])], lambda columns: list(columns[0])
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) and isinstance(node.left, ast.List) \
                and len(node.left.elts) == 1 and isinstance(node.left.elts[0], ast.Constant) \
                and ast.dump(node.right) == ast.dump(ast.parse("len(tokens)", mode="eval").body):
            value = node.left.elts[0].value
            return [], lambda columns: [value] * len(columns[0])
        if not (isinstance(node, ast.ListComp) and len(node.generators) == 1):
            return None
        loop = node.generators[0]
        if loop.ifs or loop.is_async:
            return None
        if isinstance(loop.iter, ast.Call) and isinstance(loop.iter.func, ast.Name) and loop.iter.func.id == "zip":
            sources = loop.iter.args
        else:
            sources = [loop.iter]
        reads = [self.list_read(source) for source in sources]
        inner = {n.id for n in ast.walk(node.elt) if isinstance(n, ast.Name)}
        if None in reads or inner & set(self.names) or (len(reads) > 1 and not isinstance(loop.target, ast.Name)):
            return None  # reads something other than the same position of its lists
        function = ast.Expression(ast.Lambda(_params("columns"), ast.ListComp(
            node.elt, [ast.comprehension(loop.target, _zipped(len(reads)), [], 0)])))
        evaluate = eval(compile(ast.fix_missing_locations(function), "<program>", "eval"), self.module.__dict__)
        return reads, evaluate

    def same_cells(self, part: str, node: ast.expr, reads: list[str], expected: Callable[..., object]) -> None:
        """A per-position statement reading some of `reads` equals `expected(*values of reads)`
        on every joint value they may take."""
        found = self.cells(node)
        if found is None:
            return self.gap(part, "not a per-position expression of its inputs")
        printed_reads, evaluate = found
        if not set(printed_reads) <= set(reads):
            return self.gap(part, f"reads {printed_reads}, which its part does not (it reads {reads})")
        names = list(dict.fromkeys(reads))
        rows = joints_anywhere(self.at, names, MAX_JOINT)
        if rows is None:
            return self.gap(part, f"its inputs take more than {MAX_JOINT} joint values")
        columns = [[self.shown(name, row[names.index(name)]) for row in rows] for name in printed_reads]
        got = evaluate(columns if printed_reads else [rows])
        for row, value in zip(rows, got):
            want = expected(*(row[names.index(name)] for name in reads))
            if value != want:
                values = dict(zip(names, row))
                return self.gap(part, f"gives {value!r} at {values}, its table {want!r}")
        return None

    def attention(self, head, found: dict) -> None:
        """A head's statement: the rule its kind prints, on the IR's query, key and value, causal
        as the IR's, with a predicate equal to the IR's wherever it can change what is read."""
        name = head.name
        counted = found["rule"] == "count"
        rule = "select_closest" if isinstance(head, CategoricalAttention) else "count" if counted else \
            "numerical_aggregate"
        if found["rule"] != "never" and found["rule"] != rule:
            return self.gap(name, f"computed with {found['rule']}(), not {rule}()")
        value = "ones" if counted else found["value"]
        if value != head.value:
            return self.gap(name, f"reads values of {value}, its part of {head.value}")
        if found["rule"] == "never":
            predicate = lambda q, k: False  # noqa: E731 - no key is ever read
        else:
            if (found["query"], found["key"]) != (head.query, head.key) or found["causal"] != head.causal:
                return self.gap(name, "reads other queries or keys, or another causality, than its part")
            predicate = found["predicate"]
        at_query, at_key = self.at[head.query], self.at[head.key]
        last_position = {}  # query value -> the last position that may hold it
        for i, values in enumerate(at_query):
            for q in values:
                last_position[q] = i
        reached = [j for j in range(len(at_key)) if at_key[j]]
        for q, last in last_position.items():
            visible = [j for j in reached if j <= last or not head.causal]
            target = head.predicate[q]
            first = 1 if isinstance(head, CategoricalAttention) else 0  # position 0 is also the fallback
            if not any(target in at_key[j] for j in visible if j >= first):
                visible = [j for j in visible if j >= first]  # no key it sees matches: it must match none
            for k in sorted(set().union(*(at_key[j] for j in visible))):
                if bool(predicate(self.shown(head.query, q), self.shown(head.key, k))) != (k == target):
                    return self.gap(name, f"its predicate on query {q!r}, key {k!r} is not its part's")
        return None

    def parts(self) -> None:
        """run() computes every part of the IR in order, each from its inputs as the IR does."""
        program = self.program
        expected_prefix = ["tokens = list(tokens)", "check(tokens)"]
        body = self.statements()
        steps: dict[str, dict] = {}  # variable -> how run() computes it
        pending: dict | None = None
        order: list[str] = []
        reads_words = False
        for statement in body:
            dump = ast.dump(statement)
            if dump in {_expression(text) for text in expected_prefix}:
                continue
            if dump == _expression("tokens = [read_word(token) for token in tokens]"):
                reads_words = True
                continue
            if dump in {_expression("positions = list(range(len(tokens)))"), _expression("ones = [1] * len(tokens)")}:
                continue
            if isinstance(statement, ast.Return) or (isinstance(statement, ast.Assign)
                                                     and ast.unparse(statement.targets[0]) == "variables"):
                steps.setdefault("classifier", {"statements": []})["statements"].append(statement)
                continue
            if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                    and isinstance(statement.targets[0], ast.Name)):
                self.gap("run", f"an unexpected statement: {ast.unparse(statement)[:80]}")
                continue
            target, value = statement.targets[0].id, statement.value
            call = value.func.id if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) else None
            if target == "pattern" and call == "select_closest":
                pending = self.head_call(value)
                continue
            variable = self.names.get(target)
            if variable is None or variable in ("tokens", "positions", "ones"):
                self.gap("run", f"assigns {target}, which is no variable of the program")
                continue
            order.append(variable)
            if call == "aggregate" and pending is not None and len(value.args) == 2 \
                    and ast.unparse(value.args[0]) == "pattern":
                steps[variable] = {**pending, "value": self.list_read(value.args[1])}
                pending = None
            elif call in ("count", "numerical_aggregate"):
                steps[variable] = self.head_call(value)
            elif isinstance(value, ast.BinOp) and isinstance(value.left, ast.List) and len(value.left.elts) == 1 \
                    and isinstance(value.left.elts[0], ast.Subscript):  # [v[0]] * len(tokens): no match
                steps[variable] = {"rule": "never", "value": self.list_read(value.left.elts[0].value), "node": value}
            else:
                steps[variable] = {"rule": "cells", "node": value}
        if reads_words != (program.unknown is not None or program.replace_numbers):
            self.gap("run", "reads words otherwise than the program (read_word)")
        named = {self.names[node.id] for statement in body for node in ast.walk(statement)
                 if isinstance(node, ast.Name) and node.id in self.names}
        constants = [v.name for v in program.variables if v.constant is not None and v.name in named]
        self.check_order(order, constants)
        self.embeddings_and_constants(steps, constants)
        for layer in program.layers:
            for component in layer.components():
                self.component(component, steps.get(component.name))
        self.classifier(steps.get("classifier", {"statements": []})["statements"])

    def head_call(self, call: ast.Call) -> dict:
        """What an attention rule's call reads: its rule, query, key, predicate, value and causality."""
        rule = call.func.id
        causal = any(k.arg == "causal" and isinstance(k.value, ast.Constant) and k.value.value is True
                     for k in call.keywords)
        args = call.args
        found = {"rule": rule, "causal": causal, "query": None, "key": None, "predicate": None, "value": None}
        if len(args) >= 3:
            found.update(query=self.list_read(args[0]), key=self.list_read(args[1]),
                         predicate=eval(compile(ast.Expression(args[2]), "<program>", "eval"), self.module.__dict__))
        if rule == "numerical_aggregate" and len(args) == 4:
            found["value"] = self.list_read(args[3])
        return found

    def check_order(self, order: list[str], constants: list[str]) -> None:
        """run() computes each variable once, embeddings and `constants` (those it names: one that
        no statement names cannot change what it computes) first, then the layers in order."""
        program = self.program
        parts = [c.name for layer in program.layers for c in layer.components()]
        expected = [e.name for e in program.embeddings] + constants + parts
        if order != expected:
            self.gap("run", f"computes {order}, the program's parts are {expected}")

    def embeddings_and_constants(self, steps: dict[str, dict], constants: list[str]) -> None:
        for embedding in self.program.embeddings:
            table = embedding.table
            step = steps.get(embedding.name, {"node": ast.Constant(None)})
            self.same_cells(embedding.name, step["node"], ["tokens"],
                            lambda t, table=table: self.shown(embedding.name, table[t]))
        for name in constants:
            variable = self.program.variable(name)
            step = steps.get(name, {"node": ast.Constant(None)})
            self.same_cells(name, step["node"], [], lambda v=variable: self.shown(v.name, v.constant))

    def component(self, component, step: dict | None) -> None:
        name = component.name
        if step is None:
            return self.gap(name, "run() does not compute it")
        if isinstance(component, (CategoricalAttention, NumericalAttention)):
            if isinstance(component, NumericalAttention) and step["rule"] == "cells" \
                    and ast.dump(step["node"]) == ast.dump(ast.parse("[0] * len(tokens)", mode="eval").body):
                step = {"rule": "never", "value": component.value}  # sums no key: 0 whatever its values
            if step["rule"] == "cells":
                return self.gap(name, "an attention head computed per position")
            return self.attention(component, step)
        if step["rule"] != "cells":
            return self.gap(name, "an MLP computed by an attention rule")
        show = self.shown
        if isinstance(component, CategoricalMLP):
            table = component.table
            return self.same_cells(name, step["node"], [component.first, component.second],
                                   lambda a, b: show(name, table[a][b]))
        last = len(component.table) - 1
        return self.same_cells(name, step["node"], [component.source],
                               lambda x: show(name, component.table[min(x, last)]))

    # --- the classifier ------------------------------------------------------------------------

    def classifier(self, statements: list[ast.stmt]) -> None:
        program = self.program
        classifier = program.classifier
        labels = program.label_vocab
        if isinstance(classifier, Rules):
            if len(statements) != 1 or not isinstance(statements[0], ast.Return):
                return self.gap("classifier", "run() does not return the rules' labels")
            listed = {tuple(row[:-1]): row[-1] for row in classifier.table}
            return self.same_cells("classifier", statements[0].value, classifier.reads,
                                   lambda *values: labels[listed.get(values, classifier.default)])
        reads = classifier_reads(program)
        mapping = ", ".join(f"{name!r}: {list_name(name)}" for name in reads)
        returned = ("return [classify(variables)] * len(tokens)" if classifier.pooled else
                    "return [classify({name: values[i] for name, values in variables.items()}) "
                    "for i in range(len(tokens))]")
        if [ast.dump(s) for s in statements] != [_expression(f"variables = {{{mapping}}}"), _expression(returned)]:
            return self.gap("classifier", "run() does not pass classify() the variables the classifier reads, in order")
        self.weights(classifier)
        return None

    def weights(self, classifier: Classifier) -> None:
        """The file's LABELS and weights are the IR's, on every value a read variable may take."""
        module = self.module.__dict__
        labels = self.program.label_vocab
        if module.get("LABELS") != labels[1:]:
            return self.gap("classifier", "LABELS are not the program's labels")
        if list(module.get("CLASSIFIER_BIAS", [])) != classifier.bias[1:]:
            return self.gap("classifier", "CLASSIFIER_BIAS is not the IR's bias")
        numerical, categorical = module.get("CLASSIFIER_NUMERICAL", {}), module.get("CLASSIFIER_CATEGORICAL", {})
        if set(numerical) != set(classifier.numerical) or set(categorical) != set(classifier.categorical):
            return self.gap("classifier", "its weights are of other variables than the IR's")
        for name, row in classifier.numerical.items():
            if list(numerical[name]) != row[1:]:
                return self.gap("classifier", f"the weights of {name} are not the IR's")
        zero = [0] * (len(labels) - 1)
        for name, table in classifier.categorical.items():
            for value in sorted(set().union(*self.at[name])):
                shown = self.shown(name, value)
                row = categorical[name].get(shown) if classifier.pooled else categorical[name].get(shown, zero)
                if row is None or list(row) != table[value][1:]:
                    return self.gap("classifier", f"the row of {name} = {shown!r} is not the IR's")
        return None


def _params(name: str) -> ast.arguments:
    return ast.arguments(posonlyargs=[], args=[ast.arg(name)], kwonlyargs=[], kw_defaults=[], defaults=[])


def _zipped(n: int) -> ast.expr:
    """`zip(columns[0], ..., columns[n-1])`, or `columns[0]` for one column."""
    columns = [ast.Subscript(ast.Name("columns", ast.Load()), ast.Constant(i), ast.Load()) for i in range(max(n, 1))]
    return columns[0] if n <= 1 else ast.Call(ast.Name("zip", ast.Load()), columns, [])


def generated_gaps(program: Program, source: str, module: ModuleType) -> list[str]:
    """The parts of the generated program (`source`, imported as `module`) not proved to compute
    the IR `program` on every input it takes; [] when all are."""
    proof = _Proof(program, source, module)
    proof.inputs()
    proof.templates()
    proof.parts()
    return proof.gaps

"""The package's shape (docs/architecture.md): imports point down, one owner per file name, small units.

These read the source with :mod:`ast`, so imports inside functions count as much as those at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "xferdiag"
COMPUTATION = ("data", "models", "engine", "analyzers", "explainers", "modalities", "tasks", "negative", "sequential", "health", "catchup")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
RUN_DIR_NAMES = ("run.json", "data.json", "verdict.json", "shots.json", "model.pt", "checkpoint.pt", "history.csv",
                 "metrics.json", "predictions.npz", "features.npz", "shift.json", "embedding.npz", "similarity.json",
                 "transferability.json", "index.json", "maps.npz", "report.html")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _resolve(module: str, path: Path, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The xferdiag modules one import statement loads (a submodule when it names one, else the package)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "xferdiag"]
    if node.level:
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    if base.split(".")[0] != "xferdiag":
        return []
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]


def _import_graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets.update(t for t in _resolve(module, path, node) if t in MODULES and t != module)
        graph[module] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle():
    assert _cycles(_import_graph()) == []


def test_computation_never_imports_commands_or_the_run_directory():
    graph = _import_graph()
    offending = []
    for module, targets in graph.items():
        if module.count(".") == 0 or module.split(".")[1] not in COMPUTATION:
            continue
        for target in targets:
            layer = target.split(".")[1] if "." in target else ""
            if layer in ("commands", "rundir", "report", "api", "cli"):
                offending.append(f"{module} -> {target}")
    assert offending == []


def test_the_command_line_calls_the_api_not_the_commands():
    """cli.py parses and prints; what a command does is reached through api.py, as a notebook reaches it."""
    graph = _import_graph()
    assert sorted(t for t in graph["xferdiag.cli"] | graph["xferdiag.cli_help"] if t.startswith("xferdiag.commands")) == []
    assert "xferdiag.api" in graph["xferdiag.cli"]


def test_no_module_imports_another_package_s_private_module():
    """A private module (``rundir/_io.py``) is its package's own; what others share sits below both (``atomic.py``)."""
    offending = []
    for module, targets in _import_graph().items():
        for target in targets:
            package, _, leaf = target.rpartition(".")
            if leaf.startswith("_") and not leaf.startswith("__") and not (module + ".").startswith(package + "."):
                offending.append(f"{module} -> {target}")
    assert offending == []


def test_no_module_is_longer_than_the_limit():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
        body = body[1:]  # the docstring is not body
    return body[-1].end_lineno - body[0].lineno + 1 if body else 0


def test_no_function_body_is_longer_than_the_limit():
    long = {}
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _body_lines(node) > MAX_FUNCTION_LINES:
                long[f"{name}.{node.name}"] = _body_lines(node)
    assert long == {}


def _code_strings(tree: ast.AST) -> list[ast.Constant]:
    """String constants that are not docstrings."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_run_directory_file_names_are_spelled_only_in_rundir():
    spelled = []
    for name, path in MODULES.items():
        if name == "xferdiag.rundir" or name.startswith("xferdiag.rundir."):
            continue
        for node in _code_strings(ast.parse(path.read_text())):
            spelled += [f"{name}:{node.lineno} {file}" for file in RUN_DIR_NAMES if file in node.value]
    assert spelled == []


TASK_NAMES = ("classification", "detection")  # xferdiag.tasks.registry's names, spelled here so the rule reads no code


def _task_branches(tree: ast.AST) -> list[int]:
    """Lines comparing something with a task's name (``task == "detection"``, ``name in ("classification", ...)``)."""
    def names_a_task(node: ast.AST) -> bool:
        elements = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
        return any(isinstance(e, ast.Constant) and e.value in TASK_NAMES for e in elements)

    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Compare) and any(names_a_task(side) for side in [node.left, *node.comparators])]


def test_only_the_task_plug_ins_branch_on_the_task():
    """The commands, the run directory and the report ask the task (its plug-in or its descriptor), never test its name."""
    branches = []
    for name, path in MODULES.items():
        if name == "xferdiag.tasks" or name.startswith("xferdiag.tasks."):
            continue
        branches += [f"{name}:{line}" for line in _task_branches(ast.parse(path.read_text()))]
    assert branches == []


def test_the_task_rule_sees_a_branch():
    assert _task_branches(ast.parse('if config.task == "detection":\n    pass\nok = kind in ("detection", "x")')) == [1, 3]


MODALITY_PLUG_INS = ("xferdiag.modalities.image", "xferdiag.modalities.table", "xferdiag.modalities.text")
KIND_WORDS = ("image", "table", "text", "tabular")  # xferdiag.modalities.kinds' vocabulary and its old spelling
KIND_CONSTANTS = ("IMAGE", "TABLE", "TEXT", "TOKENS")  # its constants, and the old channel sentinel's
PAYLOAD_ATTRIBUTES = ("texts", "table", "images", "is_text")  # the old nullable fields of Domain and the old flags
PAYLOAD_TYPES = ("ImageTensors", "ImageFiles", "TableRows", "Texts", "TensorImageSet", "FileImageSet", "TableSet", "TextSet")


def _identifier(node: ast.AST) -> str:
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def _names_a_kind(side: ast.AST, other_sides: list[ast.AST]) -> bool:
    """A kind constant anywhere; a kind's word only beside something that names a kind (``kind``, ``.name``,
    ``modality``), so ``scenario == "text"`` (a demo's name) is no branch."""
    elements = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
    if any(_identifier(e) in KIND_CONSTANTS for e in elements):
        return True
    words = any(isinstance(e, ast.Constant) and e.value in KIND_WORDS for e in elements)
    return words and any(word in _identifier(o).lower() for o in other_sides for word in ("kind", "name", "modality"))


def _branch(node: ast.AST) -> bool:
    if isinstance(node, ast.Compare):
        sides = [node.left, *node.comparators]
        channels = any(_identifier(s) == "channels" for s in sides) and any(
            isinstance(s, ast.Constant) and s.value == 0 or isinstance(s, ast.UnaryOp) and isinstance(s.op, ast.USub) for s in sides)
        payload = any(isinstance(op, (ast.Is, ast.IsNot)) for op in node.ops) and any(
            isinstance(s, ast.Attribute) and s.attr in PAYLOAD_ATTRIBUTES for s in sides)
        return channels or payload or any(_names_a_kind(s, [o for o in sides if o is not s]) for s in sides)
    if isinstance(node, (ast.Attribute, ast.Name)):
        return _identifier(node) in ("is_text", "TOKENS")
    if isinstance(node, ast.Call) and _identifier(node.func) in ("getattr", "hasattr", "isinstance", "issubclass") and len(node.args) >= 2:
        second = node.args[1]
        if _identifier(node.func) in ("getattr", "hasattr"):
            return isinstance(second, ast.Constant) and second.value in PAYLOAD_ATTRIBUTES
        return any(_identifier(t) in PAYLOAD_TYPES for t in (second.elts if isinstance(second, ast.Tuple) else [second]))
    return False


def _modality_branches(tree: ast.AST) -> list[int]:
    """Lines that branch on the kind of data: the old attribute tests (``.texts is None``, ``channels == 0``,
    ``is_text``, ``TOKENS``), comparisons with a kind (``spec.kind == TEXT``, ``kind == "tabular"``) and
    ``isinstance`` against a plug-in's payload or dataset types."""
    return sorted({node.lineno for node in ast.walk(tree) if _branch(node)})


def test_only_the_modality_plug_ins_branch_on_the_kind_of_data():
    """Everything else asks the domain's payload, the modality plug-in (:mod:`xferdiag.modalities.registry`) or its
    descriptor; no shared module is an exception."""
    branches = []
    for name, path in MODULES.items():
        if any(name == p or name.startswith(f"{p}.") for p in MODALITY_PLUG_INS):
            continue
        branches += [f"{name}:{line}" for line in _modality_branches(ast.parse(path.read_text()))]
    assert branches == []


def test_the_modality_rule_sees_a_branch():
    source = "\n".join([
        "if domain.texts is not None:",  # 1
        "    pass",
        "ok = spec.channels == 0 or spec.is_text",  # 3
        'if index.get("kind") == "tabular" or modality.name == "text":',  # 4
        "    pass",
        "same = spec.kind != TEXT and isinstance(domain.payload, TableRows)",  # 6
        'cut = getattr(backbone, "is_text", False)',  # 7
        'demo = scenario == "text" and domain.kind == other.kind and kind == "mean"',  # not a branch on the kind of data
    ])
    assert _modality_branches(ast.parse(source)) == [1, 3, 4, 6, 7]


SHARED = ("data", "models", "engine", "analyzers", "explainers", "rundir", "report")
"""The packages every kind of data shares: they reach a modality through its registry, its model side
(``modalities/models.py``: ``models/`` asks it to build the text network and the table MLP), its loader
(``modalities/loading.py``) or its descriptor."""


def _plug_in_imports(graph: dict[str, set[str]], packages: tuple[str, ...]) -> list[str]:
    """Imports of a modality plug-in package's modules by a module of the shared ``packages``."""
    return sorted(f"{module} -> {target}" for module, targets in graph.items()
                  if module.count(".") and module.split(".")[1] in packages
                  for target in targets if any(target == p or target.startswith(f"{p}.") for p in MODALITY_PLUG_INS))


def test_the_shared_packages_import_no_modality_plug_in():
    """Code of one kind of data lives in its plug-in package (``modalities/text/load.py``, ``modalities/table/mlp.py``);
    the shared packages import none of it, so a module of one kind moved back into them would have to stand alone."""
    assert _plug_in_imports(_import_graph(), SHARED) == []


def test_the_shared_package_rule_sees_an_import():
    graph = {"xferdiag.data.images": {"xferdiag.modalities.image.data"}, "xferdiag.data": {"xferdiag.modalities.descriptor"},
             "xferdiag.models.source": {"xferdiag.modalities.text.network", "xferdiag.modalities.models"},
             "xferdiag.tasks.classification.audit": {"xferdiag.modalities.table.mlp"}}
    assert _plug_in_imports(graph, SHARED) == ["xferdiag.data.images -> xferdiag.modalities.image.data",
                                               "xferdiag.models.source -> xferdiag.modalities.text.network"]


def _payloads(tree: ast.AST) -> list[str]:
    """Classes that say which kind of data they hold (``kind = IMAGE``): the payloads of :class:`xferdiag.data.Payload`."""
    return [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
            for statement in node.body if isinstance(statement, ast.Assign)
            and any(isinstance(target, ast.Name) and target.id == "kind" for target in statement.targets)]


def test_every_payload_lives_in_its_modality_plug_in():
    """A domain's payload (its examples as one kind of data holds them, ``ImageTensors``, ``Texts``) is its modality's:
    none is defined in a shared module."""
    found = []
    for name, path in MODULES.items():
        if not any(name == p or name.startswith(f"{p}.") for p in MODALITY_PLUG_INS):
            found += [f"{name}.{payload}" for payload in _payloads(ast.parse(path.read_text()))]
    assert found == []


def test_the_payload_rule_sees_a_payload():
    source = "class Audio:\n    kind = 'audio'\n\nclass Spec:\n    kind: str = 'image'\n\nclass Other:\n    name = 'x'\n"
    assert _payloads(ast.parse(source)) == ["Audio"]

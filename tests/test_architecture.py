"""The house rules, checked over the source tree so they stay true (see docs/ARCHITECTURE.md).

- the import graph of ``anyrec`` has no circle, and no module imports a layer above its own
  (every import counts: module level, inside functions, under ``TYPE_CHECKING``);
- no ``isinstance`` check on a concrete model class outside ``anyrec.models`` (callers ask the
  model's capabilities instead);
- no module reaches into another object's private attributes (``obj._name`` where ``obj`` is not
  ``self`` or ``cls``) or imports another module's private names;
- no source file is longer than 400 lines, and no line longer than 120 characters (ruff's E501 is on too).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "anyrec"

# Lowest first. A module may import its own layer and the ones below it, never one above.
LAYERS: list[tuple[str, ...]] = [
    # the package root (its version), errors, the local / Ray runner, PNG figures, the training loop, the machine's
    # memory
    ("anyrec", "anyrec.errors", "anyrec.cluster", "anyrec.plotting", "anyrec.training", "anyrec.machine"),
    ("anyrec.text",),
    ("anyrec.data",),
    ("anyrec.lm",),
    ("anyrec.models",),
    ("anyrec.index",),
    ("anyrec.rank",),
    ("anyrec.explain",),
    ("anyrec.eval",),
    ("anyrec.app", "anyrec.config"),  # fitting for serving, saved versions, the pipeline, the TOML config
    ("anyrec.store",),
    ("anyrec.serve",),
    ("anyrec.cli", "anyrec.__main__"),
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module an imported name lives in (``anyrec.models.base.top_k`` → ``anyrec.models.base``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    """Module → the ``anyrec`` modules it imports (all of them: lazy and type-checking ones too)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for mod, path in MODULES.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                names = [f"{base}.{a.name}" for a in node.names]
            for name in names:
                target = _resolve(name) if name.startswith("anyrec") else None
                if target and target != mod:
                    graph[mod].add(target)
    return graph


def layer_of(mod: str) -> int:
    best, found = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (mod == p or mod.startswith(p + ".")) and len(p) > best:
                best, found = len(p), i
    if found < 0:
        raise AssertionError(f"{mod} is in no layer of LAYERS")
    return found


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(set(graph) | {w for ws in graph.values() for w in ws}):
        if v not in index:
            visit(v)
    return out


def test_the_graph_is_read() -> None:
    graph = import_graph()
    assert "anyrec.models.base" in graph["anyrec.models.registry"]
    assert "anyrec.models.sequential.config" in graph["anyrec.models.sequential.network"]  # a TYPE_CHECKING import
    assert circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_no_import_circles() -> None:
    assert circles(import_graph()) == []


def test_no_import_runs_up_the_layers() -> None:
    up = sorted(f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
                for m, targets in import_graph().items() for t in targets if layer_of(t) > layer_of(m))
    assert up == []


def _model_classes() -> set[str]:
    """Names of the classes defined in anyrec.models (the concrete recommenders and their parts)."""
    names = set()
    for mod, path in MODULES.items():
        if mod.startswith("anyrec.models"):
            names |= {
                n.name for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, ast.ClassDef)
            }
    return names - {"Recommender", "Filters"}  # the contract itself and its filter type are what callers may name


def test_no_isinstance_on_model_classes_outside_models() -> None:
    classes = _model_classes()
    assert {"ZeroShot", "Sequential", "ItemKNN", "Generative", "Popularity"} <= classes
    found = []
    for mod, path in MODULES.items():
        if mod.startswith("anyrec.models"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("isinstance", "issubclass")
            ):
                kinds = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
                named = [
                    k.id if isinstance(k, ast.Name) else k.attr if isinstance(k, ast.Attribute) else "" for k in kinds
                ]
                found += [f"{mod}:{node.lineno} isinstance(…, {n})" for n in named if n in classes]
    assert found == []


def _private_uses(tree: ast.AST, mod: str) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
                continue
            if node.attr in (
                "_mapping",
                "_asdict",
                "_replace",
                "_fields",
            ):  # public API of SQLAlchemy rows and namedtuples
                continue
            found.append(f"{mod}:{node.lineno} .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("anyrec"):
            found += [
                f"{mod}:{node.lineno} imports {a.name}"
                for a in node.names
                if a.name.startswith("_") and not a.name.startswith("__")
            ]
    return sorted(found)


def test_no_private_attributes_across_objects() -> None:
    found = []
    for mod, path in MODULES.items():
        found += _private_uses(ast.parse(path.read_text(encoding="utf-8")), mod)
    root = SRC.parent
    for path in sorted([*(root / "benchmarks").glob("*.py"), *(root / "examples").glob("*.py")]):
        if path.name == "recbole_runner.py":
            continue  # it instruments RecBole's own Trainer (budget, epoch timing), a peer's internals, not ours
        found += _private_uses(ast.parse(path.read_text(encoding="utf-8")), path.name)
    assert found == []


def test_the_private_check_sees_a_reach() -> None:
    tree = ast.parse(
        "def f(model):\n    return model._given_vectors, self._ok\nfrom anyrec.models.base import _mask_rows\n"
    )
    assert _private_uses(tree, "m") == ["m:2 ._given_vectors", "m:3 imports _mask_rows"]


def test_source_files_stay_short() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in sorted(PACKAGE.rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}


def test_source_lines_stay_narrow() -> None:
    wide = [
        f"{p.relative_to(SRC)}:{i}"
        for p in sorted(PACKAGE.rglob("*.py"))
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if len(line) > 120
    ]
    assert wide == []


def _model_attribute_names() -> set[str]:
    """Every name the recommenders define (``Recommender``'s subclasses and their mixins, in anyrec.models and
    wherever else one is defined): methods, class attributes, and attributes set on ``self``."""
    classes: dict[str, tuple[ast.ClassDef, list[str]]] = {}
    for path in MODULES.values():
        for cls in (n for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, ast.ClassDef)):
            bases = [
                b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else "" for b in cls.bases
            ]
            classes[cls.name] = (cls, bases)
    models = {"Recommender"}
    while True:  # the subclasses, then the mixins they are built from
        grown = models | {n for n, (_, bases) in classes.items() if set(bases) & models}
        grown |= {b for n in grown if n in classes for b in classes[n][1] if b in classes}
        if grown == models:
            break
        models = grown
    names: set[str] = set()
    for n in models:
        cls = classes[n][0]
        for node in ast.walk(cls):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node in cls.body:
                names.add(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node in cls.body:
                names.add(node.target.id)
            elif isinstance(node, ast.Assign) and node in cls.body:
                names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self" \
                    and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
    return {n for n in names if not n.startswith("__")}


def _probes(tree: ast.AST, mod: str, attributes: set[str]) -> list[str]:
    """``getattr`` / ``hasattr`` / ``setattr`` with a literal name that a model class defines, and any of them on a
    value named like a model (``model``, ``…_model``, ``saved``, ``fitted``): the contract asked by duck typing."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr", "setattr") and len(node.args) >= 2):
            continue
        owner, name = node.args[0], node.args[1]
        literal = name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else None
        owner_name = owner.id if isinstance(owner, ast.Name) else ""
        model_like = owner_name in ("model", "saved", "fitted", "recommender") or owner_name.endswith("_model")
        if literal is not None and (model_like or literal in attributes):
            found.append(f"{mod}:{node.lineno} {node.func.id}({ast.unparse(owner)}, {literal!r})")
    return sorted(found)


def model_probes() -> list[str]:
    attributes = _model_attribute_names()
    found = []
    for mod, path in MODULES.items():
        if not mod.startswith("anyrec.models"):
            found += _probes(ast.parse(path.read_text(encoding="utf-8")), mod, attributes)
    return found


def test_no_probe_of_a_model_outside_models() -> None:
    """Everything the outer layers ask of a model is declared on ``Recommender``: no getattr / setattr probes."""
    assert model_probes() == []


def test_the_probe_check_sees_a_probe() -> None:
    tree = ast.parse(
        "def f(model, other, cfg):\n    a = getattr(model, 'x', None)\n    b = getattr(other, 'tuning_grid', {})\n"
        "    setattr(model, 'progress', None)\n    c = getattr(cfg, 'path', None)\n"
    )
    assert _probes(tree, "m", {"tuning_grid", "progress"}) == [
        "m:2 getattr(model, 'x')", "m:3 getattr(other, 'tuning_grid')", "m:4 setattr(model, 'progress')"]

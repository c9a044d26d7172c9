"""The house rules, checked on the source (an AST read of every import, module-level and inside
functions): no import cycle, every import goes down the layers of docs/architecture.md, no
module over 400 lines, and the report never needs torch or a method to render a table."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "baselines")
MAX_LINES = 400

# Top to bottom, by folder; a module may import its own layer and the layers below it. The root
# of bench/ is the base: what a method author needs (configs, errors, metrics, the registry,
# the training loop), with the pipeline's and the methods' root modules named below.
LAYERS = [
    ("cli", ("bench.cli",)),
    ("run", ("bench.run",)),
    ("deploy", ("bench.deploy",)),
    ("report", ("bench.report",)),
    ("methods", ("bench.methods", "bench.differnet", "baselines")),
    ("pipeline", ("bench.features", "bench.training", "bench.registry")),
    ("data", ("bench.data",)),
    ("store", ("bench.store",)),
    ("base", ("bench",)),
]
MAX_ROOT_MODULES = 14  # bench/*.py: new rooms of other work go into folders
# The report reads records: it may use only the data, store and base layers (never a method,
# the feature pipeline or torch), so a results store renders anywhere.
REPORT_MAY_IMPORT = ("report", "data", "store", "base")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    best, index = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, index = len(prefix), i
    assert index is not None, f"{module} is in no layer: add it to LAYERS and docs/architecture.md"
    return index


def project_imports(path: Path, name: str) -> set[str]:
    """Project modules ``path`` imports anywhere in its code (resolved relative imports)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] in PACKAGES}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")]
    modules = {module_name(p): p for p in files}
    out = {}
    for name, path in modules.items():
        # "from bench.x import y" names y, which is a module only if it exists as one.
        out[name] = {m for m in project_imports(path, name) if m in modules and m != name}
    return out


def test_no_import_cycles(graph):
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_imports_go_down_the_layers(graph):
    wrong = []
    for module, imported in graph.items():
        mine = layer_of(module)
        for target in imported:
            theirs = layer_of(target)
            if LAYERS[mine][0] == "report":
                if LAYERS[theirs][0] not in REPORT_MAY_IMPORT:
                    wrong.append(f"{module} -> {target} (the report reads records only)")
            elif theirs < mine:
                wrong.append(f"{module} ({LAYERS[mine][0]}) -> {target} ({LAYERS[theirs][0]})")
    assert not wrong, "imports up the layers:\n" + "\n".join(sorted(wrong))


def test_no_module_over_400_lines():
    long = [(len(p.read_text().splitlines()), str(p.relative_to(REPO)))
            for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")]
    assert [x for x in long if x[0] > MAX_LINES] == []


def test_the_root_holds_what_a_method_author_needs():
    root = sorted(p.stem for p in (REPO / "bench").glob("*.py") if p.stem != "__init__")
    assert len(root) <= MAX_ROOT_MODULES, root


def test_report_imports_neither_torch_nor_a_method():
    code = ("import sys, bench.report, bench.report.summary; "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('baselines', "
            "'bench.differnet', 'bench.methods', 'bench.features'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"

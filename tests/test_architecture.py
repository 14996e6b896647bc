"""The code's shape: the data flows one way, so no module imports one that imports it back."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "ipyrecorder": ROOT / "ipyrecorder",
    "ipyrecorder.plugins": ROOT / "plugins",
    "ipyrecorder.viewers": ROOT / "viewers",
}


def modules() -> dict:
    """{module name: its source file} for every module of the package."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.glob("*.py"):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


def imports(name: str, path: Path, known) -> set:
    """The package's modules that ``name`` imports, at any depth of its code (lazy imports too)."""
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                out.add(candidate if candidate in known else base)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m in known and m != name}


def test_no_module_imports_one_that_imports_it_back():
    known = modules()
    graph = {name: imports(name, path, known) - {"ipyrecorder"} for name, path in known.items()}
    cycles = []

    def visit(name, trail):
        for dep in sorted(graph[name]):
            if dep in trail:
                cycles.append(trail[trail.index(dep) :] + [dep])
            elif len(trail) < 12:
                visit(dep, trail + [dep])

    for name in sorted(graph):
        visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles[:5])


def test_built_in_plugins_are_reached_only_through_the_registry():
    known = modules()
    plugins = {m for m in known if m.startswith(("ipyrecorder.plugins.", "ipyrecorder.viewers."))}
    for name, path in known.items():
        if name in plugins:
            continue
        reached = imports(name, path, known) & plugins
        assert not reached, f"{name} imports {sorted(reached)} directly instead of through its entry point"


def test_no_test_module_imports_another():
    """Shared test code lives in helpers.py (and fixtures in conftest.py), so each test module stands alone."""
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.level
                and (node.module or "").startswith(("test_", "conftest"))
            ):
                raise AssertionError(f"{path.name} imports .{node.module}: move what it shares to helpers.py")

"""The package's shape holds: packages import only the packages below them, no import cycle, no
module over 400 lines or class over 250 (the emulator's too), and the product never imports its
emulator."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tap_kore_billing"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path, *, typing_too: bool = False) -> set[str]:
    """Modules of the package imported when `path` runs (not under `if TYPE_CHECKING:`), or
    also for type checking."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if typing_too:
            break
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.startswith("tap_kore_billing")}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: {m for m in runtime_imports(p) if m in MODULES} for name, p in MODULES.items()}


# Each package of the tap and the packages it may import, lowest first: data flows one way.
MAY_IMPORT = {
    "core": set(),
    "client": {"core"},
    "run": {"core"},
    "state": {"core"},
    "sessions": {"core"},
    "summary": {"core", "client"},
    "apps": {"core", "client"},
    "streams": {"core", "client", "run", "state", "sessions", "summary", "apps"},
    "sandbox": set(),
    # The page of what the models found (kore-billing-report); the code location imports it.
    "report": {"core"},
}


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in MAY_IMPORT) else ""


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_a_package_imports_only_those_below_it(package):
    modules = [n for n in MODULES if package_of(n) == package]
    assert modules, f"no package {package}"
    offenders = {
        (name, imported)
        for name in modules
        for imported in runtime_imports(MODULES[name], typing_too=True)
        if package_of(imported) not in MAY_IMPORT[package] | {package}
    }
    assert not offenders, f"{package} imports above itself: {sorted(offenders)}"


def test_every_package_has_its_place():
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages - {"orchestration"} == set(MAY_IMPORT)
    for package in packages:
        doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))
        assert doc, f"{package}/__init__.py: say what it owns and what it may import"


def test_no_import_cycle():
    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(GRAPH[start])
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(GRAPH[name])
        return seen

    cycles = sorted(name for name in GRAPH if name in reach(name))
    assert not cycles, f"modules on an import cycle: {cycles}"


# The Dagster code location's local default runs against the demo account's emulator.
LOCAL_DEFAULT = "tap_kore_billing.orchestration.local_api"


def test_the_product_never_imports_its_emulator():
    product = [n for n in GRAPH if not n.startswith("tap_kore_billing.sandbox")]
    offenders = {
        n: GRAPH[n]
        for n in product
        if n != LOCAL_DEFAULT and any(".sandbox" in m for m in GRAPH[n])
    }
    assert not offenders


def test_the_tap_never_imports_the_orchestration():
    tap = [n for n in GRAPH if ".orchestration" not in n]
    offenders = {n: GRAPH[n] for n in tap if any(".orchestration" in m for m in GRAPH[n])}
    assert not offenders


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_and_classes_stay_small(name):
    text = MODULES[name].read_text()
    assert len(text.splitlines()) <= 400, f"{name}: split it by concern"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            assert size <= 250, f"{name}.{node.name} is {size} lines"

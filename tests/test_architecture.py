"""The layout's rules, checked on every test run (so in CI): the import-linter contracts in
pyproject.toml, no import cycles between modules, and no SQL in the domain."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_no_import_cycles() -> None:
    """Imports made only for type checking are not loops at run time; every other import counts,
    including those inside functions (a lazy import hides a loop, it does not remove it)."""
    graph = grimp.build_graph("bot", "storage", exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_the_domain_holds_no_sql() -> None:
    """Queries live in storage/queries by area; the domain asks through named functions."""
    offenders: dict[str, list[int]] = {}
    for path in sorted((ROOT / "bot" / "domain").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\bselect\(|session\.exec\(|session\.execute\(", line):
                offenders.setdefault(str(path.relative_to(ROOT)), []).append(number)
    assert offenders == {}


def test_no_module_reaches_into_another_modules_private_helpers() -> None:
    """What another module needs is public, with a name that says what it is (`Registry.model_row`,
    not `Registry._model`). Private modules of a package may be imported inside that package."""
    offenders: list[str] = []
    private_import = re.compile(r"^\s*from ((?:bot|storage)(?:\.\w+)*) import (.*)$")
    private_call = re.compile(r"\b(?:registry|deployments|services)\._[a-z]\w*\(")
    for path in sorted([*(ROOT / "bot").rglob("*.py"), *(ROOT / "storage").rglob("*.py")]):
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{path.relative_to(ROOT)}:{number}"
            if private_call.search(line):
                offenders.append(where)
            found = private_import.match(line)
            if found and found.group(1) != package and re.search(r"(^|[\s,(])_[a-z]", found.group(2)):
                offenders.append(where)
    assert offenders == []


SETTINGS = "bot/config/settings.py"


def test_environment_variables_are_read_in_the_settings_module() -> None:
    """One place reads the environment, so the README's table of variables can be complete."""
    readers = set()
    for path in sorted((ROOT / "bot").rglob("*.py")) + sorted((ROOT / "storage").rglob("*.py")):
        if re.search(r"\bos\.environ\b|\bos\.getenv\(|\bgetenv\(", path.read_text(encoding="utf-8")):
            readers.add(str(path.relative_to(ROOT)))
    assert readers == {SETTINGS}

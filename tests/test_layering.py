"""The import layering of docs/design.md, read from every module's imports.

numeric < values < envs < lm, measures < agents < records < manifest < scenarios < runs
< analysis, doctor < cli: a module may import its own package and the floors below it, never
one above, and no two packages import each other. Imports under ``if TYPE_CHECKING:`` are type
hints only and may point at a floor of the same height (measures name the ``Generation`` of
lm). The package's ``__init__`` (the public front door) may import anything.
"""

import ast
from pathlib import Path

import pytest

import valuegym

PACKAGE = Path(valuegym.__file__).parent

#: Height of each top-level part of valuegym; higher may import lower.
FLOORS = {
    "numeric": 0,
    "compiled": 0,
    "values": 1,
    "envs": 2,
    "lm": 3,
    "measures": 3,
    "agents": 4,
    "records": 5,
    "manifest": 5.5,
    "scenarios": 6,
    "runs": 6.5,
    "analysis": 7,
    "doctor": 7,
    "cli": 8,
}


def _part(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "valuegym" or len(parts) < 2:
        return None
    return parts[1]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """(imported module, only for type checking) for every import in the tree."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for grandchild in child.body:
                    visit_statement(grandchild, True)
                for grandchild in child.orelse:
                    visit_statement(grandchild, typing_only)
                continue
            visit_statement(child, typing_only)

    def visit_statement(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, typing_only) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, typing_only))
            # `from valuegym import records` imports the module valuegym.records
            if node.module == "valuegym":
                found.extend((f"valuegym.{alias.name}", typing_only) for alias in node.names)
        visit(node, typing_only)

    visit(tree, False)
    return found


def _modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if path != PACKAGE / "__init__.py")


def test_every_part_of_the_package_has_a_floor():
    parts = {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for path in _modules()}
    assert parts <= set(FLOORS), f"give these a floor in DESIGN.md: {parts - set(FLOORS)}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down(path: Path):
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for module, typing_only in _imports(tree):
        target = _part(module)
        if target is None or target == own or target not in FLOORS:
            continue
        higher = FLOORS[target] > FLOORS[own]
        sideways = FLOORS[target] == FLOORS[own]
        assert not higher, f"{path.relative_to(PACKAGE)} imports {module}, a floor above"
        assert not sideways or typing_only, (
            f"{path.relative_to(PACKAGE)} imports {module}, a package on its own floor"
        )


def test_the_checker_sees_an_upward_import_even_inside_a_function():
    tree = ast.parse("def f():\n    from valuegym.analysis import report\n")
    assert _imports(tree) == [("valuegym.analysis", False)]
    guarded = ast.parse("if TYPE_CHECKING:\n    from valuegym.lm.base import Generation\n")
    assert _imports(guarded) == [("valuegym.lm.base", True)]

"""The import layering of docs/design.md ("Architecture and floors"), read from the imports.

numeric < values < envs < lm, measures < agents < records < manifest < scenarios < runs
< analysis, doctor < cli: a module may import its own package and the floors below it, never
one above, and no two packages import each other. Imports under ``if TYPE_CHECKING:`` are type
hints only and may point at a floor of the same height (measures name the ``Generation`` of
lm). The package's ``__init__`` (the public front door) may import anything.

No module imports itself back, however far round: see :func:`test_no_import_circles`.
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


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_edges(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports, from every import statement.

    Every import counts: at module level, inside functions, under ``if TYPE_CHECKING:``.
    ``from a.b import c`` points at the module ``a.b.c`` when there is one, else at ``a.b``;
    a name that is no module points at the nearest module above it; relative imports are
    resolved against the importing module's package.

    Args:
        sources: Module name -> (its source, whether it is a package ``__init__``).
    """
    known = set(sources)

    def nearest(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {}
    for module, (source, is_package) in sources.items():
        package = module if is_package else module.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                targets.update(nearest(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    origin = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    origin = node.module or ""
                for alias in node.names:
                    submodule = f"{origin}.{alias.name}"
                    targets.add(submodule if submodule in known else nearest(origin))
        edges[module] = {target for target in targets if target and target != module}
    return edges


def _circles(edges: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Every import circle a depth-first walk meets, each starting at its smallest module."""
    circles: set[tuple[str, ...]] = set()
    done: set[str] = set()

    def walk(module: str, path: list[str]) -> None:
        path.append(module)
        for target in sorted(edges.get(module, ())):
            if target in path:
                circle = path[path.index(target) :]
                first = circle.index(min(circle))
                circles.add(tuple(circle[first:] + circle[:first]))
            elif target not in done:
                walk(target, path)
        path.pop()
        done.add(module)

    for module in sorted(edges):
        if module not in done:
            walk(module, [])
    return sorted(circles)


def _modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if path != PACKAGE / "__init__.py")


def test_every_part_of_the_package_has_a_floor():
    parts = {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for path in _modules()}
    assert parts <= set(FLOORS), (
        f'give these a floor (docs/design.md, "Architecture and floors"): {parts - set(FLOORS)}'
    )


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


def test_no_import_circles():
    """No module of valuegym imports itself back, through however many others.

    A circle means two modules own one thing between them; it is fixed by giving the thing one
    owner, not by moving an import into a function or under ``TYPE_CHECKING`` (both count
    here: they still say each module needs the other).

    Importing ``valuegym.x.y`` runs ``valuegym/x/__init__.py`` first, but that is not counted
    as an edge to the package: a package ``__init__`` importing its submodules (the front
    door re-exporting what lives behind it) would otherwise close a circle with each of
    them. The ``__init__`` is a module like any other when it is named: a submodule writing
    ``from valuegym.x import Thing`` (a name the ``__init__`` re-exports) does close a
    circle with an ``__init__`` that imports that submodule, and is reported.
    """
    sources = {
        _module_name(path): (path.read_text(encoding="utf-8"), path.name == "__init__.py")
        for path in sorted(PACKAGE.rglob("*.py"))
    }
    circles = _circles(_import_edges(sources))
    assert not circles, "import circles: " + "; ".join(" -> ".join((*c, c[0])) for c in circles)


def test_the_circle_finder_sees_imports_in_functions_and_for_type_checking():
    package = "valuegym.p"

    def circles(a: str, b: str) -> list[tuple[str, ...]]:
        sources = {package: ("", True), f"{package}.a": (a, False), f"{package}.b": (b, False)}
        return _circles(_import_edges(sources))

    in_function = "def f():\n    from valuegym.p.a import thing\n"
    assert circles("from valuegym.p import b\n", in_function) == [("valuegym.p.a", "valuegym.p.b")]
    type_checking = "if TYPE_CHECKING:\n    from .a import Thing\n"
    assert circles("import valuegym.p.b\n", type_checking) == [("valuegym.p.a", "valuegym.p.b")]
    assert circles("from valuegym.p.b import thing\n", "x = 1\n") == []


def test_a_package_init_closes_a_circle_only_when_named():
    def circles(submodule: str) -> list[tuple[str, ...]]:
        front_door = "from valuegym.p.a import thing\n"
        return _circles(
            _import_edges({"valuegym.p": (front_door, True), "valuegym.p.a": (submodule, False)})
        )

    assert circles("import valuegym.p.a\n") == []
    assert circles("from valuegym.p import other\n") == [("valuegym.p", "valuegym.p.a")]


#: The most lines a module may have; a longer one holds more than one job (split it by job).
MAX_MODULE_LINES = 500


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_500_lines(path: Path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines"

"""The modules of valuegym.lm import each other without circles.

Every import counts, including those under ``if TYPE_CHECKING:`` and inside functions: a
circle there still means two modules that cannot be read, or moved, one without the other.
"""

import ast
from pathlib import Path

import valuegym.lm

PACKAGE = Path(valuegym.lm.__file__).parent


def _module_name(path: Path) -> str:
    return "valuegym.lm" if path.stem == "__init__" else f"valuegym.lm.{path.stem}"


def _lm_imports(path: Path) -> set[str]:
    """The valuegym.lm modules a file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "valuegym.lm":
            for alias in node.names:
                is_module = (PACKAGE / f"{alias.name}.py").exists()
                found.add(f"valuegym.lm.{alias.name}" if is_module else "valuegym.lm")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("valuegym.lm."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("valuegym.lm"))
    return found - {_module_name(path)}


def test_no_module_of_lm_imports_itself_through_others():
    graph = {_module_name(path): _lm_imports(path) for path in PACKAGE.glob("*.py")}
    for start, imported in graph.items():
        seen: set[str] = set()
        frontier = list(imported)
        while frontier:
            module = frontier.pop()
            assert module != start, f"{start} imports itself through {sorted(seen)}"
            if module not in seen:
                seen.add(module)
                frontier.extend(graph.get(module, ()))

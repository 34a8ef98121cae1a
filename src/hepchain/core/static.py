"""Constants read from a module's source without importing it, so listings (``hepchain list``,
the help of ``hepchain generate``) do not load every study's heavy dependencies.

Only literals are read (strings, numbers, tuples, lists, dicts, ...), and names bound to such
literals at module level earlier in the file; anything computed raises ``LookupError`` and the
caller imports the module instead.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Any


class _Substitute(ast.NodeTransformer):
    """Replace names of known module constants by their values."""

    def __init__(self, constants: dict[str, Any]) -> None:
        self.constants = constants

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.constants:
            return ast.copy_location(ast.Constant(self.constants[node.id]), node)
        return node


def _assigned(node: ast.stmt) -> tuple[str, ast.expr] | None:
    """``(name, value)`` of a simple ``name = value`` or ``name: T = value`` statement."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        target = node.target
    else:
        return None
    return (target.id, node.value) if isinstance(target, ast.Name) else None


def _literal(value: ast.expr, constants: dict[str, Any]) -> Any:
    """The value of a literal expression (names of known constants substituted)."""
    try:
        return ast.literal_eval(_Substitute(constants).visit(value))
    except (ValueError, TypeError, SyntaxError) as exc:
        raise LookupError("not a literal") from exc


def static_value(module: str, name: str, owner: str | None = None) -> Any:
    """The literal value of ``name`` in ``module``: a module-level constant, or with ``owner``
    a class attribute of the class of that name defined at module level.

    Raises ``LookupError`` when the module has no Python source, or the name is not assigned
    there as a literal (computed, inherited, or absent). Importing the module's parent
    packages is the only import done.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise LookupError(f"no Python source for module {module!r}")
    tree = ast.parse(Path(spec.origin).read_text(), filename=spec.origin)
    constants: dict[str, Any] = {}
    for node in tree.body:
        if owner and isinstance(node, ast.ClassDef) and node.name == owner:
            for statement in node.body:
                assigned = _assigned(statement)
                if assigned is not None and assigned[0] == name:
                    return _literal(assigned[1], constants)
            break
        assigned = _assigned(node)
        if assigned is None:
            continue
        if not owner and assigned[0] == name:
            return _literal(assigned[1], constants)
        try:
            constants[assigned[0]] = _literal(assigned[1], constants)
        except LookupError:
            constants.pop(assigned[0], None)
    where = f"{owner}." if owner else ""
    raise LookupError(f"{module} assigns no literal {where}{name}")

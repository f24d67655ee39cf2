"""What pyproject.toml declares is what the package needs (the lowest versions themselves run
in CI, in a second environment: see .ci/run)."""

from __future__ import annotations

import ast
from pathlib import Path
import re
import subprocess
import sys
import tomllib


_ROOT = Path(__file__).resolve().parent.parent
# Distribution names of the modules imported.
_DISTRIBUTION = {"sklearn": "scikit-learn"}


def _declared() -> dict[str, str]:
    with open(_ROOT / "pyproject.toml", "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    out = {}
    for dep in deps:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", dep.replace(" ", ""))
        assert match, f"{dep!r}: a minimum version (name>=X) is what CI installs and tests"
        out[match.group(1)] = match.group(2)
    return out


class _ModuleLevelImports(ast.NodeVisitor):
    """Top-level module names imported outside functions and ``TYPE_CHECKING`` blocks: those a
    plain import needs. (The benchmark and the plots import their optional helpers, matplotlib,
    plotly, tqdm, pandas, inside functions.)"""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        pass

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        pass

    def visit_If(self, node: ast.If) -> None:
        # `if TYPE_CHECKING:` imports are for the type checker; a plain import never runs them.
        test = node.test
        name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
        if name != "TYPE_CHECKING":
            self.generic_visit(node)
        else:
            for child in node.orelse:
                self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        self.names |= {a.name.split(".")[0] for a in node.names}

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self.names.add(node.module.split(".")[0])


def _third_party_imports() -> set[str]:
    visitor = _ModuleLevelImports()
    for path in (_ROOT / "optuna_srp").rglob("*.py"):
        visitor.visit(ast.parse(path.read_text()))
    return {n for n in visitor.names if n not in sys.stdlib_module_names and n != "optuna_srp"}


def test_every_imported_package_is_declared_with_a_minimum() -> None:
    # scipy is imported directly (scipy.special.stdtr) and had not been declared.
    needed = {_DISTRIBUTION.get(n, n) for n in _third_party_imports()}
    assert needed <= _declared().keys()


def test_imports_on_optuna_before_update_finished_trial_error() -> None:
    # Optuna added UpdateFinishedTrialError in 4.3; 4.0 to 4.2 raise the RuntimeError it
    # subclasses. Importing it unconditionally had broken `import optuna_srp` there.
    code = (
        "import optuna.exceptions\n"
        "if hasattr(optuna.exceptions, 'UpdateFinishedTrialError'):\n"
        "    del optuna.exceptions.UpdateFinishedTrialError\n"
        "from optuna_srp import _pruner\n"
        "assert _pruner._UpdateFinishedTrialError is RuntimeError\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=_ROOT, check=True)

"""The domain stays pure (no ORM, no I/O imports) and strictly typed."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"sqlalchemy", "psycopg", "alembic", "fastapi", "requests", "httpx", "socket",
             "subprocess", "os"}


def test_domain_imports_no_orm_and_no_io() -> None:
    for path in (ROOT / "engine" / "domain").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_domain_passes_mypy_strict() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "engine/domain"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


LAYERS = ("engine", "slo", "alerts", "dashboard")  # each may import only those before it


def test_dependencies_point_one_way() -> None:
    for rank, package in enumerate(LAYERS):
        later = set(LAYERS[rank + 1:])
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                for name in names:
                    assert name.split(".")[0] not in later, \
                        f"{path.relative_to(ROOT)} imports {name}: {package} may not depend on it"

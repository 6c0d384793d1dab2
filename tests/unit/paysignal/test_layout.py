"""The layout holds: a pure domain, dependencies one way, the wiring package imported by nobody,
no test rigs in the installed packages, and lint and strict types in the test command."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
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


def test_the_test_command_runs_ruff_and_strict_mypy_over_every_package() -> None:
    import tomllib

    run = (ROOT / "tests" / "run.sh").read_text()
    assert ".venv/bin/ruff check ." in run and ".venv/bin/python -m mypy" in run
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert config["mypy"]["strict"] is True
    assert set(config["mypy"]["packages"]) == {*LAYERS, "paysignal"}
    assert {"F", "E", "W", "I", "B", "UP", "SIM"} <= set(config["ruff"]["lint"]["select"])


LAYERS = ("engine", "slo", "alerts", "dashboard")  # each may import only those before it
INSTALLED = (*LAYERS, "paysignal")
TEST_ONLY = {"pytest", "selenium", "hypothesis", "tests"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module or "")
    return names


@pytest.mark.slow
def test_installed_packages_carry_no_test_rigs() -> None:
    for package in INSTALLED:
        for path in (ROOT / package).rglob("*.py"):
            for name in _imports(path):
                assert name.split(".")[0] not in TEST_ONLY, \
                    f"{path.relative_to(ROOT)} imports {name}: test rigs live in tests/support"


def test_only_the_wiring_package_imports_it() -> None:
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            assert not [n for n in _imports(path) if n.split(".")[0] == "paysignal"], \
                f"{path.relative_to(ROOT)} imports the wiring package"


def test_the_console_script_is_the_only_entry_point() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"paysignal": "paysignal.cli:main"}
    assert "entry-points" not in project


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


def test_no_docstring_or_comment_promises_later_work() -> None:
    for package in INSTALLED:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text().lower()
            assert "later issue" not in text and "(next)" not in text, path.relative_to(ROOT)


def test_the_public_testing_surface_is_small_and_sorted() -> None:
    import engine.testing

    assert engine.testing.__all__ == sorted(engine.testing.__all__)
    assert len(engine.testing.__all__) <= 10
    for name in engine.testing.__all__:
        assert hasattr(engine.testing, name)


def _constructions(path: Path, name: str) -> list[int]:
    """Lines where `path` calls `name(...)` (by that name or as an attribute)."""
    tree = ast.parse(path.read_text())
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Name) and node.func.id == name)
        or (isinstance(node.func, ast.Attribute) and node.func.attr == name))]


def test_every_process_and_rig_builds_the_service_and_its_retries_through_the_bootstrap() -> None:
    """One function puts the payment service together: a process or rig that builds its own
    would run without the retry budget, or with another jitter, than production."""
    # the bootstrap, and the retry policy's own unit tests
    allowed = {ROOT / "paysignal" / "bootstrap.py", ROOT / "tests/unit/engine/test_retry.py"}
    for folder in (*INSTALLED, "tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            if path in allowed:
                continue
            for name in ("PaymentService", "RetryPolicy", "RetryBudget"):
                assert not _constructions(path, name), \
                    f"{path.relative_to(ROOT)} builds {name} itself: use paysignal.bootstrap"

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


def test_the_test_command_runs_ruff_and_mypy_over_every_package_and_the_tests() -> None:
    import tomllib

    run = (ROOT / "tests" / "run.sh").read_text()
    assert ".venv/bin/ruff check ." in run and ".venv/bin/python -m mypy" in run
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert config["mypy"]["strict"] is True
    assert set(config["mypy"]["packages"]) == {*LAYERS, "paysignal", "tests", "bench"}
    # the tests are checked with relaxed settings: unannotated, but every body is checked
    [relaxed] = [o for o in config["mypy"]["overrides"] if "tests.*" in o["module"]]
    assert relaxed["module"] == ["tests.*"] and relaxed["check_untyped_defs"] is True
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


# engine's subpackages (and top-level modules), lowest first: each may import only those before
# it. The sandbox sits apart (see below); engine.testing and engine.api are the top.
ENGINE_ORDER = ("exceptions", "environment", "domain", "files", "exports", "providers",
                "observability", "storage", "payments", "settlement", "read_models", "outbox",
                "scheduling", "secrets", "api", "testing")
SANDBOX = ("providers", "sandbox")


def _engine_unit(path: Path) -> str:
    parts = path.relative_to(ROOT / "engine").parts
    if parts[:2] == SANDBOX and len(parts) > 2:
        return "providers.sandbox"
    return parts[0].removesuffix(".py") if len(parts) == 1 else parts[0]


def _engine_imports(path: Path) -> set[str]:
    found = set()
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] != "engine" or len(parts) < 2:
            continue
        found.add("providers.sandbox" if tuple(parts[1:3]) == SANDBOX else parts[1])
    return found


def test_engine_subpackages_import_only_those_below_them() -> None:
    """The direction is written once (ENGINE_ORDER): a new import against it, which would make
    a cycle, fails here. The sandbox may import the providers it emulates; of the rest, only
    engine.testing may import the sandbox (nothing in the payment path does)."""
    rank = {name: i for i, name in enumerate(ENGINE_ORDER)}
    for path in (ROOT / "engine").rglob("*.py"):
        unit = _engine_unit(path)
        if unit == "__init__" or "migrations" in path.parts:
            continue
        for target in _engine_imports(path) - {unit}:
            where = path.relative_to(ROOT)
            if target == "providers.sandbox":
                assert unit == "testing", f"{where} imports the sandbox: the payment path may not"
            elif unit == "providers.sandbox":
                assert rank[target] <= rank["providers"], f"{where} imports engine.{target}"
            else:
                assert unit in rank and target in rank, f"{where}: {unit} or {target} unplaced"
                assert rank[target] < rank[unit], (
                    f"{where} imports engine.{target}: {unit} may import only "
                    f"{', '.join(ENGINE_ORDER[:rank[unit]])}")


PROVIDER_NAMES = ("stripe", "adyen", "paypal")


def _code_words(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every identifier and string in a module's code: docstrings and
    comments may speak of providers, the code may not."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    words: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            words.append((node.lineno, node.value))
        elif isinstance(node, ast.Name):
            words.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            words.append((node.lineno, node.attr))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            words += [(node.lineno, a.name) for a in node.names]
            if isinstance(node, ast.ImportFrom) and node.module:
                words.append((node.lineno, node.module))
    return words


def test_no_module_outside_the_providers_names_a_provider() -> None:
    """One package per provider: nothing else in the engine knows its vocabulary."""
    for path in (ROOT / "engine").rglob("*.py"):
        if (ROOT / "engine" / "providers") in path.parents:
            continue
        for line, word in _code_words(path):
            named = [p for p in PROVIDER_NAMES if p in word.lower()]
            assert not named, f"{path.relative_to(ROOT)}:{line} names {named[0]}: {word!r}"


def test_providers_are_packages_of_small_modules_with_one_registry_line_each() -> None:
    from engine.providers import registry
    from engine.providers.sandbox import registry as sandbox_registry

    for path in (ROOT / "engine" / "providers").rglob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= 400, f"{path.relative_to(ROOT)} has {lines} lines (at most 400)"
    packages = {p.parent.name for p in (ROOT / "engine" / "providers").glob("*/__init__.py")}
    assert packages - {"sandbox"} == set(registry.PROVIDERS) == set(sandbox_registry.SANDBOXED)
    for name in registry.PROVIDERS:
        modules = {p.stem for p in (ROOT / "engine" / "providers" / name).glob("*.py")}
        assert {"config", "connector", "notices", "reports"} <= modules, name

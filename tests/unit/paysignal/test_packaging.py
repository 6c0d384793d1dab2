"""Packaging: the production image installs only the runtime lock, the locks carry hashes and
agree with pyproject.toml, and no test tool is in the runtime lock."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _locked(lock: str) -> dict[str, str]:
    text = (ROOT / "requirements" / lock).read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", text, re.M))
    assert pins, lock
    # every pin carries at least one hash (pip install --require-hashes checks them)
    blocks = re.split(r"^(?=[A-Za-z0-9._-]+==)", text, flags=re.M)[1:]
    assert all("--hash=sha256:" in block for block in blocks), lock
    return {name.lower().replace("_", "-"): version for name, version in pins.items()}


def test_the_runtime_lock_holds_no_test_tool() -> None:
    runtime = _locked("runtime.lock")
    test_tools = {_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]}
    runtime_needs = {_name(r) for r in PYPROJECT["project"]["dependencies"]} | {
        _name(r) for r in PYPROJECT["project"]["optional-dependencies"]["kafka"]}
    leaked = (test_tools - runtime_needs) & set(runtime)
    assert not leaked, f"test tools in the runtime lock: {sorted(leaked)}"
    for tool in ("pytest", "mypy", "ruff", "selenium", "schemathesis", "hypothesis"):
        assert tool not in runtime


def test_the_locks_cover_pyproject_and_agree_with_each_other() -> None:
    runtime, test = _locked("runtime.lock"), _locked("test.lock")
    for requirement in [*PYPROJECT["project"]["dependencies"],
                        *PYPROJECT["project"]["optional-dependencies"]["kafka"]]:
        assert _name(requirement) in runtime, requirement
    for requirement in PYPROJECT["project"]["optional-dependencies"]["test"]:
        assert _name(requirement) in test, requirement
    assert {n: v for n, v in test.items() if n in runtime} == runtime  # same versions


def test_the_image_installs_the_runtime_lock_and_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"-r (\S+)", dockerfile)
    assert installs == ["requirements/runtime.lock"]
    assert "--require-hashes" in dockerfile
    for package in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]:
        name = package.rstrip("*")
        assert f"COPY {name} ./{name}" in dockerfile, f"the image lacks the {name} package"
    run = (ROOT / "tests" / "run.sh").read_text()
    assert "--require-hashes -r requirements/test.lock" in run

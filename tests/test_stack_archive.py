"""Archive: the function zip is the runtime ``pipeline/`` package, without tests or caches."""

from __future__ import annotations

from pathlib import Path

import pytest
from pulumi_mocks import Deployment, deploy

from pipeline.spec import build_spec
from stack.archive import PIPELINE_DIR, function_archive, runtime_files


@pytest.fixture(scope="module")
def tuned() -> Deployment:
    return deploy()


def _handler_module(handler: str) -> str:
    return handler.rsplit(".", 1)[0].replace(".", "/") + ".py"


def test_archive_holds_every_handler_module() -> None:
    names = set(function_archive().assets)
    handlers = {_handler_module(fn.handler) for fn in build_spec().functions}
    assert handlers == {"pipeline/collector.py", "pipeline/reporter.py", "pipeline/verifier.py"}, handlers
    assert handlers <= names, f"function archive lacks handler modules {sorted(handlers - names)}"


def test_archive_is_exactly_the_runtime_python_files() -> None:
    names = set(function_archive().assets)
    on_disk = {p.relative_to(PIPELINE_DIR.parent).as_posix() for p in PIPELINE_DIR.rglob("*.py")}
    runtime = {n for n in on_disk if "__pycache__" not in n and "/tests/" not in n}
    assert names == runtime, f"archive differs from pipeline/*.py: extra {names - runtime}, missing {runtime - names}"
    assert all(n.startswith("pipeline/") and n.endswith(".py") for n in names), sorted(names)


def test_archive_leaves_out_tests_and_caches(tmp_path: Path) -> None:
    package = tmp_path / "pipeline"
    for relative in (
        "__init__.py",
        "handler.py",
        "__pycache__/handler.cpython-312.pyc",
        "__pycache__/x.py",
        "tests/test_handler.py",
        "test_local.py",
        "conftest.py",
        "notes.txt",
    ):
        (package / relative).parent.mkdir(parents=True, exist_ok=True)
        (package / relative).write_text("")
    assert sorted(runtime_files(package)) == ["pipeline/__init__.py", "pipeline/handler.py"]


def test_every_function_ships_the_same_archive(tuned: Deployment) -> None:
    expected = sorted(function_archive().assets)
    for key in ("collector", "reporter", "verifier"):
        function = tuned.function(key)
        assert sorted(function.state["code"].assets) == expected, f"{function.urn} code archive"

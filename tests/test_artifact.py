"""The Lambda artifact: one lock, reproducible zips, and handlers that import from the artifact alone.

GIVEN the lock (or an older pin) WHEN the artifact is built THEN its bytes, its package
versions and what its handlers can import are exactly what Lambda would get.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from artifact import DEFAULT_LOCK, Artifact, LockError, build_artifact, read_lock
from artifact.build import REPO_ROOT, runtime_files
from artifact.lockfile import normalize
from pipeline.spec import build_spec

OLD_POWERTOOLS_LOCK = Path(__file__).parent / "fixtures" / "powertools-3.29.0.lock"
LAMBDA_PACKAGES = ("aws-lambda-powertools", "boto3", "botocore")


@pytest.fixture(scope="module")
def artifact() -> Artifact:
    return build_artifact()


def _locked() -> dict[str, str]:
    return {normalize(p.name): p.version for p in read_lock(DEFAULT_LOCK)}


def test_lock_pins_what_the_handlers_import_with_hashes() -> None:
    packages = {normalize(p.name): p for p in read_lock(DEFAULT_LOCK)}
    for name in LAMBDA_PACKAGES:
        assert normalize(name) in packages, f"{DEFAULT_LOCK} must pin {name}"
    assert all(p.hashes for p in packages.values()), "every locked package needs a sha256 hash"


def test_pyproject_pins_the_lambda_packages_to_the_lock() -> None:
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    locked, pinned = _locked(), {}
    for requirement in dependencies:
        name, sep, version = requirement.partition("==")
        if normalize(name.split("[")[0].split(">")[0].split("<")[0]) in locked:
            assert sep, f"pyproject.toml: {requirement!r} must be pinned with == to the lock's version"
            pinned[normalize(name)] = version
    for name in LAMBDA_PACKAGES:
        assert pinned.get(normalize(name)) == locked[normalize(name)], (
            f"pyproject.toml pins {name}=={pinned.get(normalize(name))}; lambda/requirements.lock has "
            f"{locked[normalize(name)]}"
        )


def test_the_development_venv_runs_the_locked_versions() -> None:
    locked = _locked()
    for name in LAMBDA_PACKAGES:
        assert importlib.metadata.version(name) == locked[normalize(name)], f"{name} in this venv differs from the lock"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("boto3>=1.36 \\\n    --hash=sha256:" + "a" * 64 + "\n", "lock:1: 'boto3>=1.36' is not pinned"),
        ("six==1.17.0\n# comment\nboto3==1.44.8\n", "lock:1: six has no --hash"),
        ("six==1.17.0 \\\n    --hash=md5:abc\n", "lock:1: '--hash=md5:abc' is not a --hash=sha256"),
        ("", "lock: the lock lists no packages"),
    ],
)
def test_a_bad_lock_names_its_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    lock = tmp_path / "lock"
    lock.write_text(text)
    with pytest.raises(LockError) as caught:
        read_lock(lock)
    assert message in str(caught.value)


def test_the_build_is_reproducible_and_keyed_by_its_inputs(artifact: Artifact, tmp_path: Path) -> None:
    again = build_artifact(build_root=tmp_path / "elsewhere")
    assert again.directory != artifact.directory
    assert again.function_zip.read_bytes() == artifact.function_zip.read_bytes(), "function.zip differs between builds"
    assert again.layer_zip.read_bytes() == artifact.layer_zip.read_bytes(), "layer.zip differs between builds"
    assert again.sha256 == artifact.sha256

    package = tmp_path / "src" / "pipeline"
    package.mkdir(parents=True)
    for name, path in runtime_files().items():
        (package.parent / name).write_bytes(path.read_bytes())
    (package / "reporter.py").write_text((package / "reporter.py").read_text() + "\n# changed\n")
    changed = build_artifact(package_dir=package, build_root=tmp_path / "changed")
    assert changed.function_sha256 != artifact.function_sha256, "a changed module must change the function zip"
    assert changed.layer_sha256 == artifact.layer_sha256, "the layer depends on the lock only"


def test_function_zip_holds_exactly_the_runtime_modules(artifact: Artifact) -> None:
    with zipfile.ZipFile(artifact.function_zip) as zf:
        names = set(zf.namelist())
    assert names == set(runtime_files()), (
        f"extra {names - set(runtime_files())}, missing {set(runtime_files()) - names}"
    )
    handlers = {fn.handler.rsplit(".", 1)[0].replace(".", "/") + ".py" for fn in build_spec().functions}
    assert handlers <= names, f"function zip lacks handler modules {sorted(handlers - names)}"


def test_runtime_files_leave_out_tests_and_caches(tmp_path: Path) -> None:
    package = tmp_path / "pipeline"
    for relative in ("__init__.py", "handler.py", "__pycache__/x.py", "tests/test_handler.py", "test_local.py"):
        (package / relative).parent.mkdir(parents=True, exist_ok=True)
        (package / relative).write_text("")
    assert sorted(runtime_files(package)) == ["pipeline/__init__.py", "pipeline/handler.py"]


def test_layer_package_versions_equal_the_lock(artifact: Artifact) -> None:
    shipped = {}
    with zipfile.ZipFile(artifact.layer_zip) as zf:
        for name in zf.namelist():
            if name.startswith("python/") and name.endswith(".dist-info/METADATA"):
                headers = dict(line.split(": ", 1) for line in zf.read(name).decode().splitlines()[:10] if ": " in line)
                shipped[normalize(headers["Name"])] = headers["Version"]
    assert shipped == _locked(), "the layer's installed packages must be exactly the lock's"
    assert artifact.versions["aws-lambda-powertools"] == _locked()["aws_lambda_powertools"]


def _import_from(artifact: Artifact, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter whose path is the standard library plus the artifact, as on Lambda."""
    task, opt = artifact.unpacked()
    prelude = f"import sys; sys.path[:0] = [{str(task)!r}, {str(opt / 'python')!r}]\n"
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", prelude + code], capture_output=True, text=True, timeout=120, check=False
    )


def test_every_handler_imports_from_the_artifact_alone(artifact: Artifact) -> None:
    imports = "; ".join(f"import {fn.handler.rsplit('.', 1)[0]}" for fn in build_spec().functions)
    done = _import_from(artifact, imports + "\nimport aws_lambda_powertools, boto3; print(boto3.__file__)")
    assert done.returncode == 0, done.stderr
    assert str(artifact.directory) in done.stdout, f"boto3 must come from the layer, came from {done.stdout}"
    venv_only = _import_from(artifact, "import pandas")
    assert "ModuleNotFoundError" in venv_only.stderr, "the development venv must not be on the function's path"


def test_an_older_powertools_pin_breaks_the_reporter_import_only() -> None:
    old = build_artifact(OLD_POWERTOOLS_LOCK)
    assert old.versions["aws-lambda-powertools"] == "3.29.0"
    reporter = _import_from(old, "import pipeline.reporter")
    assert reporter.returncode != 0
    # The Logger logs an uncaught exception as a JSON line on stdout (log_uncaught_exceptions), so look at both.
    output = reporter.stdout + reporter.stderr
    assert "unexpected keyword argument 'logger'" in output, output[-1500:]
    others = _import_from(old, "import pipeline.collector, pipeline.verifier")
    assert others.returncode == 0, others.stderr

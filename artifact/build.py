"""Build the function archive and its dependency layer, byte for byte reproducibly.

- ``function.zip`` holds the ``pipeline/`` package exactly as it runs (no tests, no caches).
- ``layer.zip`` holds, under ``python/``, the wheels that the lock names, each checked
  against the lock's sha256 hashes, unpacked as Lambda's ``/opt/python``.

Zip entries are sorted and carry a fixed timestamp and mode. ``function.zip`` is stored
uncompressed, so its bytes depend on the sources alone, on any machine. ``layer.zip`` is
deflated (stored, botocore alone would take it near Lambda's 50 MB upload limit), so its
bytes are the same for the same lock on the same zlib; deploy from one machine image (CI)
to keep its hash, and so the layer version, unchanged. Builds are cached under ``build/lambda/<key>``,
where the key hashes every input; a new pin or a changed module gives a new artifact.

Environment variables: ``CIDB_BUILD_DIR`` (default ``<repo>/build/lambda``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from artifact.lockfile import LockedPackage, read_lock
from pipeline.spec import ARCHITECTURE, RUNTIME

REPO_ROOT = Path(__file__).resolve().parent.parent
PIPELINE_DIR = REPO_ROOT / "pipeline"
DEFAULT_LOCK = REPO_ROOT / "lambda" / "requirements.lock"
PYTHON_VERSION = RUNTIME.removeprefix("python")
PIP_PLATFORM = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}[ARCHITECTURE]
BUILD_FORMAT = 2  # bump when the layout of the archives changes
KEEP_BUILDS = 4  # older artifacts in the cache are removed after a new build
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_EXCLUDED_DIRS = frozenset({"__pycache__", "tests", "test"})


class ArtifactError(RuntimeError):
    """The artifact cannot be built; the message says what to fix."""


@dataclass(frozen=True)
class Artifact:
    directory: Path
    lock: str
    sha256: str
    function_sha256: str
    layer_sha256: str
    function_bytes: int
    layer_bytes: int
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def function_zip(self) -> Path:
        return self.directory / "function.zip"

    @property
    def layer_zip(self) -> Path:
        return self.directory / "layer.zip"

    def describe(self) -> dict[str, object]:
        """What the summary and the report print about the code that ran."""
        return {
            "sha256": self.sha256,
            "function_zip_bytes": self.function_bytes,
            "layer_zip_bytes": self.layer_bytes,
            "lock": self.lock,
            "aws_lambda_powertools": self.versions.get("aws-lambda-powertools"),
            "boto3": self.versions.get("boto3"),
            "botocore": self.versions.get("botocore"),
        }

    def unpacked(self) -> tuple[Path, Path]:
        """(task root, opt root): the two zips extracted as Lambda lays them out (/var/task, /opt)."""
        target = self.directory / "unpacked"
        if not target.is_dir():
            staging = Path(tempfile.mkdtemp(dir=self.directory, prefix=".unpack-"))
            with zipfile.ZipFile(self.function_zip) as zf:
                zf.extractall(staging / "task")
            with zipfile.ZipFile(self.layer_zip) as zf:
                zf.extractall(staging / "opt")
            try:
                staging.rename(target)
            except OSError:  # another process unpacked it first
                shutil.rmtree(staging, ignore_errors=True)
        return target / "task", target / "opt"


def runtime_files(package_dir: Path = PIPELINE_DIR) -> dict[str, Path]:
    """Archive path (``pipeline/x.py``) -> file, for every runtime module: no tests, no caches."""
    root = package_dir.parent
    files: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        relative = path.relative_to(root)
        if _EXCLUDED_DIRS.intersection(relative.parts) or path.name.startswith("test_") or path.name == "conftest.py":
            continue
        files[relative.as_posix()] = path
    return files


def default_build_root() -> Path:
    return Path(os.environ.get("CIDB_BUILD_DIR") or REPO_ROOT / "build" / "lambda")


def build_artifact(
    lock: Path = DEFAULT_LOCK,
    package_dir: Path = PIPELINE_DIR,
    build_root: Path | None = None,
    wheelhouse: Path | None = None,
) -> Artifact:
    """The artifact for ``lock`` and ``package_dir``, built now or taken from the cache."""
    root = build_root or default_build_root()
    packages = read_lock(lock)
    sources = runtime_files(package_dir)
    if not sources:
        raise ArtifactError(f"no Python modules under {package_dir}: the function archive would be empty")
    key = _input_key(lock, sources)
    directory = root / key
    manifest = directory / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        return Artifact(directory=directory, **data)
    wheels = _ensure_wheels(packages, lock, wheelhouse or default_build_root() / "wheels")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".build-"))
    staging.chmod(0o755)
    function_sha = _write_zip(
        staging / "function.zip", ((name, path.read_bytes()) for name, path in sources.items()), compress=False
    )
    layer_sha = _write_zip(staging / "layer.zip", _layer_entries(wheels), compress=True)
    artifact = Artifact(
        directory=directory,
        lock=lock.name,
        sha256=hashlib.sha256(f"{function_sha}:{layer_sha}".encode()).hexdigest(),
        function_sha256=function_sha,
        layer_sha256=layer_sha,
        function_bytes=(staging / "function.zip").stat().st_size,
        layer_bytes=(staging / "layer.zip").stat().st_size,
        versions={p.name: p.version for p in packages},
    )
    fields = {k: v for k, v in asdict(artifact).items() if k != "directory"}
    (staging / "manifest.json").write_text(json.dumps(fields, indent=2, sort_keys=True))
    try:
        staging.rename(directory)
    except OSError:  # built concurrently by another process: same inputs, same bytes
        shutil.rmtree(staging, ignore_errors=True)
    _prune(root, keep=directory)
    return artifact


def _prune(root: Path, keep: Path) -> None:
    """Drop all but the newest builds, so that every edit of pipeline/ does not leave 60 MB behind."""
    builds = sorted(
        (d for d in root.iterdir() if (d / "manifest.json").is_file() and d != keep),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    for old in builds[KEEP_BUILDS - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


def _input_key(lock: Path, sources: dict[str, Path]) -> str:
    digest = hashlib.sha256(f"format {BUILD_FORMAT} {RUNTIME} {ARCHITECTURE}\n".encode())
    digest.update(lock.read_bytes())
    for name, path in sources.items():
        digest.update(f"\n{name}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _find_wheel(package: LockedPackage, wheelhouse: Path) -> Path | None:
    for candidate in sorted(wheelhouse.glob(f"{package.normalized}-{package.version}-*.whl")):
        if _sha256(candidate) in package.hashes:
            return candidate
    return None


def _ensure_wheels(packages: Iterable[LockedPackage], lock: Path, wheelhouse: Path) -> list[Path]:
    """One wheel per locked package, verified against the lock; pip downloads what is missing."""
    packages = list(packages)
    if any(_find_wheel(p, wheelhouse) is None for p in packages):
        wheelhouse.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--platform", PIP_PLATFORM, "--python-version", PYTHON_VERSION, "--implementation", "cp",
            "--require-hashes", "-r", str(lock), "-d", str(wheelhouse),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ArtifactError(
                f"pip could not download the wheels that {lock} pins for {RUNTIME}/{ARCHITECTURE}:\n"
                f"{done.stderr.strip()[-2000:]}"
            )
    wheels = []
    for package in packages:
        wheel = _find_wheel(package, wheelhouse)
        if wheel is None:
            raise ArtifactError(
                f"{lock}: no wheel of {package.name}=={package.version} in {wheelhouse} matches the lock's hashes"
            )
        if not wheel.name.endswith("-none-any.whl"):
            raise ArtifactError(
                f"{wheel.name} has compiled code; the emulator runs the layer on the host's Python, "
                "so every locked package must be a pure-Python wheel"
            )
        wheels.append(wheel)
    return wheels


def _layer_entries(wheels: list[Path]) -> Iterator[tuple[str, bytes]]:
    seen: dict[str, str] = {}
    for wheel in sorted(wheels, key=lambda w: w.name):
        with zipfile.ZipFile(wheel) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if info.is_dir():
                    continue
                name = _installed_path(wheel, info.filename)
                if name is None:
                    continue
                if name in seen:
                    raise ArtifactError(f"{name} is in both {seen[name]} and {wheel.name}")
                seen[name] = wheel.name
                yield f"python/{name}", zf.read(info)


def _installed_path(wheel: Path, member: str) -> str | None:
    """Where pip would put ``member`` relative to site-packages; None for console scripts, which no handler runs."""
    top, _, rest = member.partition("/")
    if top.endswith(".data"):
        scheme, _, inner = rest.partition("/")
        if scheme == "scripts":
            return None
        if scheme not in ("purelib", "platlib"):
            raise ArtifactError(f"{wheel.name}: {member} installs outside site-packages, which a layer cannot hold")
        return inner
    return member


def _write_zip(path: Path, entries: Iterable[tuple[str, bytes]], *, compress: bool) -> str:
    """Entries in the order given, with a fixed time and mode; returns the zip's sha256."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = method
            info.create_system = 3
            zf.writestr(info, data, compresslevel=9 if compress else None)
    return _sha256(path)

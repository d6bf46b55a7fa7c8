"""The function archive: the ``pipeline/`` package exactly as it runs, and nothing else.

All three functions share one archive; each picks its module through its handler.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

PIPELINE_DIR = Path(__file__).resolve().parent.parent / "pipeline"
_EXCLUDED_DIRS = frozenset({"__pycache__", "tests", "test"})


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


def function_archive(package_dir: Path = PIPELINE_DIR) -> pulumi.AssetArchive:
    files = runtime_files(package_dir)
    if not files:
        raise pulumi.RunError(f"no Python modules under {package_dir}: the function archive would be empty")
    return pulumi.AssetArchive({name: pulumi.FileAsset(str(path)) for name, path in files.items()})

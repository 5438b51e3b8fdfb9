"""A function's source archive and its content-hash name (pitfall 1).

The archive holds, at its root, the step's own files (`functions/<step>/*`: main.py, function.json, ...), the
`shared/` package and the root `requirements.txt` (a step's own requirements.txt wins). Its object name is a
hash of exactly those files, names and bytes, so it changes when that code changes and never otherwise: no
timestamp, no bytecode, no other step's files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

IGNORED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
IGNORED_SUFFIXES = (".pyc", ".pyo")
IGNORED_NAMES = frozenset({".DS_Store"})
SHARED_PACKAGE = "shared"
REQUIREMENTS = "requirements.txt"
HASH_LENGTH = 16


def _included(relative: Path) -> bool:
    if any(part in IGNORED_DIRS for part in relative.parts[:-1]):
        return False
    return relative.name not in IGNORED_NAMES and not relative.name.endswith(IGNORED_SUFFIXES)


def _tree(root: Path, prefix: str = "") -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and _included(relative):
            files[f"{prefix}{relative.as_posix()}"] = path
    return files


def source_files(repo: Path, step: str) -> dict[str, Path]:
    """Archive path -> file on disk, for one step."""
    step_dir = repo / "functions" / step
    if not (step_dir / "main.py").is_file():
        raise FileNotFoundError(f"{step_dir / 'main.py'} does not exist")
    files: dict[str, Path] = {REQUIREMENTS: repo / REQUIREMENTS}
    files.update(_tree(repo / SHARED_PACKAGE, f"{SHARED_PACKAGE}/"))
    files.update(_tree(step_dir))  # the step's own files win over a shared name at the root
    return dict(sorted(files.items()))


def content_hash(files: dict[str, Path]) -> str:
    """sha256 over every (archive path, file bytes) pair, in path order; its first HASH_LENGTH hex digits."""
    digest = hashlib.sha256()
    for name in sorted(files):
        data = files[name].read_bytes()
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:HASH_LENGTH]


def object_name(step: str, files: dict[str, Path]) -> str:
    """The source object's name in the sources bucket: `<step>/<content hash>.zip`."""
    return f"{step}/{content_hash(files)}.zip"

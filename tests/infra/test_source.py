"""Source objects are named by a content hash: a new name when the function's code (or shared/, or the
requirements) changes, the same name otherwise (pitfall 1). Tested on a temporary copy of the repository."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from infra import source
from tests.infra.harness import copy_repo, deploy

pytestmark = pytest.mark.infra

FUNCTION = "gcp:cloudfunctionsv2/function:Function"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_repo(tmp_path)


def names(repo: Path) -> dict[str, str]:
    return {step: source.object_name(step, source.source_files(repo, step)) for step in ("collect", "load")}


def test_the_archive_holds_the_step_at_its_root_shared_and_the_requirements(repo: Path) -> None:
    files = source.source_files(repo, "collect")
    assert {"main.py", "function.json", "requirements.txt", "shared/__init__.py", "shared/schema/raw.json"} <= set(
        files
    )
    assert not [name for name in files if name.startswith(("functions/", "load/"))]
    assert files["main.py"] == repo / "functions" / "collect" / "main.py"
    assert list(files) == sorted(files)


def test_the_name_is_stable_when_nothing_changes(repo: Path) -> None:
    before = names(repo)
    later = time.time() + 60
    for path in (repo / "functions" / "collect" / "main.py", repo / "shared" / "settings.py"):
        os.utime(path, (later, later))  # touched, not changed
    assert names(repo) == before
    assert before["collect"] != before["load"]


def test_bytecode_and_caches_do_not_count(repo: Path) -> None:
    before = names(repo)
    for folder in (repo / "shared" / "__pycache__", repo / "functions" / "collect" / "__pycache__"):
        folder.mkdir(exist_ok=True)
        (folder / "main.cpython-312.pyc").write_bytes(b"\x00compiled")
    (repo / "shared" / "stray.pyc").write_bytes(b"\x00")
    assert names(repo) == before
    assert not [n for n in source.source_files(repo, "collect") if "__pycache__" in n or n.endswith(".pyc")]


def test_a_change_in_the_step_renames_only_that_step(repo: Path) -> None:
    before = names(repo)
    main = repo / "functions" / "collect" / "main.py"
    main.write_text(main.read_text() + "\n# changed\n")
    after = names(repo)
    assert after["collect"] != before["collect"]
    assert after["load"] == before["load"]


def test_a_change_in_shared_or_the_requirements_renames_every_step(repo: Path) -> None:
    before = names(repo)
    (repo / "shared" / "new_module.py").write_text("X = 1\n")
    after_shared = names(repo)
    assert all(after_shared[s] != before[s] for s in before)
    requirements = repo / "requirements.txt"
    requirements.write_text(requirements.read_text() + "# pinned again\n")
    after_requirements = names(repo)
    assert all(after_requirements[s] != after_shared[s] for s in before)


def test_a_renamed_file_with_the_same_bytes_is_a_change(repo: Path) -> None:
    before = names(repo)
    (repo / "shared" / "timeutil.py").rename(repo / "shared" / "time_util.py")
    assert names(repo)["load"] != before["load"]


def test_the_deployed_function_points_at_the_new_object_only_when_its_code_changes(repo: Path) -> None:
    def deployed() -> dict[str, str]:
        d = deploy(repo)
        return {r.name: r.inputs["buildConfig"]["source"]["storageSource"]["object"] for r in d.of_type(FUNCTION)}

    first = deployed()
    assert deployed() == first  # a second `pulumi up` with the same code: nothing to redeploy
    main = repo / "functions" / "load" / "main.py"
    main.write_text(main.read_text() + "\n# changed\n")
    second = deployed()
    assert second["collect"] == first["collect"]
    assert second["load"] != first["load"]
    assert second["load"] == names(repo)["load"]

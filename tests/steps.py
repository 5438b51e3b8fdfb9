"""A step's entry point (functions/<step>/main.py) as a module, loaded the way functions-framework loads it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"


def load_step(step: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{step}_main", FUNCTIONS / step / "main.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

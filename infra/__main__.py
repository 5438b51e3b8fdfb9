"""`pulumi up` runs this (Pulumi.yaml: main infra/). The program lives in infra/program.py, built from
infra/components/; the repository root goes on the path so that `infra` and `shared` import as packages."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from infra.program import build  # noqa: E402

build(REPO)

"""One writer of the refined tables at a time: a refine run or an erasure.

Two writers must not overlap: a refine run that read a person's events before an erasure deleted them would
write the person back (profile, identity map) in its later steps, and two refine runs overwrite each other's work
tables. Neither BigQuery nor the local stack gives a lock across processes, so the writers keep a claim table.

Claim, then look: a writer first records its claim in refined.writers (DML, visible to the next query), then
looks for any other live claim. If there is one it withdraws (deletes its claim) and the caller answers busy.
Of two writers that overlap, the later to look always sees the other's claim; when both claim before either
looks, both withdraw and retry later, never both go on. A claim older than `STALE_AFTER_MINUTES` is a crashed
writer's: it is ignored, and deleted by the next release.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from shared.warehouse.base import Warehouse

log = logging.getLogger("cdp.refine.writers")

STALE_AFTER_MINUTES = 120  # longer than any run takes; a crashed writer blocks the others this long at most

WriterKind = Literal["refine", "erase"]


class Claim(BaseModel):
    holder_id: str
    kind: str
    claimed_at: datetime


class WriterBusy(RuntimeError):
    """Another writer holds the refined tables; `holder` is its claim. Retry later: nothing was written."""

    def __init__(self, holder: Claim) -> None:
        self.holder = holder
        what = "refine run" if holder.kind == "refine" else "erasure"
        super().__init__(f"{what} {holder.holder_id} is under way since {holder.claimed_at.isoformat()}")


@contextmanager
def exclusive_writer(warehouse: Warehouse, kind: WriterKind, holder_id: str) -> Iterator[None]:
    """Holds the refined tables for the block; raises WriterBusy (having withdrawn) when another writer holds them."""
    params = {"holder_id": holder_id, "holder_kind": kind, "stale_after_minutes": STALE_AFTER_MINUTES}
    warehouse.query_file("refine/writer_claim", params)
    try:
        others = warehouse.query_file("refine/writers_other", params)
        if others:
            raise WriterBusy(Claim(**others[0]))
        yield
    finally:
        try:
            warehouse.query_file("refine/writer_release", params)
        except Exception:  # the block's own error is the one to report; a stale claim expires on its own
            log.exception("%s %s: the claim on the refined tables could not be released", kind, holder_id)

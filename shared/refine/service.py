"""Refinement: raw events of a period into one clean, current profile per customer (docs/refine.md).

The logic layer: it knows the Warehouse port and the GoogleSQL files of shared/sql/refine/, nothing of the
cloud. Python does what SQL cannot do the same way on BigQuery and DuckDB (PII standardisation of the period's
new distinct values, the bounded propagation loop); every table-sized step is one SQL statement.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, model_validator

from shared.refine import pii
from shared.refine.writers import WriterBusy, exclusive_writer
from shared.timeutil import to_iso, utc_now
from shared.warehouse.base import Warehouse

log = logging.getLogger("cdp.refine")
_T = TypeVar("_T")

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
DEFAULT_TIME_ZONE = "Asia/Seoul"


# Label propagation alternates between these two tables.
LABEL_TABLES = ("refined.work_labels", "refined.work_labels_next")
STALE_AFTER_HOURS = 26  # the schedule is hourly: a day of failed or missing runs, and some slack


class RefineBusy(WriterBusy):
    """Another refine run or an erasure holds the refined tables (shared/refine/writers.py): nothing was done."""


class RefineFailed(RuntimeError):
    def __init__(self, run: RefineRun) -> None:
        self.run = run
        super().__init__(f"refine run {run.run_id} failed: {run.error}")


class RefineRequest(BaseModel):
    """What to refine. mode:
    - rolling (default): the last `days` days up to now;
    - range: [start, end) as given;
    - full: everything from 2000-01-01, identity graph rebuilt from raw (customer ids survive);
    - incremental: from the last successful run's end minus `overlap_hours` (late events), up to now;
      a full rebuild when nothing succeeded yet."""

    mode: Literal["rolling", "range", "full", "incremental"] = "rolling"
    days: int = Field(3, ge=1, le=3660, description="rolling window")
    start: datetime | None = None
    end: datetime | None = None
    overlap_hours: int = Field(48, ge=0, le=24 * 90, description="incremental: late events re-read")
    trigger: str = "manual"
    site_time_zones: dict[str, str] = Field(default_factory=dict, description="site_id -> IANA time zone")
    default_time_zone: str = DEFAULT_TIME_ZONE
    value_window_days: int = Field(90, ge=1, description="window of rvn, odr, avg_rvn, ad, cc")
    max_links: int = Field(20, ge=1, description="ids of one type one id may join (guards)")
    max_ids_per_customer: int = Field(
        50, ge=1, description="ids of one type one customer may hold; the earliest seen are kept (guards)"
    )
    max_passes: int = Field(30, ge=1, le=200, description="bound on label propagation passes")
    now: datetime | None = Field(None, description="clock override (tests, backfills)")

    @model_validator(mode="after")
    def _range_given(self) -> RefineRequest:
        for zone in (self.default_time_zone, *self.site_time_zones.values()):
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {zone!r}") from None
        if self.mode == "range":
            if self.start is None or self.end is None:
                raise ValueError("mode=range needs start and end")
            if self.end <= self.start:
                raise ValueError("end must be after start")
        for moment in (self.start, self.end, self.now):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("times must carry a time zone")
        return self


class RefineRun(BaseModel):
    run_id: str
    status: Literal["succeeded", "failed"]
    mode: str
    period_start: datetime
    period_end: datetime
    error: str | None = None
    events_read: int = 0
    pii_values_new: int = 0
    pii_values_restandardised: int = 0
    identifiers: int = 0
    edges: int = 0
    dropped_links: int = 0
    passes: int = 0
    converged: bool = True
    conflicts: int = 0
    customers: int = 0
    customers_new: int = 0
    merges: int = 0
    profiles: int = 0
    duration_seconds: float = 0.0
    step_seconds: dict[str, float] = Field(default_factory=dict)


def resolve_period(warehouse: Warehouse, request: RefineRequest, now: datetime) -> tuple[str, datetime, datetime]:
    """(effective mode, start, end) of a request."""
    if request.mode == "range":
        assert request.start is not None and request.end is not None
        return "range", request.start, request.end
    if request.mode == "rolling":
        return "rolling", now - timedelta(days=request.days), now
    if request.mode == "incremental":
        rows = warehouse.query_file("refine/last_success")
        last = rows[0]["period_end"] if rows else None
        if last is not None:
            last = last if last.tzinfo else last.replace(tzinfo=UTC)
            return "incremental", min(last, now) - timedelta(hours=request.overlap_hours), now
    return "full", EPOCH, now + timedelta(seconds=1)


class _Run:
    def __init__(self, warehouse: Warehouse, request: RefineRequest, run_id: str) -> None:
        self.wh = warehouse
        self.request = request
        self.run_id = run_id
        self.steps: dict[str, float] = {}
        self.params: dict[str, Any] = {}

    def sql(self, name: str, names: dict[str, str] | None = None, **extra: Any) -> list[dict[str, Any]]:
        started = time.perf_counter()
        rows = self.wh.query_file(f"refine/{name}", {**self.params, **extra}, names=names)
        self.steps[name] = round(self.steps.get(name, 0.0) + time.perf_counter() - started, 4)
        return rows

    def propagate(self) -> tuple[int, bool]:
        """Connected components of refined.work_graph_edges into refined.work_labels: bounded passes that
        alternate between work_labels and work_labels_next (no pass copies the labels)."""
        self.sql("label_init")
        passes, converged, in_next = 0, False, False
        while passes < self.request.max_passes:
            passes += 1
            source, target = LABEL_TABLES if not in_next else LABEL_TABLES[::-1]
            self.sql("label_pass", names={"source": source, "target": target})
            changed = self.sql("label_changes", names={"labels": target})[0]["changed"] or 0
            in_next = not in_next
            if changed == 0:
                converged = True
                break
        if in_next:
            self.sql("label_promote")
        return passes, converged


def _timed(work: Callable[..., _T], *args: Any) -> tuple[_T, float]:
    started = time.perf_counter()
    return work(*args), round(time.perf_counter() - started, 4)


def _utc_offset(zone: str, moment: datetime) -> int:
    offset = moment.astimezone(ZoneInfo(zone)).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def run_refine(warehouse: Warehouse, request: RefineRequest | None = None) -> RefineRun:
    """One refine run. Idempotent: the same request on the same raw data leaves the same refined tables.
    Raises RefineBusy when another run or an erasure is under way (nothing done, not even a runs row),
    RefineFailed (after recording it) when a step fails."""
    request = request or RefineRequest()
    warehouse.ensure_schema_if_owned()
    started = time.perf_counter()
    now = request.now or utc_now()
    run_id = f"r{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    try:
        with exclusive_writer(warehouse, "refine", run_id):
            return _run_refine(warehouse, request, run_id, now, started)
    except WriterBusy as busy:
        raise RefineBusy(busy.holder) from None


def _run_refine(warehouse: Warehouse, request: RefineRequest, run_id: str, now: datetime, started: float) -> RefineRun:
    mode, start, end = resolve_period(warehouse, request, now)
    run = _Run(warehouse, request, run_id)
    run.params = {
        "run_id": run_id,
        "period_start": start,
        "period_end": end,
        "junk_pattern": pii.junk_pattern(),
        "pii_rules_version": pii.RULES_VERSION,
        "max_links": request.max_links,
        "max_ids_per_customer": request.max_ids_per_customer,
        "default_offset_s": _utc_offset(request.default_time_zone, end),
        "value_start": end - timedelta(days=request.value_window_days),
    }
    result = RefineRun(run_id=run_id, status="succeeded", mode=mode, period_start=start, period_end=end)
    with warehouse.bulk_writes():
        run.sql("run_start", run_trigger=request.trigger, run_mode=mode)
        try:
            _refine(run, result, full=mode == "full")
        except Exception as exc:
            result.status = "failed"
            result.error = f"{type(exc).__name__}: {exc}"[:2000]
            log.exception("refine %s failed", run_id)
        result.duration_seconds = round(time.perf_counter() - started, 3)
        _finish(run, result)
        closing = time.perf_counter()
    run.steps["checkpoint"] = round(time.perf_counter() - closing, 4)  # what the warehouse did after the run
    result.step_seconds = run.steps
    log.info("refine: %s", result.model_dump_json(exclude={"step_seconds"}))
    if result.status == "failed":
        raise RefineFailed(result)
    return result


def _refine(run: _Run, result: RefineRun, *, full: bool) -> None:
    # Work tables a failed run left behind (no other run is active: checked above) go first, so that they
    # never outlive the next run, nor are read by it.
    run.sql("work_cleanup")
    # Site time zones (request overrides stored ones) with their UTC offset at the as-of: day counts use it.
    zones = {r["site_id"]: r["time_zone"] for r in run.sql("site_settings_select")}
    zones.update(run.request.site_time_zones)
    for site_id, zone in sorted(zones.items()):
        run.sql("site_settings_delete", site_id=site_id)
        run.sql(
            "site_settings_insert",
            site_id=site_id,
            time_zone=zone,
            utc_offset_seconds=_utc_offset(zone, run.params["period_end"]),
        )
    # 1. the period's events (deduplicated), their sessions while Python standardises their PII, traits.
    run.sql("events_delete")
    run.sql("erased_seen", users_from=run.params["period_start"] - timedelta(days=1))
    run.sql("events_insert")
    if not full:
        run.sql("events_boundary_dedupe")
    # The period's raw PII values never standardised by the current rules (and every cached value of older rules)
    # are standardised in Python into refined.pii_values, while the warehouse makes the sessions (which read no PII).
    candidates = run.sql("pii_candidates")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="refine-pii") as pii_thread:
        standardising = pii_thread.submit(_timed, _standardised_columns, candidates)
        run.sql("sessions_boundary")
        run.sql("sessions_delete")
        run.sql("sessions_insert")
        columns, run.steps["pii_python"] = standardising.result()
    _store_standardised(run, columns)
    result.pii_values_new = len(candidates)
    result.pii_values_restandardised = sum(1 for row in candidates if row["restandardised"])
    # New PII rules changed cached forms: the traits of every period are made again (profiles read them all),
    # with the erased ids of every period left out.
    history = {"period_start": EPOCH} if result.pii_values_restandardised and not full else {}
    if history:
        log.info("refine %s: PII values standardised by new rules: traits of every period made again", run.run_id)
        run.sql("erased_seen", users_from=EPOCH)
    run.sql("traits_delete", **history)
    run.sql("traits_insert", **history)
    # 2. the identity graph: accumulated edges, guards, components with bounded label propagation.
    if full:
        run.sql("edges_delete_all")
    run.sql("edges_insert")
    run.sql("graph_alias")
    passes, converged = run.propagate()
    run.sql("graph_strong")
    strong_passes, strong_converged = run.propagate()
    passes, converged = passes + strong_passes, converged and strong_converged
    run.sql("strong_groups")
    run.sql("work_edges")
    # Each round only drops links, so components only split: conflicts first, then the per-customer cap (one
    # cut leaves every capped component within the cap); a round to spare.
    conflicts = capped = 0
    for _round in range(4):
        run.sql("graph_kept")
        round_passes, round_converged = run.propagate()
        passes += round_passes
        converged = converged and round_converged
        run.sql("conflicts")
        conflicts = run.sql("conflicts_count")[0]["conflicts"] or 0
        if conflicts:
            run.sql("conflicts_drop")
            continue
        run.sql("cap_check")
        capped = run.sql("cap_count")[0]["capped"] or 0
        if capped == 0:
            break
        run.sql("cap_drop")
    result.passes, result.converged, result.conflicts = passes, converged, conflicts
    if not converged:
        # Partial labels would split customers (new ids, then merges back): keep the last good identity map
        # and profiles, and say so. Raise max_passes (or look at the graph: a pathological chain).
        raise RuntimeError(f"label propagation did not converge within {run.request.max_passes} passes per round")
    if conflicts or capped:
        raise RuntimeError(
            f"after 4 rounds {conflicts} components still join user ids of different customers, "
            f"{capped} ids are still over the per-customer cap"
        )
    # 3. stable customer ids and merges, then the golden profile.
    run.sql("assign")
    run.sql("merges_insert")
    run.sql("customers_merged")
    run.sql("customers_insert")
    run.sql("identity_map_delete")
    run.sql("identity_map_insert")
    run.sql("dropped_links_delete")
    run.sql("dropped_links_insert")
    run.sql("profiles_delete")
    run.sql("profiles_insert")
    counts = run.sql("run_counts")[0]
    for key, value in counts.items():
        setattr(result, key, int(value or 0))
    run.sql("work_cleanup")


def _standardised_columns(candidates: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """refined.pii_values' columns for the candidate raw values, standardised by the current rules. Pure Python:
    it runs on a thread of its own while the warehouse makes the sessions."""
    columns: dict[str, list[Any]] = {name: [] for name in ("value_id", "kind", "raw_value", "value", "valid", "reason")}
    for row in candidates:
        kind, raw_value = row["kind"], row["raw_value"]
        std = pii.standardise(kind, raw_value)
        columns["value_id"].append(
            hashlib.sha256(f"{kind}\x1f{raw_value}\x1f{pii.RULES_VERSION}".encode()).hexdigest()[:32]
        )
        columns["kind"].append(kind)
        columns["raw_value"].append(raw_value)
        columns["value"].append(std.value)
        columns["valid"].append(std.valid)
        columns["reason"].append(std.reason)
    columns["standardised_at"] = [to_iso(utc_now())] * len(candidates)
    columns["rules_version"] = [pii.RULES_VERSION] * len(candidates)
    return columns


def _store_standardised(run: _Run, columns: dict[str, list[Any]]) -> None:
    """Appends the standardised values to the cache, then drops the rows of older rules they replace."""
    started = time.perf_counter()
    run.wh.insert_columns("refined.pii_values", columns)
    try:  # the rows of values just standardised again by newer rules (the joins read the current rules' only)
        run.sql("pii_stale_delete")
    except Exception:  # BigQuery: rows streamed in the last ~30 minutes cannot be deleted yet; the next run does it
        log.warning("refine %s: PII values of older rules are left for the next run", run.run_id, exc_info=True)
    run.steps["pii_store"] = round(time.perf_counter() - started, 4)


def _finish(run: _Run, result: RefineRun) -> None:
    try:
        run.sql(
            "run_finish",
            run_status=result.status,
            run_error=result.error,
            events_read=result.events_read,
            pii_values_new=result.pii_values_new,
            pii_values_restandardised=result.pii_values_restandardised,
            identifiers=result.identifiers,
            edges=result.edges,
            dropped_links=result.dropped_links,
            passes=result.passes,
            converged=result.converged,
            customers=result.customers,
            customers_new=result.customers_new,
            merges=result.merges,
            profiles=result.profiles,
            duration_seconds=result.duration_seconds,
        )
    except Exception:  # the run's own failure is the one to report
        log.exception("refine %s: the run ledger could not be updated", run.run_id)


class RefineStatus(BaseModel):
    """Freshness of the refined tables, for operators: `stale` when the profiles are older than the threshold,
    missing, or the last run failed."""

    stale: bool
    last_run_id: str | None = None
    last_run_status: str | None = None
    last_run_started_at: datetime | None = None
    last_run_error: str | None = None
    last_success_period_end: datetime | None = None
    last_success_finished_at: datetime | None = None
    profiles_as_of: datetime | None = None
    profiles: int = 0


def refine_status(warehouse: Warehouse, stale_after_hours: int = STALE_AFTER_HOURS) -> RefineStatus:
    """The last run, the last success and whether the profiles are stale."""
    rows = warehouse.query_file("refine/status", {"stale_after_hours": stale_after_hours})
    return RefineStatus.model_validate(rows[0]) if rows else RefineStatus(stale=True)

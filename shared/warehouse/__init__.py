"""The warehouse port: one interface, a BigQuery adapter for the cloud and a DuckDB adapter for the laptop."""

from __future__ import annotations

from shared.settings import PlatformSettings, platform_settings
from shared.warehouse.base import (
    BadRows,
    LoadBatch,
    Warehouse,
    WarehouseUnavailable,
    load_sql,
)


def open_warehouse(
    settings: PlatformSettings | None = None, *, read_only: bool = False, threads: int | None = None
) -> Warehouse:
    """The warehouse the settings name (CDP_WAREHOUSE). `threads` caps DuckDB's threads (the loader's setting);
    BigQuery has nothing to cap."""
    settings = settings or platform_settings()
    if settings.warehouse == "bigquery":
        from shared.warehouse.bigquery import BigQueryWarehouse

        return BigQueryWarehouse(
            project=settings.project,
            location=settings.bigquery_location,
            maximum_bytes_billed=settings.maximum_bytes_billed,
        )
    from shared.warehouse.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(
        settings.duckdb_file,
        read_only=read_only,
        release_after_idle=settings.duckdb_release_after_idle,
        checkpoint_threshold=settings.duckdb_checkpoint_threshold,
        threads=threads,
        gather_seconds=settings.duckdb_gather_seconds,
    )


__all__ = [
    "BadRows",
    "LoadBatch",
    "Warehouse",
    "WarehouseUnavailable",
    "load_sql",
    "open_warehouse",
]

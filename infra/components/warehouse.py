"""BigQuery: the datasets, the tables from the schema source the code reads (`shared/schema/raw.json`), day
partitioned on their event time and clustered (pitfall 8), and the views from `shared/sql/views/*.sql`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_gcp as gcp
import sqlglot
from sqlglot import exp

from infra.components.base import Component
from infra.settings import StackSettings
from shared.schema import RAW_TABLES, TableSpec
from shared.warehouse.base import fill_sql, sql_placeholders


def table_schema(spec: TableSpec) -> str:
    """The BigQuery schema JSON of a table spec."""
    return json.dumps(
        [{"name": c.name, "type": c.type, "mode": c.mode, "description": c.description} for c in spec.columns]
    )


@dataclass(frozen=True)
class ViewSpec:
    dataset: str
    name: str
    query: str
    reads: tuple[str, ...]  # dataset.table names it selects from


def view_specs(views_dir: Path, project: str, raw_tables: Iterable[str] = RAW_TABLES) -> list[ViewSpec]:
    """Each `CREATE OR REPLACE VIEW ds.name AS <query>` file as a view; a file holding `{table}` is a template
    applied to every raw table. Table references are qualified with the project (a view's unqualified names
    would resolve against whichever project runs the query)."""
    specs: list[ViewSpec] = []
    for path in sorted(views_dir.glob("*.sql")):
        template = path.read_text()
        texts = [fill_sql(template, table=t) for t in raw_tables] if sql_placeholders(template) else [template]
        for text in texts:
            statement = sqlglot.parse_one(text, read="bigquery")
            if not isinstance(statement, exp.Create) or statement.kind != "VIEW":
                raise ValueError(f"{path}: expected one CREATE VIEW statement")
            target = statement.this
            query = statement.expression
            reads = []
            for table in query.find_all(exp.Table):
                if table.db:
                    reads.append(f"{table.db}.{table.name}")
                    table.set("catalog", exp.to_identifier(project))
            specs.append(ViewSpec(target.db, target.name, query.sql(dialect="bigquery"), tuple(reads)))
    return specs


class Warehouse(Component):
    def __init__(
        self,
        name: str,
        settings: StackSettings,
        tables: dict[str, TableSpec],
        views_dir: Path,
        deps: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("Warehouse", name, deps, opts)
        names = sorted(set(settings.datasets) | {spec.dataset for spec in tables.values()})
        self.datasets = {
            ds: gcp.bigquery.Dataset(
                f"dataset-{ds}",
                dataset_id=ds,
                location=settings.location,
                delete_contents_on_destroy=not settings.deletion_protection,
                opts=self.child(),
            )
            for ds in names
        }
        self.tables: dict[str, gcp.bigquery.Table] = {}
        for qualified, spec in sorted(tables.items()):
            self.tables[qualified] = gcp.bigquery.Table(
                f"table-{spec.dataset}-{spec.name}",
                dataset_id=self.datasets[spec.dataset].dataset_id,
                table_id=spec.name,
                description=spec.description,
                schema=table_schema(spec),
                time_partitioning=gcp.bigquery.TableTimePartitioningArgs(type="DAY", field=spec.partition_field),
                require_partition_filter=spec.dataset in settings.partition_filter_datasets,
                clusterings=list(spec.clustering),
                deletion_protection=settings.deletion_protection,
                opts=self.child(),
            )
        self.views: dict[str, gcp.bigquery.Table] = {}
        for view in view_specs(views_dir, settings.project):
            if view.dataset not in self.datasets:
                raise pulumi.RunError(f"view {view.dataset}.{view.name}: no dataset {view.dataset}")
            read_tables = [self.tables[r] for r in view.reads if r in self.tables]
            self.views[f"{view.dataset}.{view.name}"] = gcp.bigquery.Table(
                f"view-{view.dataset}-{view.name}",
                dataset_id=self.datasets[view.dataset].dataset_id,
                table_id=view.name,
                view=gcp.bigquery.TableViewArgs(query=view.query, use_legacy_sql=False),
                deletion_protection=False,
                opts=self.child(*read_tables),
            )
        self.register_outputs({"datasets": names, "tables": sorted(self.tables), "views": sorted(self.views)})

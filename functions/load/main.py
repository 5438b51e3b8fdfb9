"""load (Pub/Sub): messages of enriched rows into the warehouse's raw tables, each event once."""

import functions_framework
from cloudevents.http import CloudEvent

from shared.load import handler
from shared.logs import configure_logging

configure_logging()

# Built as the instance starts, before it takes a push: the warehouse adapter's imports (DuckDB, Arrow, sqlglot;
# ~0.2 s) would otherwise hold up the first message. Nothing is opened yet: the adapters connect on first use.
handler.default_service()


@functions_framework.cloud_event
def load(event: CloudEvent) -> None:
    handler.handle(event["id"], event.data)

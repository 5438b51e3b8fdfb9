"""load (Pub/Sub): messages of enriched rows into the warehouse's raw tables, each event once."""

import functions_framework
from cloudevents.http import CloudEvent

from shared.load import handler


@functions_framework.cloud_event
def load(event: CloudEvent) -> None:
    handler.handle(event["id"], event.data)

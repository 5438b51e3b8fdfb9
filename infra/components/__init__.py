"""The small components the program is built from. Every resource below depends on the project services."""

from infra.components.alerts import Alerts
from infra.components.base import Component
from infra.components.build import BuildIdentity
from infra.components.iam import Grants, Targets
from infra.components.messaging import Messaging, PushDelivery
from infra.components.scheduling import ScheduledCall
from infra.components.secrets import Secrets
from infra.components.services import REQUIRED_SERVICES, ProjectServices
from infra.components.step import Step, StepContext
from infra.components.storage import Buckets
from infra.components.warehouse import Warehouse

__all__ = [
    "REQUIRED_SERVICES",
    "Alerts",
    "Buckets",
    "BuildIdentity",
    "Component",
    "Grants",
    "Messaging",
    "ProjectServices",
    "PushDelivery",
    "ScheduledCall",
    "Secrets",
    "Step",
    "StepContext",
    "Targets",
    "Warehouse",
]

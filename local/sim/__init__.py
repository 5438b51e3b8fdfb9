"""A seeded, reproducible synthetic shop (Korean and international customers) that drives the running stack,
with its ground truth and the exact counts that must land.

    shop = simulate(SimConfig(seed=7, customers=300, days=60))
    report = drive(collect_url, shop.requests, concurrency=8)
    shop.expected   # rows per raw table (unique and stored), rejections per reason code
    shop.truth      # people, identifiers, devices, behaviour groups, future purchases
"""

from __future__ import annotations

from pydantic import BaseModel

from local.sim.drive import drive
from local.sim.models import (
    DriveReport,
    Expected,
    SimConfig,
    SimRequest,
    Truth,
)
from local.sim.shop import ShopBuilder
from local.sim.truth import build_truth
from local.sim.wire import Wire


class Shop(BaseModel):
    config: SimConfig
    requests: list[SimRequest]
    truth: Truth
    expected: Expected


def simulate(config: SimConfig | None = None) -> Shop:
    """The shop's whole history as HTTP requests, with its truth and expected counts. Same config, same bytes
    (except sentAt, which `drive` makes fresh at send time)."""
    config = config or SimConfig()
    builder = ShopBuilder(config).build()
    wire = Wire(builder).build()
    return Shop(config=config, requests=wire.requests, truth=build_truth(builder, wire), expected=wire.expected())


__all__ = ["DriveReport", "Expected", "Shop", "SimConfig", "SimRequest", "Truth", "drive", "simulate"]

"""The local stand-in for Cloud Scheduler: calls each scheduled step over HTTP on its cron, in its time zone."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests
from croniter import croniter
from pydantic import BaseModel, Field

log = logging.getLogger("cdp.scheduler")


class ScheduledCall(BaseModel):
    step: str
    url: str
    cron: str
    time_zone: str
    body: dict[str, Any] = Field(default_factory=dict)

    def next_after(self, moment: datetime) -> datetime:
        return croniter(self.cron, moment.astimezone(ZoneInfo(self.time_zone))).get_next(datetime)


class LocalScheduler:
    """One thread; a call that fails is logged and tried again at its next time, as a missed tick would be."""

    def __init__(self, calls: list[ScheduledCall], timeout_seconds: float = 1800) -> None:
        self.calls = calls
        self.timeout = timeout_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self.fired: list[tuple[str, int]] = []

    def start(self) -> LocalScheduler:
        if self.calls:
            self._thread.start()
        return self

    def _run(self) -> None:
        now = datetime.now(ZoneInfo("UTC"))
        due = {call.step: call.next_after(now) for call in self.calls}
        while not self._stop.is_set():
            step, when = min(due.items(), key=lambda item: item[1])
            wait = (when - datetime.now(ZoneInfo("UTC"))).total_seconds()
            if wait > 0 and self._stop.wait(min(wait, 60)):
                return
            if when > datetime.now(ZoneInfo("UTC")):
                continue
            call = next(c for c in self.calls if c.step == step)
            try:
                response = requests.post(call.url, json=call.body, timeout=self.timeout)
                self.fired.append((step, response.status_code))
                log.info("scheduled %s: HTTP %s", step, response.status_code)
            except requests.RequestException as exc:
                self.fired.append((step, 0))
                log.warning("scheduled %s failed: %s", step, exc)
            due[step] = call.next_after(datetime.now(ZoneInfo("UTC")))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.timeout)

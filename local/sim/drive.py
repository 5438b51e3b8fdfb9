"""Push the shop's requests through a running collector over real HTTP, as many SDKs at once would."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests as http

from local.sim.models import DriveReport, SimRequest

RETRY_STATUSES = {429, 500, 502, 503, 504}


def drive(
    collect_url: str,
    sim_requests: list[SimRequest],
    concurrency: int = 8,
    *,
    timeout: float = 30.0,
    max_retries: int = 4,
) -> DriveReport:
    """Send every request (sentAt made fresh at send time); retry as SDKs do on 5xx, 429 and lost connections."""
    base = collect_url.rstrip("/")
    local = threading.local()
    sessions: list[http.Session] = []
    lock = threading.Lock()

    def session() -> http.Session:
        current = getattr(local, "session", None)
        if current is None:
            current = http.Session()
            local.session = current
            with lock:
                sessions.append(current)
        return current

    def send(request: SimRequest) -> tuple[SimRequest, int, str, int, int]:
        tries = 0
        while True:
            try:
                response = session().request(
                    request.method,
                    base + request.path,
                    data=request.render(),
                    headers=request.headers,
                    timeout=timeout,
                )
                status, text = response.status_code, response.text
            except http.RequestException as exc:
                status, text = 0, f"{type(exc).__name__}: {exc}"
            if (status == 0 or status in RETRY_STATUSES) and tries < max_retries:
                tries += 1
                time.sleep(min(0.2 * 2**tries, 3.0))
                continue
            accepted = 0
            if status == 200:
                try:
                    accepted = int(response.json().get("accepted", 0))
                except (ValueError, AttributeError):
                    accepted = 0
            return request, status, text, accepted, tries

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="drive") as pool:
            results = list(pool.map(send, sim_requests))
    finally:
        for s in sessions:
            s.close()
    seconds = time.monotonic() - started
    by_status = Counter(status for _, status, _, _, _ in results)
    return DriveReport(
        sent=len(results),
        by_status=dict(sorted(by_status.items())),
        seconds=round(seconds, 3),
        failures=[
            (request.label, status, text[:200])
            for request, status, text, _, _ in results
            if status != request.expected_status
        ],
        accepted=sum(accepted for _, _, _, accepted, _ in results),
        retries=sum(tries for _, _, _, _, tries in results),
    )

"""The local stack: Google's Pub/Sub emulator, the functions on functions-framework, push subscriptions
between them as Eventarc would, and the DuckDB warehouse. Every process it starts, it stops; stopping
drains: everything the collector accepted is in the warehouse before the stack exits."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import requests
from google.api_core import exceptions as api_exceptions
from google.cloud import pubsub_v1
from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport
from pydantic import Field

from infra.declaration import FunctionDeclaration, HttpTrigger, PubSubTrigger, ScheduleTrigger, discover
from local.processes import ChildProcess, free_port
from local.scheduler import LocalScheduler, ScheduledCall
from shared.logs import ENTRY_START
from shared.settings import PlatformSettings
from shared.warehouse.duckdb import DuckDBWarehouse

log = logging.getLogger("cdp.stack")
REPO = Path(__file__).resolve().parent.parent


class StackSettings(PlatformSettings):
    """The local stack's settings (environment, prefix CDP_); a port of 0 picks a free one."""

    collect_port: int = Field(8080, description="collect function (tracker, tracking API)")
    load_port: int = Field(0, description="load function (receives Pub/Sub pushes); other steps get free ports")
    pubsub_port: int = Field(0, description="Pub/Sub emulator")
    pubsub_emulator: Path | None = Field(None, description="the emulator's start script; found from gcloud if unset")
    function_threads: int = Field(8, description="threads per function server (gunicorn gthread)")
    collect_workers: int = Field(
        default_factory=lambda: min(os.cpu_count() or 1, 4),
        ge=1,
        description="collect's worker processes (default: one a core, at most 4): this machine stands in for the "
        "instances Cloud Run would add, and one Python process uses one core. The other steps keep one: load is the "
        "DuckDB file's one writer, refine and erase take one request at a time",
    )
    scheduler: bool = Field(True, description="call scheduled steps on their cron, as Cloud Scheduler does")
    time_zone: str = Field("Asia/Seoul", description="time zone of schedules that name none")


class EmulatorMissing(RuntimeError):
    pass


class PortInUse(RuntimeError):
    """A port the settings fix is held by another process."""


def _check_fixed_ports(ports: dict[str, int]) -> None:
    """Fail before starting anything when a port the settings fix is taken (a second `make serve`, another
    server on 8080), naming the setting, instead of a server that dies at start."""
    for variable, port in ports.items():
        if not port:
            continue
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is free
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                raise PortInUse(
                    f"port {port} ({variable}) is in use by another process: stop it, or set {variable}=0 "
                    "for a free port"
                ) from None


def find_emulator(explicit: Path | None) -> list[str]:
    """The command that starts the Pub/Sub emulator, or an error that says how to install it."""
    if explicit:
        return [str(explicit)]
    gcloud = shutil.which("gcloud")
    if gcloud:
        sdk = Path(os.path.realpath(gcloud)).parent.parent
        script = sdk / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
        if script.is_file():
            return [str(script)]
        return [gcloud, "beta", "emulators", "pubsub", "start"]
    raise EmulatorMissing(
        "the Pub/Sub emulator was not found. Install the Google Cloud CLI with its emulator "
        "(`apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator`, or "
        "`gcloud components install pubsub-emulator beta`) and Java 17+, or set CDP_PUBSUB_EMULATOR "
        "to the emulator's cloud-pubsub-emulator script."
    )


def emulator_clients(host: str) -> tuple[pubsub_v1.PublisherClient, pubsub_v1.SubscriberClient]:
    """Clients of the emulator at `host`."""
    os.environ["PUBSUB_EMULATOR_HOST"] = host
    # Pulled messages can be larger than gRPC's default 4 MiB receive limit.
    channel = grpc.insecure_channel(host, options=[("grpc.max_receive_message_length", -1)])
    transport = SubscriberGrpcTransport(channel=channel)
    return pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient(transport=transport)


class LocalStack:
    """The steps are read from functions/<step>/function.json, as the Pulumi program reads them: HTTP steps
    are served, Pub/Sub steps get a push subscription from their topic, scheduled steps are called by the
    local scheduler on their cron."""

    def __init__(self, settings: StackSettings | None = None) -> None:
        self.settings = settings or StackSettings()
        s = self.settings
        self.state_dir = s.state_dir.resolve()
        self.steps: dict[str, FunctionDeclaration] = discover(REPO / "functions")
        fixed = {"collect": s.collect_port, "load": s.load_port}
        self.ports = {"pubsub": s.pubsub_port or free_port()}
        self.ports.update({step: fixed.get(step) or free_port() for step in self.steps})
        self.scheduler: LocalScheduler | None = None
        self.processes: dict[str, ChildProcess] = {}
        self.audit_subscription = f"{s.collected_topic}-audit"
        # message id -> collect's batch id (or the message id): either one loaded accounts for the message
        self._published: dict[str, str] = {}
        self._loaded: set[str] = set()
        self._load_log_offset = 0
        self._audit_thread: threading.Thread | None = None
        self._stop_audit = threading.Event()
        self._audit_lock = threading.Lock()  # the background puller and drain take turns

    # -- addresses --------------------------------------------------------------------------
    @property
    def pubsub_host(self) -> str:
        return f"127.0.0.1:{self.ports['pubsub']}"

    def url(self, function: str) -> str:
        return f"http://127.0.0.1:{self.ports[function]}"

    def urls(self) -> dict[str, str]:
        return {step: self.url(step) for step in self.steps}

    @property
    def address_file(self) -> Path:
        """Where a running stack says where its steps are, for `cdp run` from another shell."""
        return self.state_dir / "stack.json"

    @property
    def collect_url(self) -> str:
        return self.url("collect")

    @property
    def warehouse_path(self) -> Path:
        return self.settings.duckdb_file.resolve()

    def function_env(self, workers: int = 1) -> dict[str, str]:
        s = self.settings
        return {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
            "CDP_PROJECT": s.project,
            "CDP_WAREHOUSE": "duckdb",
            "CDP_STATE_DIR": str(self.state_dir),
            "CDP_DUCKDB_PATH": str(self.warehouse_path),
            "CDP_COLLECTED_TOPIC": s.collected_topic,
            "CDP_WRITE_KEYS": s.write_keys,
            "THREADS": str(s.function_threads),
            "WORKERS": str(workers),  # functions-framework's gunicorn worker processes
            "PYTHONUNBUFFERED": "1",
        }

    def _public_first(self) -> list[str]:
        """Steps that take outside traffic (public HTTP): started last, stopped first."""
        return [n for n, d in self.steps.items() if isinstance(d.trigger, HttpTrigger) and d.trigger.access == "public"]

    # -- start / stop -----------------------------------------------------------------------
    def start(self) -> LocalStack:
        s = self.settings
        _check_fixed_ports(
            {"CDP_COLLECT_PORT": s.collect_port, "CDP_LOAD_PORT": s.load_port, "CDP_PUBSUB_PORT": s.pubsub_port}
        )
        try:
            # Only what this run's loader logs counts for its drain (an emulator restart reuses message ids).
            load_log = self.state_dir / "logs" / "load.log"
            self._load_log_offset = load_log.stat().st_size if load_log.exists() else 0
            self._start_emulator()
            self._create_topology()
            with DuckDBWarehouse(self.warehouse_path) as warehouse:
                warehouse.ensure_schema()
            entry = self._public_first()
            for name in [n for n in self.steps if n not in entry] + entry:
                self._start_function(name)
            self._start_audit()
            if self.settings.scheduler:
                self.scheduler = LocalScheduler(self._schedules()).start()
            address = {"pid": os.getpid(), "urls": self.urls(), "pubsub": self.pubsub_host, "project": s.project}
            # Whole or not at all: another process waits for the file to appear, then reads it at once.
            partial = self.address_file.with_suffix(".json.partial")
            partial.write_text(json.dumps(address, indent=2))
            os.replace(partial, self.address_file)
        except BaseException:
            self.stop(drain=False)
            raise
        log.info(
            "local stack up: collect %s, Pub/Sub emulator %s, warehouse %s",
            self.collect_url,
            self.pubsub_host,
            self.warehouse_path,
        )
        return self

    def _start_emulator(self) -> None:
        command = find_emulator(self.settings.pubsub_emulator)
        data_dir = self.state_dir / "pubsub"
        if command[-1] == "start":  # through gcloud
            argv = [
                *command,
                f"--host-port=127.0.0.1:{self.ports['pubsub']}",
                f"--data-dir={data_dir}",
                f"--project={self.settings.project}",
            ]
        else:
            argv = [*command, "--host=127.0.0.1", f"--port={self.ports['pubsub']}"]
        emulator = ChildProcess(
            "pubsub-emulator", argv, env=dict(os.environ), log_dir=self.state_dir / "logs", port=self.ports["pubsub"]
        )
        self.processes["pubsub"] = emulator
        emulator.start(ready_timeout=60)

    def _pubsub_clients(self) -> tuple[pubsub_v1.PublisherClient, pubsub_v1.SubscriberClient]:
        return emulator_clients(self.pubsub_host)

    def _create_topology(self) -> None:
        """The topics and push subscriptions the Pulumi program creates in the cloud."""
        s = self.settings
        publisher, subscriber = self._pubsub_clients()
        topics = {s.collected_topic} | {t for d in self.steps.values() for t in d.topics}
        for topic in sorted(topics):
            _create(lambda topic=topic: publisher.create_topic(name=publisher.topic_path(s.project, topic)))
        for name, declaration in self.steps.items():
            trigger = declaration.trigger
            if not isinstance(trigger, PubSubTrigger):
                continue
            # As in the cloud: a message that fails every attempt goes to the step's dead-letter topic, whose hold
            # subscription keeps it (`cdp dead-letters` shows and replays it), with the declared backoff between.
            dead_letters = publisher.topic_path(s.project, trigger.dead_letter_topic(name))
            _create(lambda topic=dead_letters: publisher.create_topic(name=topic))
            hold = {
                "name": subscriber.subscription_path(s.project, trigger.dead_letter_hold(name)),
                "topic": dead_letters,
            }
            _create(lambda request=hold: subscriber.create_subscription(request=request))
            request = {
                "name": subscriber.subscription_path(s.project, trigger.subscription(name)),
                "topic": publisher.topic_path(s.project, trigger.topic),
                "push_config": pubsub_v1.types.PushConfig(push_endpoint=f"{self.url(name)}/"),
                "ack_deadline_seconds": trigger.ack_deadline_seconds,
                "dead_letter_policy": {
                    "dead_letter_topic": dead_letters,
                    "max_delivery_attempts": trigger.max_delivery_attempts,
                },
                "retry_policy": {
                    "minimum_backoff": timedelta(seconds=trigger.min_backoff_seconds),
                    "maximum_backoff": timedelta(seconds=trigger.max_backoff_seconds),
                },
            }
            _create(lambda request=request: subscriber.create_subscription(request=request))
        # A pull subscription the stack reads to know every message published, so that drain can wait for each.
        audit = {
            "name": subscriber.subscription_path(s.project, self.audit_subscription),
            "topic": publisher.topic_path(s.project, s.collected_topic),
        }
        _create(lambda: subscriber.create_subscription(request=audit))
        subscriber.close()

    def _schedules(self) -> list[ScheduledCall]:
        return [
            ScheduledCall(
                step=name,
                url=f"{self.url(name)}/",
                cron=d.trigger.cron,
                time_zone=d.trigger.time_zone or self.settings.time_zone,
                body=d.trigger.body,
            )
            for name, d in self.steps.items()
            if isinstance(d.trigger, ScheduleTrigger)
        ]

    def call(self, step: str, body: dict[str, Any] | None = None, timeout: float = 1800) -> requests.Response:
        """Call a step as its trigger would (the scheduler's POST, or a marketer's request)."""
        if step not in self.steps:
            raise KeyError(f"no step {step!r}; the steps are {sorted(self.steps)}")
        return requests.post(f"{self.url(step)}/", json=body or {}, timeout=timeout)

    def _start_function(self, name: str) -> None:
        argv = [
            sys.executable,
            "-m",
            "functions_framework",
            f"--target={self.steps[name].entry_point}",
            f"--source={REPO / 'functions' / name / 'main.py'}",
            "--host=127.0.0.1",
            f"--port={self.ports[name]}",
        ]
        child = ChildProcess(
            name,
            argv,
            env=self.function_env(self.settings.collect_workers if name == "collect" else 1),
            log_dir=self.state_dir / "logs",
            port=self.ports[name],
            cwd=REPO,
        )
        self.processes[name] = child
        child.start()

    # -- drain ------------------------------------------------------------------------------
    def _start_audit(self) -> None:
        _, subscriber = self._pubsub_clients()
        path = subscriber.subscription_path(self.settings.project, self.audit_subscription)

        def pull_forever() -> None:
            while not self._stop_audit.is_set():
                try:
                    with self._audit_lock:
                        self._pull_audit(subscriber, path)
                except api_exceptions.GoogleAPIError as exc:  # drain pulls again and raises if it persists
                    log.warning("audit pull failed: %s", exc)
                self._stop_audit.wait(0.2)
            subscriber.close()

        self._audit_thread = threading.Thread(target=pull_forever, name="audit", daemon=True)
        self._audit_thread.start()

    def _pull_audit(self, subscriber: pubsub_v1.SubscriberClient, path: str) -> None:
        """Take every message waiting on the audit subscription (its id, and collect's batch id from its attributes);
        returns once a pull comes back empty.
        Errors other than 'nothing arrived in time' raise: drain must never take a failed look for 'no more'."""
        while True:
            try:
                response = subscriber.pull(
                    request={"subscription": path, "max_messages": 100, "return_immediately": True}, timeout=10
                )
            except api_exceptions.DeadlineExceeded:
                return
            if not response.received_messages:
                return
            for received in response.received_messages:
                message = received.message
                self._published[message.message_id] = dict(message.attributes).get("batch_id") or message.message_id
            subscriber.acknowledge(
                request={"subscription": path, "ack_ids": [m.ack_id for m in response.received_messages]}
            )

    def loaded_keys(self) -> set[str]:
        """Message ids and batch ids the load step has committed, from its structured log, read on from where the
        last look stopped (opening the warehouse instead would make the loader let go of the file and reopen it).
        A dead letter published again is a new message of the same batch: its batch accounts for the original."""
        log_path = self.state_dir / "logs" / "load.log"
        with contextlib.suppress(FileNotFoundError), log_path.open("rb") as lines:
            lines.seek(self._load_log_offset)
            for line in lines:
                if not line.endswith(b"\n"):
                    break  # a line still being written: read it next time
                self._load_log_offset += len(line)
                # The entry may follow another writer's text on the same line: the step's stdout and stderr share
                # the file, and a print() writes its text and its newline separately.
                start = line.find(ENTRY_START)
                if start >= 0 and b'"loaded"' in line:
                    with contextlib.suppress(ValueError, KeyError):
                        entry = json.loads(line[start:])
                        if entry.get("message") == "loaded":
                            self._loaded.add(entry["message_id"])
                            if entry.get("batch_id"):
                                self._loaded.add(entry["batch_id"])
        return self._loaded

    def drain(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until every message published so far has been loaded. Returns what was waited for."""
        _, subscriber = self._pubsub_clients()
        path = subscriber.subscription_path(self.settings.project, self.audit_subscription)
        deadline = time.monotonic() + timeout
        while True:
            with self._audit_lock:
                self._pull_audit(subscriber, path)
            loaded = self.loaded_keys()
            missing = [m for m, batch in self._published.items() if m not in loaded and batch not in loaded]
            if not missing:
                subscriber.close()
                return {"published": len(self._published), "missing": 0}
            if time.monotonic() > deadline:
                subscriber.close()
                raise TimeoutError(
                    f"{len(missing)} of {len(self._published)} messages not loaded after {timeout}s; "
                    f"see {self.state_dir / 'logs' / 'load.log'}, and `python -m local.cli dead-letters` for "
                    "messages that failed every delivery attempt (`--replay` loads them once the cause is fixed)"
                )
            time.sleep(0.2)

    def stop(self, drain: bool = True) -> None:
        """Stop taking events, load what was accepted, then stop every process (the emulator last)."""
        try:
            if self.scheduler is not None:
                self.scheduler.stop()
            for name in self._public_first():
                if name in self.processes:
                    self.processes.pop(name).stop()
            if drain and "load" in self.processes and "pubsub" in self.processes:
                self.drain()
        finally:
            self.address_file.unlink(missing_ok=True)
            self._stop_audit.set()
            if self._audit_thread is not None:
                self._audit_thread.join(timeout=10)
            for name in [n for n in self.processes if n != "pubsub"] + ["pubsub"]:
                if name in self.processes:
                    self.processes.pop(name).stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _create(call: Any) -> None:
    with contextlib.suppress(api_exceptions.AlreadyExists):
        call()

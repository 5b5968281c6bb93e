"""What a Pigeon process counts, for Prometheus (``/metrics``).

Every process of one ``pigeon serve`` (its API workers and its delivery process) or of one
``pigeon worker`` shares a directory of memory-mapped files (prometheus-client's multiprocess
mode; ``pigeon.launch`` makes it before anything counts), and its ``/metrics`` sums them.
Counters that follow the database (messages accepted, sent, finished) are counted after the
commit that wrote them (``db.on_commit``), so the sum over every process's ``/metrics``
equals what the database holds. What only the database knows (the queue's depth, the
webhook outbox) is read from it at each scrape (``pigeon.probes``).

Labels are bounded: carriers and links as configured, statuses from the lifecycle, routes as
their path templates, never a raw path, a number or an account.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"

ACCEPTED = Counter("pigeon_messages_accepted", "Messages accepted, by the door they came through "
                   "(zoomconnect, zohovoice, console, cli, keyword).", ["origin"])
SENT = Counter("pigeon_messages_sent", "Messages a carrier took (SCHEDULED -> SENT).", ["carrier"])
FINISHED = Counter("pigeon_messages_finished", "Messages that reached a final status, by carrier "
                   "(none: never sent) and status.", ["carrier", "status"])
RECEIPT_LATENCY = Histogram("pigeon_receipt_latency_seconds", "From a carrier's acceptance of a message to its "
                            "final receipt.", ["carrier"],
                            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400))
SUBMITS = Counter("pigeon_carrier_submits", "Submissions (SMPP: submit_sm) answered on a carrier link; "
                  "its rate is the link's throughput.", ["carrier", "link"])
LINK_UP = Gauge("pigeon_carrier_link_up", "1 while a carrier link is bound (the simulator: always).",
                ["carrier", "link"], multiprocess_mode="livesum")
LINK_WINDOW = Gauge("pigeon_carrier_link_window_used", "Submissions written on a link and not yet answered.",
                    ["carrier", "link"], multiprocess_mode="livesum")
LINK_WINDOW_SIZE = Gauge("pigeon_carrier_link_window_size", "The most a link may have unanswered.",
                         ["carrier", "link"], multiprocess_mode="livesum")
STANDBY = Gauge("pigeon_carrier_standby", "1 while a delivering process holds none of its carriers' binds: "
                "other processes hold them all (it is ready, and takes one if a holder dies).",
                multiprocess_mode="livesum")
WEBHOOKS = Counter("pigeon_webhook_deliveries", "Webhook deliveries tried, by outcome (delivered, retry: "
                   "refused or unreachable and tried again later, failed: given up).", ["outcome"])
HTTP_REQUESTS = Counter("pigeon_http_requests", "HTTP requests answered, by route template, method and status.",
                        ["route", "method", "status"])
HTTP_DURATION = Histogram("pigeon_http_request_duration_seconds", "Time to answer an HTTP request, by route.",
                          ["route"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
DB_IN_USE = Gauge("pigeon_db_connections_in_use", "Database connections checked out of the pools.",
                  multiprocess_mode="livesum")
DB_POOL = Gauge("pigeon_db_pool_size", "Database connections the pools keep (not counting overflow).",
                multiprocess_mode="livesum")


def shared() -> bool:
    """Whether this process counts into a directory shared with its siblings."""
    return bool(os.environ.get(DIRECTORY))


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The text format of every metric of this process's group (the shared directory, else
    this process alone), and of ``extra`` collectors (read now)."""
    if shared():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Default())
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


def forget(pid: int) -> None:
    """A process of the group is gone: its live gauges no longer count."""
    if shared():
        mark_process_dead(pid)


def live_sum(name: str) -> float:
    """The sum over the group's live processes of a ``livesum`` gauge (every label)."""
    registry = CollectorRegistry()
    if shared():
        MultiProcessCollector(registry)
    else:
        registry.register(_Default())
    return sum(sample.value for family in registry.collect() if family.name == name
               for sample in family.samples if sample.name == name)


class _Default(Collector):
    """This process's own metrics (no shared directory: tests, a library user)."""

    def collect(self):  # type: ignore[no-untyped-def]
        return REGISTRY.collect()

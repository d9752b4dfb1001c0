"""The ingester's own metrics, in the Prometheus exposition format (prometheus-client).

Read from the ingester at scrape time (a custom collector), so a scrape costs the same
whatever the data: nothing here touches the database. ``citytel ingest`` serves them on
its probes' port (``/metrics``); ``citytel up`` appends them to the API's ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from ingest.ingester import Ingester

_P = "citytel_ingester_"


def commit_histogram() -> Histogram:
    """Seconds from a batch taken to its commit (retries included); one per ingester."""
    return Histogram(
        f"{_P}commit_seconds",
        "Seconds from taking a batch to its commit, retries included",
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        registry=None,
    )


def detect_histogram() -> Histogram:
    """Seconds the detectors took per batch, on the kernels' thread."""
    return Histogram(
        f"{_P}detect_seconds",
        "Seconds the detectors took per batch",
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
        registry=None,
    )


class IngesterCollector(Collector):
    """Counters and gauges of one ingester, read when scraped."""

    def __init__(self, ingester: Ingester) -> None:
        self._ingester = ingester

    def collect(self) -> Iterator[Metric]:
        ing = self._ingester
        s, session = ing.stats, ing.session
        counters = {
            "deliveries": ("Messages the broker handed us, all channels", s.deliveries),
            "messages": ("Telemetry messages committed for the first time", s.messages),
            "duplicates": ("Messages whose identity was already committed", s.duplicates),
            "values": ("Values committed", s.values),
            "late_values": ("Values after their 1-minute window had closed", s.late_values),
            "batches": ("Batches committed", s.batches),
            "write_retries": ("Batch writes retried (database unavailable)", s.write_retries),
            "reconnects": ("Reconnections to the broker", session.reconnects),
            "sessions_lost": ("Reconnects that found no session", session.sessions_lost),
            "session_takeovers": ("Another client took our client id", session.takeovers),
            "read_pauses": ("Times reading stopped at the held-bytes bound", session.pauses),
        }  # fmt: skip
        for name, (doc, value) in counters.items():
            yield CounterMetricFamily(f"{_P}{name}", doc, value=value)
        letters = CounterMetricFamily(
            f"{_P}dead_letters", "Dead letters by reason", labels=["reason"]
        )
        for reason, n in sorted(s.dead_letters.items()):
            letters.add_metric([str(reason)], n)
        yield letters
        episodes = CounterMetricFamily(
            f"{_P}episodes_opened", "Episodes opened, by detector", labels=["detector"]
        )
        for detector, n in sorted(s.episodes_opened.items()):
            episodes.add_metric([detector], n)
        yield episodes
        gauges = {
            "held_messages": ("Messages in memory, not yet acknowledged", ing.held),
            "held_bytes": ("Payload bytes in memory, not yet acknowledged", session.held_bytes),
            "catalog_version": ("Catalog version in force", s.catalog_version),
            "connected": ("1 while connected to the broker", int(session.connected)),
        }  # fmt: skip
        for name, (doc, value) in gauges.items():
            yield GaugeMetricFamily(f"{_P}{name}", doc, value=value)
        yield from ing.commit_seconds.collect()
        yield from ing.detect_seconds.collect()


def registry_of(ingester: Ingester) -> CollectorRegistry:
    """A registry holding just this ingester's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(IngesterCollector(ingester))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(registry)

"""Prometheus metrics of a worker, all built here against an injected registry.

Label values come from closed sets only (stages, reason codes, statuses, rule ids from the rules
file, severities); never an entity key or any personal identifier.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from detectors.windows import ApplyStats


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events_consumed = Counter(
            "parcelwatch_events_consumed_total", "Messages read from input topics", ["source"], registry=registry
        )
        self.dead_letters = Counter(
            "parcelwatch_dead_letters_total",
            "Records sent to the dead-letter topic",
            ["stage", "reason"],
            registry=registry,
        )
        self.parcels_scored = Counter("parcelwatch_parcels_scored_total", "Parcel events scored", registry=registry)
        self.suspect_parcels = Counter(
            "parcelwatch_suspect_parcels_total",
            "Scored parcel events with suspect mass, by reason code",
            ["reason"],
            registry=registry,
        )
        self.window_updates = Counter(
            "parcelwatch_window_updates_total", "Window updates by outcome", ["status"], registry=registry
        )
        self.redis_round_trips = Counter(
            "parcelwatch_redis_round_trips_total", "Window store calls (one per batch)", registry=registry
        )
        self.alerts = Counter("parcelwatch_alerts_total", "Alerts raised", ["rule", "severity"], registry=registry)
        self.batch_size = Histogram(
            "parcelwatch_batch_size",
            "Events per detector batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000),
            registry=registry,
        )

    def window_stats(self, stats: ApplyStats) -> None:
        for status, count in stats.counts.items():
            if count:
                self.window_updates.labels(status=status).inc(count)


def serve(metrics: Metrics, address: str, port: int) -> None:
    """Expose ``/metrics`` on ``address:port`` (port 0: not served)."""
    if port:
        start_http_server(port, addr=address, registry=metrics.registry)

"""Prometheus metrics of a worker, all built here against an injected registry.

Label values come from closed sets only (sources, stages, reason codes, statuses, outcomes, rule
ids from the rules file, severities, topic names and partition numbers of our own topics); never
an entity key or any personal identifier.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from detectors.rules import RuleSet
from detectors.scoring import REASON_CODES
from detectors.windows import STATUSES, ApplyStats

SOURCES = ("canonical", "waybill-csv", "export-9610")
REDIS_OPERATIONS = ("window update", "parcel details", "alert store", "alert acknowledgement", "sample")
BROKER_OPERATIONS = ("alert publish", "dead-letter publish", "canonical publish")
# The steps of a batch, in order: staged (validated, scored, linked; CPU in the worker), then applied.
BATCH_STEPS = ("stage", "window update", "parcel details", "alert store", "alert publish", "alert acknowledgement")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Event time to alert: seconds in a live stream, days when an old stream is replayed.
EVENT_TO_ALERT_BUCKETS = (1, 5, 30, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        r = registry
        self.events_consumed = Counter(
            "parcelwatch_events_consumed_total", "Messages read from input topics", ["source"], registry=r
        )
        self.events_processed = Counter(
            "parcelwatch_events_processed_total",
            "Parcel events by outcome (applied, late, dead_letter)",
            ["source", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            "parcelwatch_dead_letters_total", "Records sent to the dead-letter topic", ["stage", "reason"], registry=r
        )
        self.parcels_scored = Counter("parcelwatch_parcels_scored_total", "Parcel events scored", registry=r)
        self.suspect_parcels = Counter(
            "parcelwatch_suspect_parcels_total",
            "Scored parcel events with suspect mass, by reason code",
            ["reason"],
            registry=r,
        )
        self.window_updates = Counter(
            "parcelwatch_window_updates_total", "Window updates by outcome", ["status"], registry=r
        )
        self.redis_round_trips = Counter(
            "parcelwatch_redis_round_trips_total",
            "Window store calls (one per batch; with several shards, up to two per batch and shard)",
            registry=r,
        )
        self.redis_errors = Counter(
            "parcelwatch_redis_errors_total",
            "Failed Redis steps, each retried with backoff",
            ["operation"],
            registry=r,
        )
        self.broker_errors = Counter(
            "parcelwatch_broker_errors_total",
            "Failed publishes to the broker (alerts, dead letters), each retried with backoff",
            ["operation"],
            registry=r,
        )
        self.alerts = Counter("parcelwatch_alerts_total", "Alerts raised", ["rule", "severity"], registry=r)
        self.alerts_already_published = Counter(
            "parcelwatch_alerts_already_published_total",
            "Alerts to publish again (a worker died, or a publish failed) found on the alerts topic already",
            registry=r,
        )
        self.batch_size = Histogram(
            "parcelwatch_batch_size",
            "Events per detector batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "parcelwatch_batch_processing_seconds",
            "Wall time to window and alert one batch (its store call and what follows it)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_step_seconds = Histogram(
            "parcelwatch_batch_step_seconds",
            "Wall time of each step of a batch or clock tick, retries included (an await's time includes"
            " whatever the worker did meanwhile, such as staging the next batch)",
            ["step"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.event_to_alert = Histogram(
            "parcelwatch_event_to_alert_seconds",
            "Processing time of an alert minus the event time of the parcel that raised it",
            buckets=EVENT_TO_ALERT_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "parcelwatch_consumer_lag",
            "Messages not yet processed, per owned partition",
            ["topic", "partition"],
            registry=r,
        )
        self.rules_info = Gauge("parcelwatch_rules_info", "Rules version in force (value 1)", ["version"], registry=r)
        self.rules_refused = Counter(
            "parcelwatch_rules_refused_total", "Rules control messages refused (the rules in force stay)", registry=r
        )
        self.redis_memory = Gauge("parcelwatch_redis_memory_bytes", "Redis used_memory, sampled", registry=r)
        self.redis_keys = Gauge(
            "parcelwatch_redis_keys", "Keys in the Redis database, sampled (about 3 per tracked entity)", registry=r
        )

        # Known label sets start at 0, so that rates exist from the first scrape on.
        for source in SOURCES:
            self.events_consumed.labels(source=source)
        for outcome in ("applied", "late", "dead_letter"):
            self.events_processed.labels(source="canonical", outcome=outcome)
        for operation in REDIS_OPERATIONS:
            self.redis_errors.labels(operation=operation)
        for operation in BROKER_OPERATIONS:
            self.broker_errors.labels(operation=operation)
        for step in BATCH_STEPS:
            self.batch_step_seconds.labels(step=step)
        for code in REASON_CODES:
            self.suspect_parcels.labels(reason=code)
        for status in STATUSES:
            self.window_updates.labels(status=status)
        for reason in ("not_json", "not_object", "too_large", "schema", "bad_time"):
            self.dead_letters.labels(stage="validate", reason=reason)
        self.dead_letters.labels(stage="window", reason="late")

    def known_rules(self, rules: RuleSet) -> None:
        """The version in force is the only one shown; alert counters of every rule in force start at 0."""
        self.rules_info.clear()
        self.rules_info.labels(version=rules.version).set(1)
        for rule in rules.rules:
            self.alerts.labels(rule=rule.id, severity=rule.severity)

    def window_stats(self, stats: ApplyStats) -> None:
        for status, count in stats.counts.items():
            if count:
                self.window_updates.labels(status=status).inc(count)

"""Prometheus metrics, one registry per running bot (tests run many bots)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The counters /metrics exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sent = Counter(
            "rehab_bot_messages_sent", "Messages delivered by the engine", ["kind"], registry=self.registry
        )
        self.failed = Counter(
            "rehab_bot_messages_failed", "Deliveries that failed for good", ["kind", "reason"], registry=self.registry
        )
        self.retried = Counter(
            "rehab_bot_messages_retried", "Deliveries re-queued after an error", registry=self.registry
        )
        self.backlog = Gauge("rehab_bot_due_backlog", "Deliveries due now and not yet sent", registry=self.registry)
        self.handler_latency = Histogram(
            "rehab_bot_handler_latency_seconds",
            "Time to handle one update",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.updates_dropped = Counter(
            "rehab_bot_updates_dropped",
            "Incoming updates dropped before any handler ran (over_limit: a sender over the inbound limit; "
            "crisis_repeat: a second crisis message within one window while over it)",
            ["reason"],
            registry=self.registry,
        )
        self.updates_crisis_over_limit = Counter(
            "rehab_bot_updates_crisis_over_limit",
            "Messages with a crisis phrase handled although their sender was over the inbound limit",
            registry=self.registry,
        )

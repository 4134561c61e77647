"""Prometheus metrics, one registry per hub instance (no process-global collectors)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class HubMetrics:
    """Requests, latency, errors by type, per service."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "lgsp_requests", "Requests through the gateway", ["service", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "lgsp_request_duration_seconds",
            "Time from request received to response sent",
            ["service"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "lgsp_errors", "Error responses by X-Road error type", ["service", "type"], registry=self.registry
        )
        self.in_flight = Gauge("lgsp_requests_in_flight", "Requests being handled", registry=self.registry)
        self.alerts = Counter(
            "lgsp_alerts", "Conditions an operator must look at", ["kind"], registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["HubMetrics"]

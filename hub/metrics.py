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
        # labels() validates and locks on every call; the gateway's hot path reuses the children.
        self._requests_by: dict[tuple[str, int], Counter] = {}
        self._latency_by: dict[str, Histogram] = {}
        self._errors_by: dict[tuple[str, str], Counter] = {}

    def count_request(self, service: str, status: int, seconds: float) -> None:
        """Count one answered request of `service` and observe how long it took."""
        requests = self._requests_by.get((service, status))
        if requests is None:
            requests = self._requests_by[service, status] = self.requests.labels(service, str(status))
        requests.inc()
        latency = self._latency_by.get(service)
        if latency is None:
            latency = self._latency_by[service] = self.latency.labels(service)
        latency.observe(seconds)

    def count_error(self, service: str, error_type: str) -> None:
        """Count one error response of `service` by its X-Road error type."""
        errors = self._errors_by.get((service, error_type))
        if errors is None:
            errors = self._errors_by[service, error_type] = self.errors.labels(service, error_type)
        errors.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["HubMetrics"]

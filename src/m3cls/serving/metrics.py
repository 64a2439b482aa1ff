"""Prometheus metrics of ``m3cls serve`` (``GET /metrics``), kept in a registry of their own per app.

Names (all prefixed ``m3cls_``):

- ``requests_total{route,status}``: HTTP requests by route (``/predict``, ``/labels``, ``/health``, ``/ready``,
  ``/metrics``, ``/``, ``/docs``, ``/openapi.json``, or ``other``) and status code, rejections included;
- ``request_duration_seconds{route}``: histogram of the time from the request to its answer;
- ``texts_total``, ``tokens_total``, ``padded_tokens_total``: texts and tokens run through the model (tokens
  without and with padding; ``rate(m3cls_tokens_total[1m])`` is tokens per second);
- ``batch_size_texts`` and ``batch_size_tokens``: histograms of each model batch, in texts and in padded tokens
  (texts x longest);
- ``queue_wait_seconds``: histogram of each text's wait from its request's arrival to its batch's start;
- ``queue_depth`` and ``queue_texts``: gauges, requests and texts waiting for the model now;
- ``requests_in_flight``: gauge, HTTP requests being handled now (the scrape that reads it included).
"""

from __future__ import annotations

from collections.abc import Callable

from ..files import require

ROUTES = ("/predict", "/labels", "/health", "/ready", "/metrics", "/", "/docs", "/openapi.json")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TEXT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TOKEN_BUCKETS = tuple(2 ** k for k in range(4, 18))


def route_of(path: str) -> str:
    """The route label: a known route, else ``other`` (so random paths cannot grow the label set)."""
    return path if path in ROUTES else "other"


class ServeMetrics:
    """The counters, histograms and gauges of one app; ``on_batch`` is the batcher's observer."""

    def __init__(self, queue_depth: Callable[[], float], queue_texts: Callable[[], float],
                 in_flight: Callable[[], float]):
        prom = require("prometheus_client", "serve", "serving metrics")
        CollectorRegistry, Counter, Gauge, Histogram = (prom.CollectorRegistry, prom.Counter, prom.Gauge,
                                                         prom.Histogram)
        self.registry = r = CollectorRegistry()
        self.requests = Counter("m3cls_requests", "HTTP requests by route and status code",
                                ["route", "status"], registry=r)
        self.latency = Histogram("m3cls_request_duration_seconds", "Time from request to answer, by route",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.texts = Counter("m3cls_texts", "Texts run through the model", registry=r)
        self.tokens = Counter("m3cls_tokens", "Tokens run through the model, without padding", registry=r)
        self.padded = Counter("m3cls_padded_tokens", "Tokens run through the model, with padding", registry=r)
        self.batch_texts = Histogram("m3cls_batch_size_texts", "Texts per model batch", buckets=TEXT_BUCKETS,
                                     registry=r)
        self.batch_tokens = Histogram("m3cls_batch_size_tokens", "Padded tokens per model batch (texts x longest)",
                                      buckets=TOKEN_BUCKETS, registry=r)
        self.queue_wait = Histogram("m3cls_queue_wait_seconds", "Wait of each text from arrival to its batch",
                                    buckets=LATENCY_BUCKETS, registry=r)
        Gauge("m3cls_queue_depth", "Requests waiting for the model", registry=r).set_function(queue_depth)
        Gauge("m3cls_queue_texts", "Texts waiting for the model", registry=r).set_function(queue_texts)
        Gauge("m3cls_requests_in_flight", "HTTP requests being handled", registry=r).set_function(in_flight)

    def on_request(self, route: str, status: int, seconds: float) -> None:
        """Count one answered HTTP request."""
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def on_batch(self, texts: int, tokens: int, padded: int, waits: list) -> None:
        """Record one model batch (called from the batching worker thread; prometheus_client is thread-safe)."""
        self.texts.inc(texts)
        self.tokens.inc(tokens)
        self.padded.inc(padded)
        self.batch_texts.observe(texts)
        self.batch_tokens.observe(padded)
        for wait in waits:
            self.queue_wait.observe(max(0.0, wait))

    def exposition(self) -> tuple[bytes, str]:
        """The text format body and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

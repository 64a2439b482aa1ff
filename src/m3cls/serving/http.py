"""The HTTP edge of ``m3cls serve``: the request gate, readiness and draining state, and graceful shutdown.

``RequestGate`` is a plain ASGI middleware, outermost in the app. It counts every request in the metrics
(rejections included), refuses what cannot be served before FastAPI sees it, and counts requests in flight
so shutdown can wait for them:

- ``POST`` without ``Content-Length``: 411; ``Content-Length`` over ``max_body_bytes``: 413;
- while shutting down: 503 with ``Retry-After`` (except ``/health``, ``/ready`` and ``/metrics``);
- with ``allowed_hosts``, a ``Host`` header naming another host: 400 (DNS rebinding to a keyless server).

A refusal first reads and discards the request body (at most ``drain_limit(max_body_bytes)`` bytes, for at
most 5 s), then answers. Closing a socket with unread bytes in it makes the kernel send a reset, and a client
that is still sending then loses the answer; after draining, the client always reads its 413. A body over the
drain limit gets its answer with ``Connection: close`` without being read.

``GracefulServer`` is uvicorn's server with another reaction to SIGTERM/SIGINT: it starts draining (new
requests get 503), waits until the requests in flight are answered or ``shutdown_timeout`` seconds have
passed, answers what still waits in the queue with 503, and then lets uvicorn stop. The process exits 0.
A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

from .metrics import route_of

logger = logging.getLogger(__name__)
ALWAYS_OPEN = ("/health", "/ready", "/metrics")
DRAIN_SECONDS = 5.0


def drain_limit(max_body_bytes: int) -> int:
    """How many bytes of a refused body are read and discarded: 4x the limit, at least 1 MiB."""
    return max(4 * max_body_bytes, 1 << 20)


@dataclass
class ServeState:
    """Readiness and drain state, touched only on the event loop thread."""

    ready: bool = False
    draining_since: float | None = None
    deadline: float | None = None
    in_flight: int = 0

    @property
    def draining(self) -> bool:
        return self.draining_since is not None

    def begin_draining(self, timeout: float) -> None:
        """Refuse new requests from now on and give the accepted ones ``timeout`` seconds to finish."""
        if self.draining_since is None:
            self.draining_since = time.monotonic()
            self.deadline = self.draining_since + timeout
            logger.info("shutting down: no new requests; finishing %d in flight (up to %g s)", self.in_flight,
                        timeout)


class RequestGate:
    """ASGI middleware: metrics per request, early refusals that the client can read, in-flight count."""

    def __init__(self, app, *, state: ServeState, metrics, max_body_bytes: int,
                 allowed_hosts: frozenset | None = None):
        self.app, self.state, self.metrics, self.max_body_bytes = app, state, metrics, max_body_bytes
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def send_and_note(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await self._refuse(scope, receive, send_and_note, *refusal)
                return
            self.state.in_flight += 1
            try:
                await self.app(scope, receive, send_and_note)
            finally:
                self.state.in_flight -= 1
        finally:
            self.metrics.on_request(route_of(scope["path"]), status[0], time.perf_counter() - started)

    def _refusal(self, scope) -> tuple[int, str, dict] | None:
        if self.allowed_hosts is not None:
            name = host_name(dict(scope["headers"]).get(b"host", b"").decode("latin-1"))
            if name not in self.allowed_hosts:
                return 400, f"Host {name!r} is not this server's; use http://127.0.0.1:PORT/", {}
        if self.state.draining and scope["path"] not in ALWAYS_OPEN:
            return 503, "the server is shutting down; retry shortly", {"retry-after": "1"}
        if scope["method"] != "POST":
            return None
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is None:
            return 411, "a Content-Length header is required", {}
        if not length.isdigit() or int(length) > self.max_body_bytes:
            return 413, f"request body over {self.max_body_bytes} bytes", {}
        return None

    async def _refuse(self, scope, receive, send, status: int, message: str, headers: dict) -> None:
        limit = drain_limit(self.max_body_bytes)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        too_big = declared.isdigit() and int(declared) > limit   # not worth reading: answer and close
        if too_big or not await _drain(receive, limit):
            headers = {**headers, "connection": "close"}
        body = json.dumps({"error": message}).encode()
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        raw += [(k.encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})


async def _drain(receive, limit: int) -> bool:
    """Read and discard the request body; True when it was read to the end within the byte and time limits."""
    deadline, total = time.monotonic() + DRAIN_SECONDS, 0
    while total <= limit:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            message = await asyncio.wait_for(receive(), left)
        except asyncio.TimeoutError:
            return False
        if message["type"] == "http.disconnect":
            return True
        total += len(message.get("body", b""))
        if not message.get("more_body", False):
            return True
    return False


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """True when ``host`` is a loopback name or address (only this machine can connect)."""
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() in LOOPBACK_NAMES


def allowed_hosts_for(host: str, api_key: str | None) -> frozenset | None:
    """The ``Host`` header values a keyless server accepts: its bound name and the loopback names; None (no
    check) with a key, or when bound to every interface (0.0.0.0, ::), whose names the server cannot know.

    >>> sorted(allowed_hosts_for("127.0.0.1", None))
    ['127.0.0.1', '::1', 'localhost']
    >>> allowed_hosts_for("0.0.0.0", None) is None, allowed_hosts_for("127.0.0.1", "k") is None
    (True, True)
    """
    if api_key is not None or host.strip("[]") in ("0.0.0.0", "::", ""):
        return None
    return LOOPBACK_NAMES | {host.strip("[]").lower()}


def host_name(header: str) -> str:
    """The host of a ``Host`` header, lower case, without its port (``[::1]:8000`` -> ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def uvicorn_config(app, host: str, port: int, limits, **extra):
    """uvicorn's settings for ``m3cls serve``: connection limit, keep-alive and request-head timeouts."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, limit_concurrency=limits.max_connections,
                          timeout_keep_alive=limits.keep_alive_timeout, http=_head_timeout(limits.header_timeout),
                          **{"log_level": "warning", **extra})


def _head_timeout(seconds: float):
    """uvicorn's h11 protocol that closes a connection whose request head has not arrived ``seconds`` after
    the connection opened or the previous answer (a slow client otherwise holds it forever)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadTimeoutProtocol(H11Protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def _arm(self) -> None:
            waiting_for = self.cycle   # a new request head replaces the cycle
            self.loop.call_later(seconds, self._expire, waiting_for)

        def _expire(self, waiting_for) -> None:
            if self.cycle is waiting_for and not self.transport.is_closing():
                self.transport.close()

    return HeadTimeoutProtocol


def run(app, host: str, port: int, shutdown_timeout: float, limits) -> None:
    """Serve ``app`` (from ``create_app``) until SIGTERM/SIGINT, then shut down gracefully; returns after.
    ``limits`` (a ServeLimits) sets uvicorn's connection limit and timeouts."""
    config = uvicorn_config(app, host, port, limits, timeout_graceful_shutdown=5)
    import uvicorn

    server = _graceful(uvicorn.Server)(config, app.state.serve_state, app.state.batcher, shutdown_timeout)
    server.run()
    logger.info("stopped")


def _graceful(base):
    """uvicorn.Server that drains on SIGTERM/SIGINT (uvicorn is imported only when serving)."""

    class GracefulServer(base):
        def __init__(self, config, state: ServeState, batcher, shutdown_timeout: float):
            super().__init__(config)
            self.state, self.batcher, self.shutdown_timeout = state, batcher, shutdown_timeout
            self.signals = 0

        def handle_exit(self, sig, frame) -> None:
            # A signal handler only sets flags; on_tick (on the event loop, every 0.1 s) does the work.
            # uvicorn's own handler re-raises the signal after shutdown, which would end the process with it
            # instead of exit code 0; this one does not.
            self.signals += 1
            if self.signals > 1:
                self.should_exit = True   # a second signal: stop now

        async def on_tick(self, counter: int) -> bool:
            state = self.state
            if self.signals and not state.draining:
                state.begin_draining(self.shutdown_timeout)
                self.batcher.stop_waiting()
            if state.draining and not self.should_exit:
                if state.in_flight == 0:
                    logger.info("shutdown: every accepted request was answered")
                    self.should_exit = True
                elif time.monotonic() >= state.deadline:
                    logger.warning("shutdown: %d requests still in flight after %g s; answering the waiting "
                                   "ones with 503", state.in_flight, self.shutdown_timeout)
                    self.batcher.close(timeout=0)
                    self.should_exit = True
            return await super().on_tick(counter)

    return GracefulServer

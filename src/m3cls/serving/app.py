"""The HTTP service: FastAPI app factory with token-budget micro-batching, limits, metrics and a web page.

The only module that imports fastapi. Routes: ``POST /predict``, ``GET /labels``, ``GET /health`` (liveness),
``GET /ready`` (readiness), ``GET /metrics`` (Prometheus), ``GET /`` (the page), and the OpenAPI docs at
``/docs``. With an API key, every route except ``/health``, ``/ready`` and the static page at ``/`` needs
``Authorization: Bearer KEY`` (the page asks for the key and sends it).

A request goes through the Classifier's own predict path, in its three steps: its texts are tokenized once
(``Classifier.encode_texts``, on one tokenizer thread off the event loop: the model's inputs, windows with
``--long_text chunks``, and the unknown-token shares), their inputs are packed with other requests' into batches
by ``m3cls.serving.batching`` and run with ``Classifier.logits_from_ids`` on the batching worker, and
``Classifier.predictions_from_encoded`` turns the logits into predictions (windows aggregated as ``predict``
does). What a request may ask is checked by ``Classifier.check_request``, as predict checks it. The app warms
the model up with one prediction at startup.

Example::

    >>> from m3cls import Classifier
    >>> from m3cls.serving.app import ServeLimits, create_app
    >>> app = create_app(Classifier.from_pretrained("demo/model"), ServeLimits())   # doctest: +SKIP
"""


import asyncio
import contextlib
import hmac
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import ConfigError
from ..files import require
from ..inference.requests import FIELDS
from .batching import BatcherClosed, MicroBatcher, QueueFull

logger = logging.getLogger(__name__)
# Chosen by benchmarks/load.py (README, "Serving load"); never below the model's max_length.
DEFAULT_MAX_BATCH_TOKENS = 8192
WARM_UP_TEXT = "This sentence warms the model up before the first request."
#: seconds one /predict may take: long enough for 64 texts at 8192 tokens on a CPU, short enough that a
#: client that gave up does not keep the model busy for minutes
DEFAULT_REQUEST_TIMEOUT = 60.0
#: words one request may ask to explain: each costs one model pass, so 256 words are 256 passes
DEFAULT_MAX_EXPLAIN_WORDS = 256
#: temperatures /predict accepts: logits / T stays finite and the probabilities meaningful in this range
TEMPERATURE_RANGE = (0.01, 100.0)


@dataclass(frozen=True)
class ServeLimits:
    """Bounds that keep the service alive under bad or heavy input, and how batches are packed.

    ``max_batch_tokens`` None means ``max(DEFAULT_MAX_BATCH_TOKENS, max_length)``, and 0 turns the token budget
    off (batches of ``max_batch_size`` texts in arrival order). ``request_timeout`` (default 60 s) bounds the
    work for one ``/predict``, None means no limit. ``explain`` False refuses ``"explain": true``;
    ``max_explain_words`` caps the words one request may ask to explain (one model pass each; default 256).
    ``max_connections`` is uvicorn's ``limit_concurrency`` (503 beyond it), ``keep_alive_timeout`` how long an
    idle connection stays open, ``header_timeout`` how long a client may take to send a request's head.
    """

    max_texts: int = 64
    max_chars: int = 20_000
    max_body_bytes: int = 2_000_000
    max_batch_size: int = 32
    max_wait_ms: float = 0.0
    max_queue: int = 256
    micro_batching: bool = True
    max_batch_tokens: int | None = None
    request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    explain: bool = True
    max_explain_words: int = DEFAULT_MAX_EXPLAIN_WORDS
    max_connections: int = 512
    keep_alive_timeout: float = 5.0
    header_timeout: float = 10.0

    def __post_init__(self):
        if self.max_batch_tokens is not None and self.max_batch_tokens < 0:
            raise ConfigError(f"--max_batch_tokens must be 0 (no token budget) or more, got {self.max_batch_tokens}")
        for name in ("request_timeout", "keep_alive_timeout", "header_timeout"):
            t = getattr(self, name)
            if t is not None and not (math.isfinite(t) and t > 0):
                raise ConfigError(f"--{name} must be a number of seconds above 0, got {t}")
        for name in ("max_explain_words", "max_connections"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be at least 1, got {getattr(self, name)}")


def batch_token_budget(requested: int | None, max_length: int) -> int:
    """The padded-token budget per batch; a budget below max_length could never hold a full-length text."""
    if requested is None:
        return max(DEFAULT_MAX_BATCH_TOKENS, max_length)
    if requested != 0 and requested < max_length:
        raise ConfigError(f"--max_batch_tokens {requested} is below max_length {max_length}: a text of "
                          f"max_length tokens would not fit in a batch; give at least {max_length}, or 0 for "
                          f"no token budget")
    return requested


def _fastapi():
    return require("fastapi", "serve", "serving"), require("pydantic", "serve", "serving")


def create_app(classifier, limits: ServeLimits = ServeLimits(), api_key: str | None = None,
               load_seconds: float | None = None, docs: bool = False, allowed_hosts: frozenset | None = None):
    """Build the FastAPI app around a loaded Classifier (torch or ONNX backend).

    ``docs`` serves the Swagger page at ``/docs`` (off by default: it loads Swagger UI from a CDN);
    ``/openapi.json`` is always served. ``allowed_hosts`` (see :func:`allowed_hosts_for`) refuses requests whose
    ``Host`` header names another host (DNS rebinding to a keyless server); None checks nothing.
    """
    _fastapi()
    if api_key is not None and not api_key.strip():
        raise ConfigError("the API key is empty (--api_key or $M3CLS_API_KEY): set a key, or unset it to serve "
                          "without one")
    from fastapi import Depends, FastAPI

    from .http import RequestGate, ServeState
    from .metrics import ServeMetrics

    budget = batch_token_budget(limits.max_batch_tokens, classifier.max_length)
    classifier.batch_tokens = 0  # the batcher packs by --max_batch_tokens and --max_batch_size: run as packed
    batcher = MicroBatcher(classifier.logits_from_ids, limits.max_batch_size, limits.max_wait_ms,
                           limits.max_queue, enabled=limits.micro_batching, max_batch_tokens=budget)
    state = ServeState()
    metrics = ServeMetrics(lambda: batcher.queue_depth, lambda: batcher.queued_texts, lambda: state.in_flight)
    batcher.observer = metrics.on_batch
    tokenizer = ThreadPoolExecutor(1, thread_name_prefix="m3cls-tokenize")  # one thread: tokenizers are not
                                                                            # safe to call concurrently
    @contextlib.asynccontextmanager
    async def lifespan(_):
        warm = _warm_up(classifier)
        state.ready = True
        logger.info("ready: %swarm-up batch in %.2f s; batches of at most %d texts and %s padded tokens",
                    "" if load_seconds is None else f"model loaded in {load_seconds:.2f} s, ", warm,
                    limits.max_batch_size, budget or "unlimited")
        yield
        batcher.close()
        tokenizer.shutdown(wait=False)

    app = FastAPI(title="m3cls", description="Text classification with a fine-tuned transformer.",
                  version=_version(), lifespan=lifespan, docs_url="/docs" if docs else None, redoc_url=None)
    app.state.batcher, app.state.serve_state, app.state.metrics = batcher, state, metrics

    async def run(ids: list[list[int]]):
        try:
            future = batcher.submit(ids)
        except QueueFull:
            raise _HTTPError(503, "the server is busy; retry shortly", {"Retry-After": "1"}) from None
        return await asyncio.wrap_future(future)

    async def classify(texts: list[str], temperature: float | None):
        """Classifier.predict's steps with the model in the batcher: (predictions, unknown-token shares)."""
        encoded = await asyncio.get_running_loop().run_in_executor(tokenizer, classifier.encode_texts, texts)
        logits = await run(classifier.model_inputs(encoded))
        return (classifier.predictions_from_encoded(encoded, logits, temperature),
                [item.unknown_share for item in encoded])

    async def explain(texts: list[str], predictions: list) -> None:
        """Word occlusion (m3cls.inference.explain): tokenized on the tokenizer thread, each text's variants run through
        the batcher like any request's texts (so they share its batches, budget and metrics)."""
        from ..inference.explain import occlusion_scores, plan_occlusions

        plans = await asyncio.get_running_loop().run_in_executor(tokenizer, plan_occlusions, classifier, texts)
        words = sum(len(plan.words) for plan in plans)
        if words > limits.max_explain_words:
            raise _HTTPError(413, f"\"explain\" would score {words} words (one model pass each); this server "
                                  f"explains at most {limits.max_explain_words} per request: send fewer or shorter "
                                  f"texts")
        for prediction, plan in zip(predictions, plans):
            logits = await run(plan.variants)
            prediction.attributions = occlusion_scores(classifier, plan, logits, prediction.decision or
                                                       prediction.label)

    authorize = _authorizer(api_key)
    _add_error_handlers(app)
    _add_routes(app, classifier, limits, classify, [Depends(authorize)], explain)
    _add_probes(app, classifier, batcher, state, metrics, [Depends(authorize)])
    if api_key is not None:
        _guard_docs(app, authorize)
    app.add_middleware(RequestGate, state=state, metrics=metrics, max_body_bytes=limits.max_body_bytes,
                       allowed_hosts=allowed_hosts)
    return app


def _warm_up(classifier) -> float:
    """Run one small batch so the first request does not pay for lazy initialisation; returns seconds."""
    start = time.perf_counter()
    classifier.predict([WARM_UP_TEXT])
    return time.perf_counter() - start


def _add_routes(app, classifier, limits: ServeLimits, classify, secured: list, explain) -> None:
    _, pydantic = _fastapi()
    from fastapi import Request
    from fastapi.responses import HTMLResponse

    from .page import PAGE, PAGE_HEADERS

    class PredictRequest(pydantic.BaseModel):
        texts: list[str]
        temperature: float | None = None
        explain: bool = False

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse(PAGE, headers=PAGE_HEADERS)

    @app.get("/labels", dependencies=secured)
    async def labels():
        return {"labels": list(classifier.labels.names), "temperature": classifier.temperature,
                "max_length": classifier.max_length, **classifier.task_info}

    @app.post("/predict", dependencies=secured)
    async def predict(body: PredictRequest, request: Request):
        _check(body, limits)
        if body.explain and not limits.explain:
            raise _HTTPError(422, "\"explain\" is turned off on this server (--no_explain): leave it out")
        try:
            classifier.check_request(body.temperature, body.explain, FIELDS)
        except ConfigError as e:
            raise _HTTPError(422, str(e)) from None

        async def answer():
            predictions, shares = await classify(body.texts, body.temperature)
            if body.explain:  # word occlusion: one model pass per word, through the batcher
                await explain(body.texts, predictions)
            return predictions, shares

        try:
            predictions, shares = await _until_done_or_gone(answer(), request, limits.request_timeout)
        except asyncio.TimeoutError:
            raise _HTTPError(504, f"no answer within the request timeout of {limits.request_timeout:g} s; "
                                  f"retry, or send fewer or shorter texts") from None
        except BatcherClosed as e:
            raise _HTTPError(503, f"{e}; retry shortly", {"Retry-After": "1"}) from None
        return {"predictions": [dict(p.to_dict(i), unknown_token_share=round(share, 4))
                                for i, (p, share) in enumerate(zip(predictions, shares))], **classifier.task_info}


async def _until_done_or_gone(work, request, timeout: float | None):
    """Await ``work``; cancel it (and so its texts still queued for the model) when the timeout passes
    (asyncio.TimeoutError) or the client disconnects (ClientGone; nobody is left to answer)."""
    task, gone = asyncio.ensure_future(work), asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({task, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if task in done:
        return task.result()
    task.cancel()
    if gone in done:
        logger.info("client disconnected; its request's remaining work is dropped")
        raise _HTTPError(499, "client disconnected")
    raise asyncio.TimeoutError


async def _disconnected(request) -> None:
    """Return when the client closes the connection (the body is already read, so the next message says so)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _add_probes(app, classifier, batcher: MicroBatcher, state, metrics, secured: list) -> None:
    from fastapi import Response
    from fastapi.responses import JSONResponse

    @app.get("/health")
    async def health():
        """Liveness: 503 when the batching worker thread has stopped (the process then cannot answer)."""
        alive = batcher.alive
        body = {"status": "ok" if alive else "the batching worker has stopped", "labels": len(classifier.labels),
                **batcher.stats.as_dict()}
        return JSONResponse(body, status_code=200 if alive else 503)

    @app.get("/ready")
    async def ready():
        """Readiness: 200 once the model is loaded and warmed up, 503 while shutting down or broken."""
        problem = ("shutting down" if state.draining else "warming up" if not state.ready
                   else "the batching worker has stopped" if not batcher.alive else None)
        if problem:
            return JSONResponse({"status": problem}, status_code=503, headers={"Retry-After": "1"})
        return {"status": "ready"}

    @app.get("/metrics", dependencies=secured, include_in_schema=False)
    async def prometheus():
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)


def _add_error_handlers(app) -> None:
    from fastapi.exceptions import RequestValidationError

    @app.exception_handler(RequestValidationError)
    async def invalid(_, exc):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        return _error(422, f"invalid request{' at ' + where if where else ''}: {first.get('msg', 'malformed')}; "
                           f"expected {{\"texts\": [\"...\"], \"temperature\": optional number from 0.01 to 100, "
                           f"\"explain\": optional true/false}}")

    @app.exception_handler(_HTTPError)
    async def http_error(_, exc):
        return _error(exc.status, exc.message, exc.headers)


def _error(status: int, message: str, headers: dict | None = None):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _authorizer(api_key: str | None):
    from fastapi import Request

    def authorize(request: Request) -> None:
        if api_key is None:
            return
        scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), api_key.encode()):
            raise _HTTPError(401, "missing or wrong API key: send 'Authorization: Bearer KEY'",
                             {"WWW-Authenticate": "Bearer"})

    return authorize


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        self.status, self.message, self.headers = status, message, headers


def _check(body, limits: ServeLimits) -> None:
    if not body.texts:
        raise _HTTPError(422, "'texts' is empty; send at least one text")
    if len(body.texts) > limits.max_texts:
        raise _HTTPError(413, f"{len(body.texts)} texts in one request; at most {limits.max_texts}")
    for i, text in enumerate(body.texts):
        if not text.strip():
            raise _HTTPError(422, f"texts[{i}] is empty")
        if len(text) > limits.max_chars:
            raise _HTTPError(413, f"texts[{i}] has {len(text)} characters; at most {limits.max_chars}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise _HTTPError(422, f"texts[{i}] is not valid Unicode (a lone surrogate at character {e.start}); "
                                  f"send text, not raw UTF-16 halves") from None
    t, (low, high) = body.temperature, TEMPERATURE_RANGE
    if t is not None and not (math.isfinite(t) and low <= t <= high):
        raise _HTTPError(422, f"temperature must be a number from {low:g} to {high:g}, got {t}")


def _guard_docs(app, authorize) -> None:
    """Put the API key in front of /docs and /openapi.json too."""
    from fastapi import Request

    @app.middleware("http")
    async def docs_key(request: Request, call_next):
        if request.url.path in ("/docs", "/openapi.json", "/redoc", "/docs/oauth2-redirect"):
            try:
                authorize(request)
            except _HTTPError as e:
                return _error(e.status, e.message, e.headers)
        return await call_next(request)


def serve(app, host: str, port: int, shutdown_timeout: float, limits: ServeLimits = ServeLimits(),
          api_key: str | None = None) -> None:
    """Run the app with uvicorn until SIGTERM/SIGINT, then drain gracefully (see ``m3cls.serving.http``)."""
    from .http import is_loopback, run

    check_address(host, port)
    if api_key is None and not is_loopback(host):
        logger.warning("serving on %s without an API key: anyone who can reach this address can use the model; "
                       "set --api_key (or $M3CLS_API_KEY), or bind to 127.0.0.1", host)
    run(app, host, port, shutdown_timeout, limits)


def check_address(host: str, port: int) -> None:
    """Raise ConfigError if ``host:port`` cannot be listened on (uvicorn would log it and exit 1)."""
    import socket

    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: not a port number; give 0 to 65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as uvicorn binds
            probe.bind(infos[0][4])
    except OSError as e:
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e}); pass another "
                          f"--port, or stop what uses it") from None


def _version() -> str:
    from .. import __version__

    return __version__

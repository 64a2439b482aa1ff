"""The HTTP service: FastAPI app factory with micro-batching, limits, optional API key, and a web page.

The only module that imports fastapi. Routes: ``POST /predict``, ``GET /labels``, ``GET /health``, ``GET /``
(the page), and the OpenAPI docs at ``/docs``. With an API key, every route except ``/health`` and the static
page at ``/`` needs ``Authorization: Bearer KEY`` (the page asks for the key and sends it).

Example::

    >>> from m3cls import Classifier
    >>> from m3cls.serving import ServeLimits, create_app
    >>> app = create_app(Classifier.from_pretrained("demo/model"), ServeLimits())   # doctest: +SKIP
"""


import asyncio
import contextlib
import hmac
import logging
import math
from dataclasses import dataclass

from .batching import MicroBatcher, QueueFull
from .errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeLimits:
    """Bounds that keep the service alive under bad or heavy input."""

    max_texts: int = 64
    max_chars: int = 20_000
    max_body_bytes: int = 2_000_000
    max_batch_size: int = 32
    max_wait_ms: float = 0.0
    max_queue: int = 256
    micro_batching: bool = True


def _fastapi():
    try:
        import fastapi
        import pydantic
    except ImportError:
        raise ConfigError('serving needs FastAPI and uvicorn; run: pip install "m3cls[serve]"') from None
    return fastapi, pydantic


def create_app(classifier, limits: ServeLimits = ServeLimits(), api_key: str | None = None):
    """Build the FastAPI app around a loaded Classifier (torch or ONNX backend)."""
    _, pydantic = _fastapi()
    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse

    from .webpage import PAGE

    class PredictRequest(pydantic.BaseModel):
        texts: list[str]
        temperature: float | None = None

    batcher = MicroBatcher(classifier.logits, limits.max_batch_size, limits.max_wait_ms, limits.max_queue,
                           enabled=limits.micro_batching)
    @contextlib.asynccontextmanager
    async def lifespan(_):
        yield
        batcher.close()

    app = FastAPI(title="m3cls", description="Text classification with a fine-tuned transformer.",
                  version=_version(), lifespan=lifespan)
    app.state.batcher = batcher

    def error(status: int, message: str, headers: dict | None = None):
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_, exc):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        return error(422, f"invalid request{' at ' + where if where else ''}: {first.get('msg', 'malformed')}; "
                          f"expected {{\"texts\": [\"...\"], \"temperature\": optional number > 0}}")

    @app.exception_handler(_HTTPError)
    async def http_error(_, exc):
        return error(exc.status, exc.message, exc.headers)

    @app.middleware("http")
    async def body_limit(request: Request, call_next):
        if request.method == "POST":
            length = request.headers.get("content-length")
            if length is None:
                return error(411, "a Content-Length header is required")
            if not length.isdigit() or int(length) > limits.max_body_bytes:
                return error(413, f"request body over {limits.max_body_bytes} bytes")
        return await call_next(request)

    def authorize(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
            raise _HTTPError(401, "missing or wrong API key: send 'Authorization: Bearer KEY'",
                             {"WWW-Authenticate": "Bearer"})

    secured = [Depends(authorize)]

    @app.get("/health")
    async def health():
        return {"status": "ok", "labels": len(classifier.labels), **batcher.stats.as_dict()}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return PAGE

    @app.get("/labels", dependencies=secured)
    async def labels():
        return {"labels": list(classifier.labels.names), "temperature": classifier.temperature,
                "max_length": classifier.max_length}

    @app.post("/predict", dependencies=secured)
    async def predict(body: PredictRequest):
        _check(body, limits)
        try:
            future = batcher.submit(body.texts)
        except QueueFull:
            raise _HTTPError(503, "the server is busy; retry shortly", {"Retry-After": "1"}) from None
        logits = await asyncio.wrap_future(future)
        predictions = classifier.predictions_from_logits(logits, body.temperature)
        return {"predictions": [p.to_dict(i) for i, p in enumerate(predictions)], **classifier.task_info}

    if api_key is not None:
        _guard_docs(app, authorize)

    return app


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
    t = body.temperature
    if t is not None and (not math.isfinite(t) or t <= 0):
        raise _HTTPError(422, f"temperature must be a number above 0, got {t}")


def _guard_docs(app, authorize) -> None:
    """Put the API key in front of /docs and /openapi.json too."""
    from fastapi import Request

    @app.middleware("http")
    async def docs_key(request: Request, call_next):
        if request.url.path in ("/docs", "/openapi.json", "/redoc", "/docs/oauth2-redirect"):
            try:
                authorize(request)
            except _HTTPError as e:
                from fastapi.responses import JSONResponse

                return JSONResponse({"error": e.message}, status_code=e.status, headers=e.headers)
        return await call_next(request)


def _version() -> str:
    from . import __version__

    return __version__

"""``m3cls serve`` and ``m3cls export``: deployment."""

from __future__ import annotations

import argparse
import json
import logging
import os

from ..errors import ConfigError
from ..files import require
from .common import add_threshold_flag, check_model_folder, load_classifier
from .helpfmt import finish

logger = logging.getLogger("m3cls")


def export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="m3cls export", description="Export a model to a standalone ONNX folder.")
    p.add_argument("--model_path", required=True, help="model folder from 'm3cls train'")
    p.add_argument("--output", required=True, help="folder to write (model.onnx, tokenizer, config, m3cls.json)")
    p.add_argument("--quantize", choices=("int8",),
                   help="also write a static int8 model (used by default), calibrated on training texts")
    p.add_argument("--calibration_data", default=None,
                   help="with --quantize int8: texts to calibrate on, any m3cls format (default: the training "
                        "data named in the model's m3cls.json)")
    p.add_argument("--calibration_size", type=int, default=128,
                   help="with --quantize int8: texts sampled from --calibration_data (default 128)")
    p.add_argument("--int8_format", choices=("auto", "u8s8", "u8u8"), default="auto",
                   help="with --quantize int8: weight format. auto (default): u8s8 (int8 weights) on CPUs with VNNI, "
                        "u8u8 (uint8 weights) on CPUs without (AVX2-only), where u8s8 can saturate; name one to "
                        "export for another machine")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --output")
    p.add_argument("--no_optimize", action="store_true",
                   help="skip onnxruntime's attention/LayerNorm fusion (a plainer graph for other runtimes)")
    return finish(p, "export")


def cmd_export(argv: list[str]) -> int:
    from ..export.onnx import export_onnx

    a = export_parser().parse_args(argv)
    check_model_folder(a.model_path)
    if a.calibration_data and not a.quantize:
        raise ConfigError("--calibration_data is for --quantize int8; add --quantize int8 or drop it")
    info = export_onnx(a.model_path, a.output, a.quantize, a.opset, a.overwrite, not a.no_optimize,
                       a.calibration_data, a.calibration_size, a.int8_format)
    print(json.dumps({"output": a.output, **info}))
    return 0


def serve_parser() -> argparse.ArgumentParser:
    from ..serving.app import ServeLimits

    d = ServeLimits()
    p = argparse.ArgumentParser(prog="m3cls serve", description="Serve a model over HTTP with a web page at /.")
    p.add_argument("--model_path", required=True, help="model folder from 'm3cls train' or 'm3cls export'")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    p.add_argument("--api_key", default=None,
                   help="require 'Authorization: Bearer KEY' (default: $M3CLS_API_KEY)")
    p.add_argument("--backend", default="torch", choices=("torch", "onnx"),
                   help="onnx: serve a folder written by 'm3cls export' with onnxruntime")
    p.add_argument("--batch_size", type=int, default=d.max_batch_size, help="most texts in one model batch")
    p.add_argument("--max_batch_tokens", type=int, default=None,
                   help="most padded tokens (texts x longest) in one model batch; 0: no token budget "
                        "(default: 8192, or max_length if larger)")
    p.add_argument("--max_wait_ms", type=float, default=d.max_wait_ms, help="longest wait to fill a batch")
    p.add_argument("--no_micro_batching", action="store_true", help="one request, one batch")
    p.add_argument("--max_texts", type=int, default=d.max_texts, help="most texts per request")
    p.add_argument("--max_chars", type=int, default=d.max_chars, help="most characters per text")
    p.add_argument("--max_body_bytes", type=int, default=d.max_body_bytes, help="largest request body; "
                   "larger ones get 413")
    p.add_argument("--max_queue", type=int, default=d.max_queue, help="most requests waiting")
    p.add_argument("--request_timeout", type=float, default=d.request_timeout,
                   help=f"seconds a /predict may take before it gets 504 and its work stops; 0: no limit "
                        f"(default: {d.request_timeout:g})")
    p.add_argument("--no_explain", action="store_true", help="refuse \"explain\": true (one model pass per word)")
    p.add_argument("--max_explain_words", type=int, default=d.max_explain_words,
                   help=f"most words one request may ask to explain, one model pass each (default: "
                        f"{d.max_explain_words})")
    p.add_argument("--max_connections", type=int, default=d.max_connections,
                   help=f"open connections and requests at once; more get 503 (default: {d.max_connections})")
    p.add_argument("--keep_alive_timeout", type=float, default=d.keep_alive_timeout,
                   help=f"seconds an idle connection stays open (default: {d.keep_alive_timeout:g})")
    p.add_argument("--header_timeout", type=float, default=d.header_timeout,
                   help=f"seconds a client may take to send a request's head before the connection is closed "
                        f"(default: {d.header_timeout:g})")
    p.add_argument("--docs", action="store_true",
                   help="serve the Swagger page at /docs (off by default: it loads Swagger UI from a CDN; "
                        "/openapi.json is always there)")
    p.add_argument("--shutdown_timeout", type=float, default=30.0,
                   help="on SIGTERM/SIGINT, seconds to finish accepted requests before exiting (default: 30)")
    p.add_argument("--max_length", type=int, default=None,
                   help="tokens per text; longer texts are cut (default: the value saved at training)")
    p.add_argument("--long_text", default="truncate", choices=("truncate", "chunks"),
                   help="chunks: classify overlapping max_length windows of a long text and aggregate them as "
                        "'m3cls predict --long_text chunks' does (default: truncate, whatever the model saved)")
    p.add_argument("--stride", type=int, default=None,
                   help="tokens shared by neighbouring windows (chunks; default: the model's saved stride)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (auto: the first GPU, else the CPU)")
    p.add_argument("--precision", default="auto", help="auto (bf16 where the hardware pays for it), fp32, bf16 or "
                                                       "fp16")
    add_threshold_flag(p)
    return finish(p, "serve", "server: network and limits")


def cmd_serve(argv: list[str]) -> int:
    import time

    from ..serving.app import ServeLimits, batch_token_budget, create_app, serve
    from ..serving.http import allowed_hosts_for

    a = serve_parser().parse_args(argv)
    a.api_key = a.api_key if a.api_key is not None else os.environ.get("M3CLS_API_KEY")
    for name in ("batch_size", "max_texts", "max_chars", "max_body_bytes", "max_queue"):
        if getattr(a, name) < 1:
            raise ConfigError(f"--{name} must be at least 1")
    if not a.shutdown_timeout > 0:
        raise ConfigError(f"--shutdown_timeout must be a number of seconds above 0, got {a.shutdown_timeout}")
    limits = ServeLimits(max_texts=a.max_texts, max_chars=a.max_chars, max_body_bytes=a.max_body_bytes,
                         max_batch_size=a.batch_size, max_wait_ms=a.max_wait_ms, max_queue=a.max_queue,
                         micro_batching=not a.no_micro_batching, max_batch_tokens=a.max_batch_tokens,
                         request_timeout=a.request_timeout or None, explain=not a.no_explain,
                         max_explain_words=a.max_explain_words, max_connections=a.max_connections,
                         keep_alive_timeout=a.keep_alive_timeout, header_timeout=a.header_timeout)
    if a.api_key is not None and not a.api_key.strip():
        raise ConfigError("the API key is empty (--api_key or $M3CLS_API_KEY): set a key, or unset "
                          "M3CLS_API_KEY to serve without one")
    if a.max_length is not None:
        batch_token_budget(a.max_batch_tokens, a.max_length)   # fail before the model loads
    require("uvicorn", "serve", "serving")
    a.trust_remote_code = a.allow_pickle = False
    started = time.perf_counter()
    clf = load_classifier(a)
    if clf.contract.long_text == "chunks" and clf.rule.threshold is not None and a.long_text == "truncate":
        logger.warning("the saved decision threshold was chosen on documents read in windows (--long_text chunks); "
                       "serve reads the first %d tokens of each text, so its rates may not hold here -- serve with "
                       "--long_text chunks for long documents", clf.max_length)
    app = create_app(clf, limits, a.api_key, load_seconds=time.perf_counter() - started, docs=a.docs,
                     allowed_hosts=allowed_hosts_for(a.host, a.api_key))
    logger.info("serving %s on http://%s:%d/%s%s", a.model_path, a.host, a.port, " (docs at /docs)" if a.docs else "",
                ", API key required" if a.api_key else "")
    serve(app, a.host, a.port, a.shutdown_timeout, limits, a.api_key)
    return 0

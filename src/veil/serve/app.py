"""The prediction service over HTTP (FastAPI): `create_app` builds it for one saved model, `run` serves it with
uvicorn. The OpenAPI schema is at /openapi.json, its pages at /docs. Who may call it, and how much, is
`veil.serve.security`'s: a bearer token on every endpoint but /health, a rate limit, a bound on requests in progress.

Logs are uvicorn's start and stop lines, and with `access_log` its access lines (client address, method, path,
status): no request body or vector reaches a log or an error message. The access log is off unless asked for, as in
gunicorn: a line costs the event loop 15 us (formatted and written to a file, measured alone) to 60 us (in a profile of
the server), against about 95 us for the app's own work on a request of 32 rows as .npy.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from veil import __version__
from veil.defaults import SERVE_BATCH_ROWS, SERVE_BATCH_WAIT_S, SERVE_MAX_BATCH, SERVE_MAX_BODY
from veil.serve.batching import MicroBatcher
from veil.serve.predictor import FINGERPRINT_HEADER, MEDIA_TYPES, NPY, Predictor, Refusal
from veil.serve.security import Access, ServeSecurity, guard, remove_new_token
from veil.serve.workers import bound_socket, serve_workers
from veil.threads import ENV as THREADS_ENV, threads_per_process

#: bodies up to this size are parsed on the event loop (32 rows of 404 as JSON: about 0.3 MB, 1 ms); larger ones in a
#: worker thread, so that one large request does not hold up the others and /health
INLINE_PARSE_BYTES = 1_000_000
#: how long a thread of a worker may hold Python's global lock while another waits for it (Python's default: 5 ms)
GIL_SWITCH_S = 0.0001
#: how `run` hands the service's settings to uvicorn's worker processes, which build their app with `factory`
CONFIG_ENV = "VEIL_SERVE_CONFIG"


class Health(BaseModel):
    status: str = Field(description='"ok" while the service answers')


class ModelInfo(BaseModel):
    kind: str = Field(description="the classifier kind (veil train --model)")
    classes: list[str] = Field(description="class names, in the order of each row of probabilities")
    fingerprint: str = Field(description="the masker or key fingerprint this model accepts data from")
    input_shape: list[int] = Field(description="the shape of one sample (a vector, or an image for image models)")
    max_batch: int = Field(description="the most rows one request may hold")


class VectorBatch(BaseModel):
    fingerprint: str = Field(description="the masker or key fingerprint of the data (GET /model names the one "
                                         "accepted)")
    vectors: list[list[float]] = Field(description="masked vectors, one row per sample")


class Prediction(BaseModel):
    labels: list[str] = Field(description="the most probable class of each sample")
    probabilities: list[list[float]] = Field(description="one row per sample, one column per class of GET /model")


class Problem(BaseModel):
    detail: str = Field(description="why the request was refused, in one line")


_BINARY = {"schema": {"type": "string", "format": "binary"}}
#: the request of POST /predict, declared here rather than as FastAPI parameters: solving a Header dependency took a
#: fifth of the route's time in a profile
PREDICT_REQUEST = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": VectorBatch.model_json_schema()},
    NPY: _BINARY, "application/octet-stream": _BINARY}},
    "parameters": [{"name": FINGERPRINT_HEADER, "in": "header", "required": False, "schema": {"type": "string"},
                    "description": "the fingerprint of an .npy body's data (JSON bodies state it in the body)"}]}
ANSWER = {"model": Prediction, "content": {NPY: _BINARY},
          "description": f"JSON, or with `Accept: {NPY}` the probabilities alone as .npy (one row per sample, one "
                         "column per class of GET /model)"}
REFUSALS = {409: "the request states no fingerprint, or another masker's or key's",
            413: "the body is over the size limit",
            415: "the Content-Type is neither JSON nor .npy",
            422: "the batch is empty, over the row limit, of the wrong shape, or holds NaN or infinite values"}

DESCRIPTION = f"""Predictions of one classifier trained by `veil train`, on data masked by the same masker or key.

Send vectors as JSON `{{"fingerprint": "...", "vectors": [[...], ...]}}`, or any model's samples (images for the
image models) as an .npy body (`numpy.save`; Content-Type application/x-npy or application/octet-stream) with the
fingerprint in the `{FINGERPRINT_HEADER}` header. Data masked otherwise are refused (409). The answer is JSON, or with
`Accept: {NPY}` the probabilities as .npy. .npy bodies both ways are the fast path: JSON costs more to parse than
the model costs to run. Concurrent requests share model calls (micro-batching); each answer is its own request's."""


def create_app(model_dir, max_batch: int = SERVE_MAX_BATCH, max_body: int = SERVE_MAX_BODY,
               batch_rows: int = SERVE_BATCH_ROWS, batch_wait_s: float = SERVE_BATCH_WAIT_S, *,
               access: Access) -> FastAPI:
    """The service for the model saved in `model_dir`: at most `max_batch` rows per request and `max_body` bytes
    per body; model calls of at most `batch_rows` rows, gathered for at most `batch_wait_s` (`MicroBatcher`); open
    to the callers `access` lets in (no default: an open service is asked for by `Access(token=None)`). A missing or
    invalid model is a VeilError naming its file."""
    predictor = Predictor.load(model_dir, max_batch)
    batcher = MicroBatcher(predictor.probabilities, batch_rows, batch_wait_s)
    app = FastAPI(title="veil prediction service", version=__version__, description=DESCRIPTION)
    app.add_exception_handler(Refusal, _refusal_response)
    guard(app, access)

    @app.get("/health", response_model=Health)
    async def health():
        return {"status": "ok"}

    @app.get("/model", response_model=ModelInfo)
    async def model():
        return predictor.describe()

    async def predict(request: Request) -> Response:
        media_type = _media_type(request)
        body = await _read_body(request, max_body)
        fingerprint = request.headers.get(FINGERPRINT_HEADER)
        if len(body) <= INLINE_PARSE_BYTES:
            samples = predictor.samples(body, media_type, fingerprint)
        else:
            samples = await run_in_threadpool(predictor.samples, body, media_type, fingerprint)
        content, answer_type = predictor.encode(await batcher.predict(samples), request.headers.get("accept", ""))
        return Response(content, media_type=answer_type)

    app.router.add_api_route("/predict", predict, methods=["POST"], route_class_override=PlainRoute,
                             response_class=Response, openapi_extra=PREDICT_REQUEST, responses={200: ANSWER, **{
                                 status: {"model": Problem, "description": text}
                                 for status, text in REFUSALS.items()}})
    return app


class PlainRoute(APIRoute):
    """A route whose endpoint takes the Request and returns a Response itself: FastAPI calls it as it is, without
    solving dependencies or validating a response model for it (a fifth of the event loop's time for POST /predict:
    about 30 us a request). Its OpenAPI entry comes from the route's arguments as for any route."""

    def get_route_handler(self):
        return self.endpoint


async def _refusal_response(request: Request, refusal: Refusal) -> JSONResponse:
    return JSONResponse({"detail": refusal.detail}, status_code=refusal.status)


def _media_type(request: Request) -> str:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        raise Refusal(415, f"Content-Type must be one of {', '.join(MEDIA_TYPES)}")
    return media_type


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as its declared length or the bytes actually received pass `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refusal(413, f"the body of {int(declared)} bytes is over this service's limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refusal(413, f"the body is over this service's limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_address(host: str, port: int) -> None:
    """Bind and release host:port, to refuse a busy port or an unknown host in one line rather than in uvicorn's
    log."""
    bound_socket(host, port).close()


def _keep_a_core_per_event_loop(workers: int) -> None:
    """CPU threads of each worker's model calls, unless `veil --threads` or VEIL_THREADS chose: its share of the
    idle cores less one, which its event loop keeps busy reading and answering requests meanwhile (a torch thread
    that shares a core with a busy thread stalls every operation's barrier: see `veil.threads`). Set once the model
    has loaded, for this process and, through the environment, for the worker processes."""
    from veil.devices import fix_threads

    if not os.environ.get(THREADS_ENV, "").strip():
        fix_threads(max(1, threads_per_process(workers) - 1))


def _hand_the_gil_over_often() -> None:
    """Let the model thread take Python's global lock back within GIL_SWITCH_S of asking. It drops the lock in every
    torch operation and needs it again in between, ten times a call; the event loop, busy reading requests, drops it
    only to wait for the network or when the switch interval forces it, 5 ms by default: a call of 2 ms could take
    20. With 0.1 ms, `veil bench serve --workers 2` answered 57,000-65,000 vectors/s against 41,000-50,000 (4 runs
    each, on a loaded machine); 0.5 ms and 0.05 ms did less well. For this process only: set when it starts to
    serve (in `run`'s process it changes nothing that matters when workers serve)."""
    sys.setswitchinterval(GIL_SWITCH_S)


def factory() -> FastAPI:
    """The app of a uvicorn worker process, from the settings `run` left in the environment (the token's file, never
    the token)."""
    _hand_the_gil_over_often()
    config = json.loads(os.environ[CONFIG_ENV])
    security = ServeSecurity(**config.pop("security"))
    return create_app(**config, access=security.access(security.token_path()))


def run(model_dir, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
        max_batch: int = SERVE_MAX_BATCH, max_body: int = SERVE_MAX_BODY,
        security: ServeSecurity = ServeSecurity(), access_log: bool = False) -> None:
    """Serve the model in `model_dir` until interrupted, with uvicorn's access log if `access_log`. The access
    options, the address and the model are checked here first, so that each is one error before uvicorn starts; with
    several `workers`, each worker process loads its own copy, listens on a socket of its own
    (`veil.serve.workers`), and counts its own rate limit and requests in progress."""
    import uvicorn

    security.check(host)
    _check_address(host, port)
    token_path = security.token_path()
    try:
        app = create_app(model_dir, max_batch, max_body, access=security.access(token_path))
        _keep_a_core_per_event_loop(workers)
        _hand_the_gil_over_often()
        security.announce(host, token_path)
        options = {**security.uvicorn_options(), "access_log": access_log}
        if workers == 1:
            uvicorn.run(app, host=host, port=port, **options)
        else:
            shared = replace(security, token_file=None if token_path is None else str(token_path))
            os.environ[CONFIG_ENV] = json.dumps({"model_dir": str(Path(model_dir).resolve()), "max_batch": max_batch,
                                                 "max_body": max_body, "security": asdict(shared)})
            serve_workers(f"{factory.__module__}:{factory.__name__}", host, port, workers, options)
    finally:
        remove_new_token(security, token_path)

"""`veil serve`, the third party's prediction service: its endpoints, its refusals (409, 413, 415, 422) with one-line
reasons, logs that never hold a vector, the command over a real port, and `veil bench serve`."""
from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import wait_healthy
from fastapi.testclient import TestClient

import veil
from veil.classifiers import classifier_class, load_classifier
from veil.cli import main
from veil.errors import VeilError
from veil.experiments.bench.serve import bench_serve, free_port
from veil.serve import Access, Predictor, create_app
from veil.serve.app import CONFIG_ENV, factory
from veil.serve.batching import MicroBatcher

SRC = str(Path(veil.__file__).resolve().parents[1])
#: the `veil` command in a new process (PYTHONPATH=SRC)
VEIL = [sys.executable, "-c", "import sys; from veil.cli import main; sys.exit(main(sys.argv[1:]))"]
FINGERPRINT = "aae:serve-test"
#: a vector value that must never reach a log or an answer
MARK = 4242.4242
NPY = "application/x-npy"
TOKEN = "serve-test-token-0123456789abcdef"
AUTH = {"authorization": f"Bearer {TOKEN}"}
ACCESS = Access(TOKEN.encode())


def _blobs(n=90, d=12, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    return (rng.normal(size=(n, d)) + 3 * np.eye(k, d)[y]).astype(np.float32), y


def _images(n=32):
    """uint8 channels-last images, as a keyed scheme's masked set holds them."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    X = rng.integers(0, 128, size=(n, 32, 32, 3), dtype=np.uint8)
    X[y == 1, :16] += 127
    return X, y


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[Path, np.ndarray]]:
    """Tiny saved models by kind, each with samples of its input shape."""
    root = tmp_path_factory.mktemp("served")
    cases = {"nn": (_blobs(), {"epochs": 2, "batch_size": 16}), "rf": (_blobs(), {"n_estimators": 10}),
             "cnn": (_images(), {"epochs": 1, "batch_size": 16, "widths": (4, 8)})}
    out = {}
    for kind, ((X, y), params) in cases.items():
        model = classifier_class(kind)(seed=0, **params)
        names = [f"class{i}" for i in range(y.max() + 1)]
        model.fit(X, y, class_names=names, fingerprint=FINGERPRINT).save(root / kind)
        out[kind] = (root / kind, X)
    return out


@pytest.fixture(scope="module")
def client(models) -> TestClient:
    return TestClient(create_app(models["nn"][0], max_batch=50, max_body=20_000, access=ACCESS), headers=AUTH)


def _json_body(vectors, fingerprint=FINGERPRINT) -> dict:
    return {"json": {"fingerprint": fingerprint,
                     "vectors": vectors.tolist() if isinstance(vectors, np.ndarray) else vectors}}


def _npy_body(samples, fingerprint=FINGERPRINT) -> dict:
    buffer = io.BytesIO()
    np.save(buffer, samples)
    headers = {"content-type": NPY} | ({"x-veil-fingerprint": fingerprint} if fingerprint is not None else {})
    return {"content": buffer.getvalue(), "headers": headers}


def _npy_header_only(shape) -> dict:
    """An .npy header declaring `shape` (float64), with no data after it."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return {"content": buffer.getvalue(), "headers": {"content-type": NPY, "x-veil-fingerprint": FINGERPRINT}}


def _raw_json(text: str) -> dict:
    return {"content": text.encode(), "headers": {"content-type": "application/json"}}


def _row_ending_with(literal: str) -> dict:
    """A one-row JSON batch whose last value is `literal` as written (NaN and Infinity are not JSON numbers, but
    Python's JSON reader takes them)."""
    return _raw_json(f'{{"fingerprint": "{FINGERPRINT}", "vectors": [[{"0, " * 11}{literal}]]}}')


def _assert_refused(response, status: int, reason: str) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and reason in detail, detail


def test_health_and_model_name_what_a_client_needs_and_no_weights(client):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/model").json() == {"kind": "nn", "classes": ["class0", "class1", "class2"],
                                           "fingerprint": FINGERPRINT, "input_shape": [12], "max_batch": 50}


@pytest.mark.parametrize("kind,encode", [("nn", _json_body), ("nn", _npy_body), ("rf", _json_body),
                                         ("cnn", _npy_body)])
def test_predictions_are_the_models_own(models, kind, encode):
    """Probabilities equal the saved model's predict_proba (to float32 rounding: the service predicts in a worker
    thread, where MKL may sum a small batch in another order); labels are the most probable class names."""
    folder, X = models[kind]
    answer = TestClient(create_app(folder, access=ACCESS), headers=AUTH).post("/predict", **encode(X[:7]))
    assert answer.status_code == 200, answer.text
    model = load_classifier(folder)
    expected = model.predict_proba(X[:7])
    np.testing.assert_allclose(answer.json()["probabilities"], expected, rtol=1e-5, atol=1e-7)
    assert answer.json()["labels"] == [model.class_names_[i] for i in expected.argmax(axis=1)]


@pytest.mark.parametrize("request_", [
    _json_body(np.zeros((2, 12)), fingerprint="aae:another-masker"),
    _npy_body(np.zeros((2, 12)), fingerprint="aae:another-masker"),
    {"json": {"vectors": [[0.0] * 12]}},
    _npy_body(np.zeros((2, 12)), fingerprint=None),
    {"json": {"vectors": [[0.0] * 12]}, "headers": {"x-veil-fingerprint": FINGERPRINT}},  # JSON states it in the body
], ids=["json-other", "npy-other", "json-missing", "npy-missing", "json-in-header-only"])
def test_data_without_the_models_fingerprint_are_refused_409(client, request_):
    _assert_refused(client.post("/predict", **request_), 409, "fingerprint")


ROW = [0.0] * 11


@pytest.mark.parametrize("request_,reason", [
    (_json_body(np.zeros((2, 5))), "shape"),
    (_npy_body(np.zeros((2, 3, 4))), "shape"),
    (_row_ending_with("NaN"), "NaN"),
    (_row_ending_with("-Infinity"), "infinite"),
    (_json_body([ROW + [1e39]]), "infinite"),  # beyond float32
    (_npy_body(np.full((1, 12), np.inf, dtype=np.float32)), "infinite"),
    (_json_body(np.zeros((0, 12))), "no rows"),
    (_npy_body(np.zeros((0, 12), dtype=np.float32)), "no rows"),
    (_json_body(np.zeros((51, 12))), "limit of 50"),
    (_json_body([ROW + [0.0], ROW]), "same length"),
    (_json_body([["0"] * 12]), "numbers"),
    (_raw_json("{not json"), "not valid JSON"),
    (_raw_json(f'{{"fingerprint": "{FINGERPRINT}"}}'), "JSON object"),
    (_npy_body(np.zeros((2, 12), dtype=np.complex64)), "complex64"),
    ({"content": _npy_body(np.zeros((2, 12)))["content"][:-8], "headers": {"content-type": NPY,
                                                                            "x-veil-fingerprint": FINGERPRINT}},
     "header declares"),
    (_npy_header_only((10**12, 12)), "header declares"),  # refused before numpy would allocate 96 TB
    (_npy_header_only((2**62, 4)), "header declares"),  # 2**65 bytes: a 64-bit product would wrap to 0
    ({"content": b"not an array", "headers": {"content-type": NPY, "x-veil-fingerprint": FINGERPRINT}}, ".npy"),
], ids=["json-width", "npy-shape", "nan", "infinity", "float32-overflow", "npy-inf", "json-empty", "npy-empty",
        "over-max-batch", "ragged", "strings", "not-json", "no-vectors", "complex", "truncated-npy", "npy-huge-shape",
        "npy-wrapping-shape", "not-npy"])
def test_bad_batches_are_refused_422_in_one_line(client, request_, reason):
    _assert_refused(client.post("/predict", **request_), 422, reason)


def test_bodies_over_the_limit_are_refused_413(client):
    """By the declared Content-Length before reading, and by the bytes received when no length is declared."""
    declared = {"content": b"{}", "headers": {"content-type": "application/json", "content-length": "20001"}}
    _assert_refused(client.post("/predict", **declared), 413, "limit")
    streamed = {"content": iter([b" " * 5000] * 5), "headers": {"content-type": "application/json"}}
    _assert_refused(client.post("/predict", **streamed), 413, "limit")


def test_other_content_types_are_refused_415(client):
    _assert_refused(client.post("/predict", content=b"0,1", headers={"content-type": "text/csv"}), 415,
                    "application/json")


def test_health_answers_while_a_prediction_runs(models, monkeypatch):
    """Model calls run in a thread of their own: a slow one does not hold up the event loop that answers /health."""
    running, finished = threading.Event(), threading.Event()

    def slow_predict(self, *args):
        running.set()
        time.sleep(1.5)
        finished.set()
        return np.full((1, 3), 1 / 3)

    monkeypatch.setattr(Predictor, "probabilities", slow_predict)
    app = create_app(models["nn"][0], access=ACCESS)

    async def health_during_prediction() -> bool:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://service",
                                     headers=AUTH) as http:
            prediction = asyncio.create_task(http.post("/predict", **_json_body(np.zeros((1, 12)))))
            await asyncio.to_thread(running.wait, 10)
            assert (await http.get("/health")).status_code == 200
            answered_first = not finished.is_set()
            assert (await prediction).status_code == 200
        return answered_first

    assert asyncio.run(health_during_prediction())


def test_no_vector_value_reaches_the_logs_or_an_answer(client, caplog):
    caplog.set_level(logging.DEBUG)
    vectors = np.full((3, 12), MARK)
    answers = [client.post("/predict", **_json_body(vectors)),
               client.post("/predict", **_json_body(vectors, fingerprint="aae:other")),
               client.post("/predict", **_json_body(vectors[:, :5])),
               client.post("/predict", **_npy_body(vectors[:, :5]))]
    assert [a.status_code for a in answers] == [200, 409, 422, 422]
    assert str(MARK) not in caplog.text and not any(str(MARK) in a.text for a in answers)


def test_a_model_without_a_fingerprint_is_not_served(tmp_path):
    X, y = _blobs()
    classifier_class("rf")(n_estimators=5).fit(X, y).save(tmp_path / "rf")
    with pytest.raises(VeilError, match="model.json: the model names no masker fingerprint"):
        create_app(tmp_path / "rf", access=ACCESS)


def test_a_missing_model_is_one_error_line_exit_2(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err == f"veil: error: {tmp_path / 'missing'}: model directory not found\n"


def test_a_busy_port_is_one_error_line_exit_2(models, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--model", str(models["nn"][0]), "--port", str(port)]) == 2
    assert capsys.readouterr().err == f"veil: error: cannot listen on 127.0.0.1 port {port} (Address already in use)\n"


def write_token(path: Path) -> Path:
    """TOKEN in a new owner-only file, as `veil serve --token-file` takes it."""
    path.touch(mode=0o600)
    path.write_text(TOKEN + "\n")
    return path


def test_worker_processes_build_the_app_from_the_environment(models, monkeypatch, tmp_path):
    """Workers read the token from its file (the environment names the file, never the token)."""
    security = {"token_file": str(write_token(tmp_path / "token")), "max_rps": 5.0}
    monkeypatch.setenv(CONFIG_ENV, json.dumps({"model_dir": str(models["rf"][0]), "max_batch": 7, "max_body": 999,
                                               "security": security}))
    worker = TestClient(factory())
    assert worker.get("/model").status_code == 401
    info = worker.get("/model", headers=AUTH).json()
    assert (info["kind"], info["max_batch"]) == ("rf", 7)


def test_veil_serve_answers_over_http(models, tmp_path):
    """The real command on a loopback port, with the token: every endpoint, then a clean stop on SIGINT; its log
    holds access lines (--access-log), the token file's path and no vector value nor the token."""
    port, log, token_file = free_port(), tmp_path / "serve.log", write_token(tmp_path / "token")
    command = [*VEIL, "serve", "--model", str(models["nn"][0]), "--port", str(port), "--token-file", str(token_file),
               "--access-log"]
    with open(log, "wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": SRC})
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, headers=AUTH) as http:
            wait_healthy(http, server)
            assert http.get("/model").json()["fingerprint"] == FINGERPRINT
            assert http.post("/predict", **_json_body(np.full((2, 12), MARK))).status_code == 200
            assert http.post("/predict", **_json_body(np.zeros((2, 12)), "aae:other")).status_code == 409
            body = http.get("/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]["content"]
            assert {"application/json", NPY} <= set(body)
            assert http.get("/docs").status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        code = server.wait(timeout=30)
    text = log.read_text()
    assert code == 0, text
    assert '"POST /predict HTTP/1.1" 200' in text and str(MARK) not in text
    assert f"token is in {token_file}" in text and TOKEN not in text


def test_bench_serve_reports_its_figures(models, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", SRC)  # the server is a new `veil` process
    figures = bench_serve(tmp_path / "serve.json", model_dir=models["nn"][0], duration_s=1, repeats=1)
    per_body = {"vectors_per_s_c16", "p99_ms_c16", "batch1000_s", "client_cpu_share_c16", "server_cpu_share_c16"}
    assert set(figures) == per_body | {f"{name}_{body}" for name in per_body for body in ("json", "npy")} | {
        "errors", "restart_failed_requests", "restart_s"}
    assert figures["errors"] == 0 and figures["vectors_per_s_c16"] > 0 and figures["restart_s"] > 0
    assert figures["vectors_per_s_c16"] == max(figures["vectors_per_s_c16_json"], figures["vectors_per_s_c16_npy"])
    assert 0 < figures["client_cpu_share_c16_npy"] < 1
    doc = json.loads((tmp_path / "serve.json").read_text())
    assert set(doc["meta"]) >= {"command", "commit", "seed", "wall_s", "machine"}
    assert doc["config"]["duration_s"] == 1 and doc["config"]["model"]["fingerprint"] == FINGERPRINT
    assert "--token-file" in doc["config"]["server"]  # its clients send the token, as any client must


def test_a_process_that_only_serves_imports_no_training_code(models):
    """Ignite and veil.training come with the first fit, not with loading a model: a restarted service answers about
    a second sooner (`restart_s` in `veil bench serve`)."""
    code = ("import sys\nfrom veil.serve import Access, create_app\ncreate_app(sys.argv[1], access=Access(None))\n"
            "print([m for m in ('ignite', 'veil.training', 'skops') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code, str(models["nn"][0])], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": SRC}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


# ---------------------------------------------------------------- the fast path: .npy answers, micro-batching


@pytest.mark.parametrize("encode", [_json_body, _npy_body], ids=["json-in", "npy-in"])
def test_npy_answers_on_accept_are_the_models_probabilities(models, client, encode):
    folder, X = models["nn"]
    request_ = encode(X[:5])
    request_["headers"] = {**request_.get("headers", {}), "accept": f"{NPY}, application/json;q=0.5"}
    answer = client.post("/predict", **request_)
    assert answer.status_code == 200 and answer.headers["content-type"] == NPY, answer.text
    np.testing.assert_allclose(np.load(io.BytesIO(answer.content)), load_classifier(folder).predict_proba(X[:5]),
                               rtol=1e-5, atol=1e-7)


def _served_concurrently(app, requests: list[dict]) -> list[httpx.Response]:
    """Each request sent at once on its own task, as concurrent clients would."""
    async def send_all():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://service",
                                     headers=AUTH) as http:
            return await asyncio.gather(*(http.post("/predict", **request_) for request_ in requests))

    return asyncio.run(send_all())


@pytest.fixture
def model_calls(monkeypatch) -> list[int]:
    """The rows of each model call the service makes."""
    calls, real = [], Predictor.probabilities

    def counted(self, samples):
        calls.append(len(samples))
        return real(self, samples)

    monkeypatch.setattr(Predictor, "probabilities", counted)
    return calls


def test_concurrent_requests_share_one_model_call_and_each_gets_its_own_rows(models, model_calls):
    """8 concurrent requests of 1 to 8 rows, JSON and .npy, within the batching wait: one model call, and each
    answer equal to a prediction of that request alone."""
    folder, X = models["nn"]
    parts = np.split(X[:36], np.cumsum(range(1, 8)))
    app = create_app(folder, batch_wait_s=0.5, access=ACCESS)
    answers = _served_concurrently(app, [(_json_body if i % 2 else _npy_body)(part) for i, part in enumerate(parts)])
    assert model_calls == [36]
    model = load_classifier(folder)
    for part, answer in zip(parts, answers):
        assert answer.status_code == 200, answer.text
        expected = model.predict_proba(part)
        np.testing.assert_allclose(answer.json()["probabilities"], expected, rtol=1e-5, atol=1e-7)
        assert answer.json()["labels"] == [model.class_names_[i] for i in expected.argmax(axis=1)]


def test_a_bad_request_never_fails_the_requests_batched_with_it(models, model_calls):
    """Bad rows (NaN, another width, another masker) are refused with their own request; the good requests sent
    alongside are answered from one model call that never saw them."""
    folder, X = models["nn"]
    good = [_json_body(X[:3]), _npy_body(X[3:7])]
    bad = [_row_ending_with("NaN"), _npy_body(X[:2, :5]), _json_body(X[:2], fingerprint="aae:other")]
    answers = _served_concurrently(create_app(folder, batch_wait_s=0.5, access=ACCESS), [good[0], *bad, good[1]])
    assert [a.status_code for a in answers] == [200, 422, 422, 409, 200]
    assert model_calls == [7]
    model = load_classifier(folder)
    for rows, answer in zip((X[:3], X[3:7]), (answers[0], answers[-1])):
        np.testing.assert_allclose(answer.json()["probabilities"], model.predict_proba(rows), rtol=1e-5, atol=1e-7)


def test_model_calls_hold_at_most_batch_rows_and_one_dtype():
    """Requests queue in order; a call takes them up to the row cap, and never mixes uint8 images with float32
    samples (a model scales uint8 pixels itself)."""
    from veil.serve.batching import MicroBatcher

    calls = []

    def model(samples):
        calls.append((len(samples), samples.dtype.name))
        return samples.reshape(len(samples), -1).sum(axis=1, dtype=np.float64)

    parts = [np.full((4, 3), i, dtype=np.uint8 if i == 2 else np.float32) for i in range(5)]

    async def send_all():
        batcher = MicroBatcher(model, max_rows=8, max_wait_s=0.2)
        return await asyncio.gather(*(batcher.predict(part) for part in parts))

    answers = asyncio.run(send_all())
    assert calls == [(8, "float32"), (4, "uint8"), (8, "float32")]
    for part, answer in zip(parts, answers):
        np.testing.assert_array_equal(answer, part.sum(axis=1, dtype=np.float64))


def test_large_bodies_are_parsed_off_the_event_loop(models, monkeypatch):
    """A body over INLINE_PARSE_BYTES is parsed in a worker thread, so that it holds up neither other requests nor
    /health; smaller ones on the event loop, where they cost less than a thread hand-off."""
    import veil.serve.app as service

    threads, real_samples, real_predict = {}, Predictor.samples, MicroBatcher.predict

    def samples(self, *args):
        threads["parse"] = threading.current_thread()
        return real_samples(self, *args)

    async def predict(self, samples):
        threads["loop"] = threading.current_thread()
        return await real_predict(self, samples)

    monkeypatch.setattr(Predictor, "samples", samples)
    monkeypatch.setattr(MicroBatcher, "predict", predict)
    folder, X = models["nn"]
    for limit, off_loop in ((10**6, False), (100, True)):
        monkeypatch.setattr(service, "INLINE_PARSE_BYTES", limit)
        http = TestClient(create_app(folder, access=ACCESS), headers=AUTH)
        assert http.post("/predict", **_json_body(X[:2])).status_code == 200
        assert (threads["parse"] is not threads["loop"]) == off_loop


@pytest.mark.parametrize("chosen_by_user", [None, "3"])
def test_model_calls_leave_a_core_to_the_event_loop(models, monkeypatch, chosen_by_user):
    """Without VEIL_THREADS (or veil --threads), `veil serve` gives model calls the idle cores less one; a count
    the user chose stays."""
    import uvicorn

    import veil.devices
    import veil.serve.app as service

    threads = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    monkeypatch.setattr(veil.devices, "fix_threads", threads.append)
    monkeypatch.setattr(service, "threads_per_process", lambda processes: 3 * processes)
    if chosen_by_user:
        monkeypatch.setenv("VEIL_THREADS", chosen_by_user)
    else:
        monkeypatch.delenv("VEIL_THREADS", raising=False)
    service.run(models["nn"][0], port=free_port(), workers=1)
    assert threads == ([] if chosen_by_user else [2])


def test_a_new_event_loop_finds_the_batcher_idle():
    """A request abandoned while it waited on one event loop (whose timer then never fires) does not hold up the
    requests of the next loop: a test client runs one loop per request."""
    batcher = MicroBatcher(lambda samples: samples, max_rows=8, max_wait_s=60)

    async def abandoned():
        waiting = asyncio.ensure_future(batcher.predict(np.zeros((1, 2))))
        await asyncio.sleep(0.01)
        waiting.cancel()

    async def answered():
        return await asyncio.wait_for(batcher.predict(np.ones((1, 2))), 5)

    asyncio.run(abandoned())
    batcher.max_wait_s = 0.01
    assert asyncio.run(answered()).tolist() == [[1.0, 1.0]]

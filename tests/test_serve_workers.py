"""`veil serve`'s speed settings: `--workers N` gives each worker a socket of its own, so that every worker gets
connections even while another is busy; the access log is off unless `--access-log` asks for it; a serving process
hands the GIL to its model thread often; POST /predict skips FastAPI's dependency solving."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fastapi.routing
import httpx
import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient

import veil
import veil.serve.app as service
from veil.classifiers import classifier_class
from veil.cli import main
from veil.errors import VeilError
from veil.experiments.bench.serve import free_port
from veil.serve import Access, create_app
from veil.serve.app import CONFIG_ENV, GIL_SWITCH_S, factory
from veil.serve.workers import serve_workers

SRC = str(Path(veil.__file__).resolve().parents[1])
#: an ASGI app factory whose answer is its worker's process id; GET /block holds its worker's event loop a while
PID_APP = '''
import os, time

def factory():
    async def app(scope, receive, send):
        if scope["path"] == "/block":
            time.sleep(1.5)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
    return app
'''


def _pid(url: str) -> int:
    """The process id that answers `url` on a new connection."""
    with httpx.Client(timeout=20) as http:
        return int(http.get(url).text)


def _wait_for_workers(base: str, server: subprocess.Popen, count: int) -> set[int]:
    """The process ids of `count` workers, once each has answered a new connection."""
    pids, deadline = set(), time.monotonic() + 60
    while len(pids) < count and time.monotonic() < deadline and server.poll() is None:
        try:
            pids.add(_pid(f"{base}/pid"))
        except httpx.TransportError:
            time.sleep(0.05)
    assert len(pids) == count, f"{len(pids)} of {count} workers answered"
    return pids


def test_each_worker_gets_connections_while_another_is_busy(tmp_path):
    """16 connections opened at once while one of two workers holds its event loop: some still wait for that worker
    (its own socket got them) rather than all going to the idle one, as with a socket shared between workers (where
    the first worker awake accepts every waiting connection, and one worker can end up with all the clients)."""
    (tmp_path / "pid_app.py").write_text(PID_APP)
    port = free_port()
    code = ("from veil.serve.workers import serve_workers\n"
            f"serve_workers('pid_app:factory', '127.0.0.1', {port}, 2, {{'lifespan': 'off', 'log_level': 'warning'}})")
    server = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": f"{SRC}:{tmp_path}"})
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_workers(base, server, 2)
        blocked = []
        blocker = threading.Thread(target=lambda: blocked.append(_pid(f"{base}/block")))
        blocker.start()
        time.sleep(0.3)  # the blocked worker is asleep in its request now
        with ThreadPoolExecutor(16) as pool:
            burst = list(pool.map(lambda _: _pid(f"{base}/pid"), range(16)))
        blocker.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert blocked[0] in burst and len(set(burst)) == 2


def test_a_busy_port_stops_the_workers_before_they_start(capsys):
    """The port is bound for every worker before any starts: a port taken by a socket that shares nothing is one
    error line, and no worker process is left."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(VeilError, match=f"cannot listen on 127.0.0.1 port {port}"):
            serve_workers("pid_app:factory", "127.0.0.1", port, 2, {})


@pytest.fixture
def served_options(monkeypatch) -> list[dict]:
    """The uvicorn options `veil serve` would start with (uvicorn.run for one worker, serve_workers for more),
    without serving."""
    options = []
    monkeypatch.setenv(CONFIG_ENV, "{}")  # restored at teardown: `run` leaves the workers' settings there
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: options.append(kwargs))
    monkeypatch.setattr(service, "serve_workers", lambda app, host, port, workers, kwargs: options.append(kwargs))
    return options


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("served") / "rf"
    X = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    classifier_class("rf")(seed=0, n_estimators=2).fit(X, np.arange(20) % 2, class_names=["a", "b"],
                                                       fingerprint="aae:workers-test").save(folder)
    return folder


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("flag", [[], ["--access-log"]])
def test_the_access_log_is_off_unless_asked_for(model_dir, served_options, workers, flag):
    command = ["serve", "--model", str(model_dir), "--port", str(free_port()), "--no-auth", "--workers", workers]
    assert main([*command, *flag]) == 0
    assert served_options[0]["access_log"] is bool(flag)


@pytest.fixture
def switch_interval():
    """Python's switch interval, as a test leaves it; restored after."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    yield
    sys.setswitchinterval(before)


def test_a_serving_process_hands_the_gil_to_its_model_thread_often(model_dir, served_options, switch_interval,
                                                                   monkeypatch):
    """`veil serve` (one worker) and each worker process (`factory`) shorten Python's switch interval: the model
    thread gets the lock back within 0.1 ms rather than 5 ms while the event loop is busy."""
    assert main(["serve", "--model", str(model_dir), "--port", str(free_port()), "--no-auth"]) == 0
    assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_S)
    sys.setswitchinterval(0.005)
    monkeypatch.setenv(CONFIG_ENV, json.dumps({"model_dir": str(model_dir), "security": {"no_auth": True}}))
    factory()
    assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_S)


def test_predict_skips_fastapis_dependency_solving_and_keeps_its_docs(model_dir, monkeypatch):
    """POST /predict is a PlainRoute: FastAPI calls its endpoint as it is (no dependencies solved: a fifth of the
    event loop's time per request), while /openapi.json still documents its bodies and refusals."""
    solved, real = [], fastapi.routing.solve_dependencies

    async def counted(*args, **kwargs):
        solved.append(kwargs.get("request") or args)
        return await real(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    http = TestClient(create_app(model_dir, access=Access(None)))
    body = {"fingerprint": "aae:workers-test", "vectors": np.zeros((2, 4)).tolist()}
    assert http.post("/predict", json=body).status_code == 200
    assert http.post("/predict", json={**body, "fingerprint": "aae:other"}).status_code == 409
    assert solved == []
    assert http.get("/model").status_code == 200 and len(solved) == 1  # the other routes are FastAPI's as before
    operation = http.get("/openapi.json").json()["paths"]["/predict"]["post"]
    assert {"application/json", "application/x-npy"} <= set(operation["requestBody"]["content"])
    assert {"200", "409", "413", "415", "422"} <= set(operation["responses"])

"""Who may call `veil serve`, and how much (issue 30): the bearer token on every endpoint but /health, the checks of
the access options before anything listens, TLS, the rate limit, and a flood that leaves the service answering with
its memory bounded. Servers listen on loopback only."""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import io
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import wait_healthy
from fastapi.testclient import TestClient

import veil
from veil.classifiers import classifier_class
from veil.cli import main
from veil.experiments.bench.serve import free_port
from veil.serve import app as serve_app
from veil.serve import create_app
from veil.serve.security import Access, RateLimit

SRC = str(Path(veil.__file__).resolve().parents[1])
VEIL = [sys.executable, "-c", "import sys; from veil.cli import main; sys.exit(main(sys.argv[1:]))"]
FINGERPRINT = "aae:security-test"
TOKEN = "security-test-token-0123456789abcdefABCDEF"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny random forest on 12-wide vectors (no torch: its server starts quickly)."""
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    X = (rng.normal(size=(60, 12)) + 3 * np.eye(2, 12)[y]).astype(np.float32)
    folder = tmp_path_factory.mktemp("secured") / "rf"
    classifier_class("rf")(n_estimators=5, seed=0).fit(X, y, class_names=["a", "b"], fingerprint=FINGERPRINT)\
        .save(folder)
    return folder


def _token_file(path: Path, text: str = TOKEN, mode: int = 0o600) -> Path:
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def _prediction() -> dict:
    return {"json": {"fingerprint": FINGERPRINT, "vectors": [[0.0] * 12]}}


def _assert_one_line(response, status: int, reason: str) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and reason in detail, detail


WRONG = {"none": {}, "wrong": {"authorization": "Bearer " + "x" * len(TOKEN)},
         "shorter": {"authorization": f"Bearer {TOKEN[:-1]}"}, "longer": {"authorization": f"Bearer {TOKEN}0"},
         "empty": {"authorization": "Bearer "}, "basic-scheme": {"authorization": f"Basic {TOKEN}"}}


@pytest.mark.parametrize("headers", WRONG.values(), ids=WRONG.keys())
@pytest.mark.parametrize("method,path", [("GET", "/model"), ("POST", "/predict"), ("GET", "/no-such-page")])
def test_a_request_without_the_token_is_refused_401(model_dir, headers, method, path):
    """No token, another one of the same length, one a character shorter or longer, an empty one, another scheme:
    401 with a one-line reason that never quotes what was sent, and nothing else of the service."""
    answer = TestClient(create_app(model_dir, access=Access(TOKEN.encode()))).request(
        method, path, headers=headers, **(_prediction() if method == "POST" else {}))
    _assert_one_line(answer, 401, "token")
    assert answer.headers["www-authenticate"] == "Bearer"
    presented = headers.get("authorization", "").partition(" ")[2]
    assert not presented or presented not in answer.text
    assert "probabilities" not in answer.text and FINGERPRINT not in answer.text


def test_every_token_is_compared_as_a_digest_of_one_length(model_dir, monkeypatch):
    """Whatever was sent (nothing, a shorter or a longer token), the comparison is `hmac.compare_digest` of two
    SHA-256 digests: its time depends neither on the token nor on the length of what was sent."""
    compared, compare = [], hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((len(a), len(b))) or compare(a, b))
    http = TestClient(create_app(model_dir, access=Access(TOKEN.encode())))
    statuses = [http.get("/model", headers=headers).status_code for headers in [*WRONG.values(), AUTH]]
    assert statuses == [401] * len(WRONG) + [200]
    assert compared == [(32, 32)] * (len(WRONG) + 1)


def test_the_token_lets_a_request_in_and_health_needs_none(model_dir):
    http = TestClient(create_app(model_dir, access=Access(TOKEN.encode())))
    assert http.get("/health").json() == {"status": "ok"}
    assert http.get("/model", headers=AUTH).json()["fingerprint"] == FINGERPRINT
    answer = http.post("/predict", headers={"Authorization": f"bearer {TOKEN}"}, **_prediction())
    assert answer.status_code == 200 and answer.json()["labels"] in (["a"], ["b"])


@pytest.mark.parametrize("public_docs", [False, True])
def test_docs_are_behind_the_token_unless_public_docs(model_dir, public_docs):
    http = TestClient(create_app(model_dir, access=Access(TOKEN.encode(), public_docs=public_docs)))
    for path in ("/docs", "/openapi.json"):
        assert http.get(path).status_code == (200 if public_docs else 401)
        assert http.get(path, headers=AUTH).status_code == 200
    assert http.get("/model").status_code == 401
    schema = http.get("/openapi.json", headers=AUTH).json()
    assert schema["components"]["securitySchemes"]["token"] == {"type": "http", "scheme": "bearer"}
    assert schema["paths"]["/predict"]["post"]["security"] == [{"token": []}]
    assert schema["paths"]["/health"]["get"]["security"] == []


def test_the_rate_limit_counts_each_client_and_refills():
    """A bucket of one second's worth per client address: the third request within a second at 2 per second is
    refused, another client is not, and half a second later one more passes."""
    now = [0.0]
    limit = RateLimit(app=None, rate=2, clock=lambda: now[0])
    assert [limit._take("10.0.0.1") for _ in range(3)] == [True, True, False]
    assert limit._take("10.0.0.2")
    now[0] = 0.4
    assert not limit._take("10.0.0.1")
    now[0] = 0.55
    assert limit._take("10.0.0.1") and not limit._take("10.0.0.1")


def test_many_addresses_keep_the_rate_table_small_and_a_limited_client_limited():
    """A scan from 20,000 addresses, one request each at 1,000 a second (at 2 per second a bucket fills in a second),
    while one client asks 4 times a second: the table never holds much more than two seconds' clients, and pruning
    never hands the busy client a fresh bucket (it gets no more than its burst plus 2 a second)."""
    now = [0.0]
    limit = RateLimit(app=None, rate=2, clock=lambda: now[0])
    largest, answers = 0, []
    for i in range(20_000):
        now[0] = i / 1_000
        limit._take(f"2001:db8::{i:x}")
        if i % 250 == 0:
            answers.append(limit._take("10.0.0.1"))
        largest = max(largest, len(limit.buckets))
    assert largest <= 2_100
    assert False in answers and sum(answers) <= limit.burst + limit.rate * now[0]


def test_a_burst_from_many_addresses_sweeps_the_table_once_per_refill(monkeypatch):
    """12,000 requests in one instant, each from a new address: the table is swept at most once, not once per new
    address (a sweep per request made each request cost milliseconds once the table was large). Counted, not timed."""
    sweeps = []
    forget_full = RateLimit._forget_full
    monkeypatch.setattr(RateLimit, "_forget_full", lambda self, now: sweeps.append(now) or forget_full(self, now))
    now = [1.0]
    limit = RateLimit(app=None, rate=2, clock=lambda: now[0])
    for i in range(12_000):
        limit._take(f"2001:db8::{i:x}")
    assert len(limit.buckets) == 12_000 and len(sweeps) <= 1
    now[0] += limit.refill
    limit._take("10.0.0.1")
    assert len(sweeps) == 1 and len(limit.buckets) == 1  # the next refill sweeps once, and every full bucket goes


def test_the_rate_limit_answers_429_then_recovers(model_dir):
    http = TestClient(create_app(model_dir, access=Access(TOKEN.encode(), max_rps=2)), headers=AUTH)
    answers = [http.get("/model") for _ in range(4)]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    _assert_one_line(answers[-1], 429, "2 requests per second")
    assert answers[-1].headers["retry-after"] == "1"
    assert http.get("/health").status_code == 200  # never counted
    time.sleep(1.0)
    assert http.get("/model").status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org"])
def test_no_auth_off_loopback_is_refused_in_one_line_exit_2(model_dir, host, capsys):
    assert main(["serve", "--model", str(model_dir), "--no-auth", "--host", host, "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("veil: error: --no-auth is only allowed on a loopback host") and err.count("\n") == 1


@pytest.mark.parametrize("text,mode,reason", [
    (TOKEN, 0o640, "token file is readable by group or others (mode 0640)"),
    ("short", 0o600, "at least 16"),
    ("two words-0123456789abcdef", 0o600, "at least 16"),
], ids=["readable-by-group", "short", "space"])
def test_a_bad_token_file_is_refused_in_one_line_exit_2(model_dir, tmp_path, capsys, text, mode, reason):
    token = _token_file(tmp_path / "token", text, mode)
    assert main(["serve", "--model", str(model_dir), "--token-file", str(token), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"veil: error: {token}: ") and reason in err and err.count("\n") == 1
    assert text not in err


def _tls_pair(folder: Path, name: str = "server") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (EC P-256), made by the openssl command."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    key.chmod(0o600)  # what OpenSSL 3 writes, whatever the openssl at hand does
    return cert, key


def test_half_a_tls_pair_or_a_mismatched_one_is_refused(model_dir, tmp_path, capsys):
    cert, _ = _tls_pair(tmp_path, "one")
    _, other_key = _tls_pair(tmp_path, "other")
    serve = ["serve", "--model", str(model_dir), "--port", str(free_port())]
    assert main([*serve, "--tls-cert", str(cert)]) == 2
    assert capsys.readouterr().err == "veil: error: give --tls-cert and --tls-key together\n"
    assert main([*serve, "--tls-cert", str(cert), "--tls-key", str(other_key)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"veil: error: {cert}: cannot load the TLS certificate and key") and err.count("\n") == 1


@pytest.mark.parametrize("mode", [0o640, 0o604])
def test_a_tls_key_others_may_read_is_refused_in_one_line_exit_2(model_dir, tmp_path, capsys, monkeypatch, mode):
    monkeypatch.setattr("uvicorn.run", lambda app, **options: None)  # were the key let through, nothing listens
    cert, key = _tls_pair(tmp_path)
    key.chmod(mode)
    assert main(["serve", "--model", str(model_dir), "--port", str(free_port()), "--tls-cert", str(cert),
                 "--tls-key", str(key)]) == 2
    assert capsys.readouterr().err == (f"veil: error: {key}: TLS key file is readable by group or others (mode "
                                       f"{mode:04o}); run `chmod 600 {key}`\n")


@pytest.mark.parametrize("host,tls,warned", [("0.0.0.0", False, True), ("0.0.0.0", True, False),
                                             ("127.0.0.1", False, False)])
def test_start_names_the_token_file_and_warns_of_plain_http_on_the_network(model_dir, tmp_path, capsys, monkeypatch,
                                                                         host, tls, warned):
    """What `veil serve` says before uvicorn starts (uvicorn itself is replaced: nothing listens): where its new
    token is, never the token, and one warning line when a network address gets plain HTTP. The new token's file
    is removed at the stop."""
    started = {}

    def fake_uvicorn_run(app, **options):
        said = capsys.readouterr().err
        token_file = Path(re.search(r"token is in (\S+);", said)[1])
        started.update(options, said=said, token_file=token_file, token=token_file.read_text().strip(),
                       mode=token_file.stat().st_mode & 0o777)

    monkeypatch.setattr("uvicorn.run", fake_uvicorn_run)
    monkeypatch.setattr(serve_app, "_check_address", lambda host, port: None)
    pair = _tls_pair(tmp_path) if tls else None
    options = ["--tls-cert", str(pair[0]), "--tls-key", str(pair[1])] if tls else []
    assert main(["serve", "--model", str(model_dir), "--host", host, *options]) == 0
    lines = started["said"].splitlines()
    assert lines[0] == (f"veil: the service's token is in {started['token_file']}; clients send 'Authorization: "
                        "Bearer <token>'")
    assert lines[1:] == ([f"veil: warning: {host} is reachable from the network and there is no TLS: the token and "
                          "the data cross it in the clear (give --tls-cert and --tls-key, or a TLS proxy)"]
                         if warned else [])
    assert started["host"] == host and started.get("ssl_certfile") == (str(pair[0]) if tls else None)
    assert len(started["token"]) >= 32 and started["token"] not in started["said"]
    assert started["mode"] == 0o600
    assert not started["token_file"].parent.exists()


def test_tls_serves_https_with_a_self_signed_pair(model_dir, tmp_path):
    cert, key = _tls_pair(tmp_path)
    port = free_port()
    with _server(model_dir, tmp_path, port, "--tls-cert", str(cert), "--tls-key", str(key)) as server:
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trust, timeout=10) as https:
            wait_healthy(https, server)
            assert https.get("/model", headers=AUTH).json()["fingerprint"] == FINGERPRINT
            assert https.get("/model").status_code == 401
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port gets no answer
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)


def test_a_client_cannot_dodge_the_rate_limit_by_naming_another_address(model_dir, tmp_path):
    """uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told not to: each request naming a new address would
    get a bucket of its own, and the third request within a second would pass."""
    port = free_port()
    with _server(model_dir, tmp_path, port, "--max-rps", "2") as server:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            wait_healthy(http, server)
            codes = [http.get("/model", headers={**AUTH, "x-forwarded-for": f"10.0.0.{n}"}).status_code
                     for n in range(4)]
    assert codes[:2] == [200, 200] and codes[-1] == 429, codes


@contextlib.contextmanager
def _server(model_dir, tmp_path, port, *options):
    """`veil serve` on a loopback port with TOKEN, in a new process, stopped by SIGINT at the end."""
    command = [*VEIL, "serve", "--model", str(model_dir), "--port", str(port),
               "--token-file", str(_token_file(tmp_path / "token")), *options]
    with open(tmp_path / "serve.log", "wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": SRC})
    try:
        yield server
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


FLOOD = 500
MAX_CONCURRENT = 4
#: each flood request's .npy body; 500 of them are 500 MB, which the server would hold if it read them all at once
BODY_ROWS = 1_000_000 // (4 * 13)
#: how far the server's peak memory may rise over its resident size before the flood. With the bound, what a refused
#: connection holds is what the event loop read before the 503 (flow control, not the body's size): the rise was
#: 24-27 MB with these bodies (30-67 MB on a loaded 2-core machine with bodies of a quarter of this size). Without
#: the bound (--max-concurrent 10000) the bodies themselves are held: 468 MB
MEMORY_RISE_LIMIT_MB = 128


def test_a_flood_leaves_health_answering_and_memory_bounded(model_dir, tmp_path):
    """500 requests at once, each with a megabyte of body (rows of 13, which the model refuses once read):
    with at most 4 in progress, the others are answered 503 before their bodies are read, /health answers all along,
    and the server's peak memory rises by far less than the 500 MB of bodies."""
    port = free_port()
    with _server(model_dir, tmp_path, port, "--max-concurrent", str(MAX_CONCURRENT), "--max-body-mb", "2") as server:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, headers=AUTH) as http:
            wait_healthy(http, server)
            assert http.post("/predict", **_prediction()).status_code == 200  # warm: the first prediction allocates
        before_kb = _memory_kb(server.pid, "VmRSS")
        statuses, health_s = asyncio.run(_flood(port))
        peak_kb = _memory_kb(server.pid, "VmHWM")
    print(f"flood: {statuses.count(503)} of {FLOOD} answered 503, {statuses.count(422)} read and refused 422, "
          f"{statuses.count(None)} cut; /health at most {max(health_s):.2f} s; server memory {before_kb / 1e3:.0f} MB "
          f"before, peak {peak_kb / 1e3:.0f} MB")
    assert (peak_kb - before_kb) / 1e3 < MEMORY_RISE_LIMIT_MB
    assert health_s and max(health_s) < 5
    assert statuses.count(503) > FLOOD // 2 and set(statuses) <= {422, 503, None}


def _memory_kb(pid: int, field: str) -> int:
    """A line of /proc/PID/status in kB: VmRSS (resident now) or VmHWM (resident at its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


async def _flood(port: int) -> tuple[list, list[float]]:
    """(the status of each of FLOOD requests sent at once, None where the connection was cut before an answer; the
    latencies of GET /health, asked every 50 ms meanwhile)."""
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((BODY_ROWS, 13), dtype=np.float32))
    body = buffer.getvalue()
    head = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/x-npy\r\nX-Veil-Fingerprint: {FINGERPRINT}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()

    async def request():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head)
            writer.write(body)  # sent while the answer is awaited: the server may answer before reading it
            status_line = await asyncio.wait_for(reader.readline(), 60)
            writer.close()
            return int(status_line.split()[1])
        except (OSError, IndexError, ValueError, asyncio.TimeoutError):
            return None

    async def health(done: asyncio.Event, latencies: list[float]):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            while not done.is_set():
                start = time.perf_counter()
                assert (await http.get("/health")).status_code == 200
                latencies.append(time.perf_counter() - start)
                await asyncio.sleep(0.05)

    done, latencies = asyncio.Event(), []
    probe = asyncio.create_task(health(done, latencies))
    statuses = await asyncio.gather(*(request() for _ in range(FLOOD)))
    done.set()
    await probe
    return list(statuses), latencies

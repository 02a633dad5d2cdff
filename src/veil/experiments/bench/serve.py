"""`veil bench serve`: the prediction service (`veil serve`, one worker) in a child process on a loopback port, driven
by concurrent clients (httpx and asyncio) in this process, then killed and restarted under load. The clients send
the service's token, as any client must (`auth=False` serves with --no-auth instead, to measure what the token costs).

Client and server share the machine's cores, which a deployment would not: on a small machine the figures are
lower bounds of what the service does alone.
"""
from __future__ import annotations

import asyncio
import io
import json
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from veil.errors import VeilError
from veil.experiments.bench import register_benchmark
from veil.experiments.bench.pipeline import VEIL_PROCESS
from veil.io.output import claim_output
from veil.keyfiles import write_new_key
from veil.results import write_results

CLIENTS = 16
BATCH = 32
LARGE_BATCH = 1000
#: the load runs this long before the server is killed, and again once it is healthy after the restart
RESTART_LOAD_S = 0.5
#: a client waits this long after a failed request before its next one
BACKOFF_S = 0.1
STARTUP_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 30.0
#: the fingerprint of the model trained here when no --model is given (its vectors are plain digits pixels)
DIGITS_FINGERPRINT = "bench:digits-pixels"


@register_benchmark("serve")
def bench_serve(json_path, model_dir=None, duration_s: float = 30.0, repeats: int = 5, seed: int = 0,
                force: bool = False, auth: bool = True) -> dict:
    """`veil serve` under 16 concurrent clients: a 1,000-row request, requests per second, p99 latency, and a kill
    and restart under load

    Serve `model_dir` (default: an nn trained here on scikit-learn's digits) and measure it from 16 clients.

    Figures: `batch1000_s` (one request of 1,000 rows, best of `repeats`), `rps_c16` and `p99_ms_c16` (successful
    requests per second and their 99th percentile latency, 16 clients sending batches of 32 for `duration_s`),
    `errors` (failed requests of that load), `restart_s` (from killing the server with SIGKILL under the same load
    to its new process answering /health) and `restart_failed_requests` (failed requests around the restart). The
    rows are random normal samples of the model's input shape: prediction time does not depend on their values.
    Every wait is bounded, and the server is killed at the end whatever happens. Run with nothing else on the
    machine."""
    with claim_output(json_path, force) as tmp, tempfile.TemporaryDirectory() as work:
        start = time.time()
        if model_dir is None:
            model_dir, model = Path(work) / "model", _train_digits_model(Path(work) / "model", seed)
        else:
            model = {"dir": str(model_dir)}
        token_file = write_new_key(Path(work) / "token") if auth else None
        server = ServiceProcess(model_dir, Path(work) / "server.log", token_file)
        try:
            figures, served = asyncio.run(_measure(server, duration_s, repeats, seed))
        finally:
            server.stop()
        write_results(tmp, figures, seed=seed, wall_s=time.time() - start, config={
            "model": {**model, **served}, "server": f"veil serve --model DIR --port PORT "
                                                     f"{'--token-file FILE' if auth else '--no-auth'} (1 worker, "
                                                     "loopback)",
            "clients": CLIENTS, "batch": BATCH, "large_batch": LARGE_BATCH, "duration_s": duration_s,
            "repeats": repeats, "body": "JSON" if len(served["input_shape"]) == 1 else ".npy",
            "restart": {"signal": "SIGKILL", "load_before_and_after_s": RESTART_LOAD_S,
                        "client_backoff_s": BACKOFF_S},
            "client": "one httpx.AsyncClient in the benchmark's process, on the server's machine"})
    return figures


def _train_digits_model(folder: Path, seed: int) -> dict:
    """An nn (default recipe) on scikit-learn's 1,797 digits as 64-pixel vectors, saved in `folder`."""
    from sklearn.datasets import load_digits

    from veil.classifiers import NNClassifier

    digits = load_digits()
    NNClassifier(seed=seed).fit(digits.data.astype(np.float32), digits.target, progress=False,
                                class_names=[str(d) for d in range(10)],
                                fingerprint=DIGITS_FINGERPRINT).save(folder)
    return {"trained_here": "nn (default recipe) on scikit-learn's 1,797 digits as 64-pixel vectors, fingerprint "
                            f"{DIGITS_FINGERPRINT!r} (no --model given)"}


def free_port() -> int:
    """A loopback TCP port that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServiceProcess:
    """`veil serve` in a child process on a free loopback port. Its output goes to a file: a pipe that nobody reads
    would fill with access log lines and stall the server."""

    def __init__(self, model_dir, log_path: Path, token_file: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        access = ["--token-file", str(token_file)] if token_file is not None else ["--no-auth"]
        self.command = [*VEIL_PROCESS, "serve", "--model", str(model_dir), "--port", str(self.port), *access]
        #: what every request but GET /health carries
        self.headers = {} if token_file is None else {"authorization": f"Bearer {token_file.read_text().strip()}"}
        self.log_path = log_path
        self.process = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        """Kill the server (SIGKILL: the benchmark's restart is a crash) and reap it."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    async def until_healthy(self) -> None:
        """Return once GET /health answers; a VeilError when the process exits or STARTUP_TIMEOUT_S passes."""
        import httpx

        deadline = time.perf_counter() + STARTUP_TIMEOUT_S
        async with httpx.AsyncClient(base_url=self.url, timeout=1.0) as client:
            while time.perf_counter() < deadline:
                if self.process.poll() is not None:
                    lines = self.log_path.read_text(errors="replace").strip().splitlines()
                    raise VeilError(f"veil serve exited with code {self.process.returncode}: "
                                    f"{lines[-1] if lines else 'no output'}")
                try:
                    if (await client.get("/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise VeilError(f"veil serve did not answer /health within {STARTUP_TIMEOUT_S:.0f} s")


@dataclass
class Tally:
    """What the clients of one load saw: the latency of each successful request, and the failed ones."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0


async def _measure(server: ServiceProcess, duration_s: float, repeats: int, seed: int) -> tuple[dict, dict]:
    """(the figures, what GET /model said of the served model)."""
    import httpx

    server.start()
    await server.until_healthy()
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT_S, limits=limits,
                                 headers=server.headers) as client:
        served = (await client.get("/model")).json()
        rows = np.random.default_rng(seed).normal(size=(LARGE_BATCH, *served["input_shape"])).astype(np.float32)
        large, small = _request(served, rows), _request(served, rows[:BATCH])
        batch1000_s = await _best_seconds(client, large, repeats)
        stop, start = asyncio.Event(), time.perf_counter()
        asyncio.get_running_loop().call_later(duration_s, stop.set)
        load = await _load(client, small, stop)
        elapsed = time.perf_counter() - start
        restart_s, restart_failed = await _restart_under_load(server, client, small)
    figures = {"batch1000_s": batch1000_s, "rps_c16": len(load.latencies) / elapsed,
               "p99_ms_c16": 1000 * float(np.percentile(load.latencies, 99)) if load.latencies else None,
               "errors": load.errors, "restart_failed_requests": restart_failed, "restart_s": restart_s}
    return figures, {key: served[key] for key in ("kind", "fingerprint", "input_shape")}


def _request(served: dict, rows: np.ndarray) -> dict:
    """httpx arguments of one POST /predict, encoded once: JSON for vector models, .npy (fingerprint in the
    X-Veil-Fingerprint header) for image models."""
    if len(served["input_shape"]) == 1:
        body = json.dumps({"fingerprint": served["fingerprint"], "vectors": rows.tolist()}).encode()
        return {"content": body, "headers": {"content-type": "application/json"}}
    buffer = io.BytesIO()
    np.save(buffer, rows)
    return {"content": buffer.getvalue(),
            "headers": {"content-type": "application/x-npy", "x-veil-fingerprint": served["fingerprint"]}}


async def _best_seconds(client, request: dict, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = await client.post("/predict", **request)
        timings.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise VeilError(f"veil serve refused the benchmark's batch ({response.status_code}: "
                            f"{response.json().get('detail')})")
    return min(timings)


async def _load(client, request: dict, stop: asyncio.Event) -> Tally:
    """CLIENTS clients, each sending `request` again as soon as the last one is answered, until `stop` is set."""
    tally = Tally()
    await asyncio.gather(*(_client(client, request, stop, tally) for _ in range(CLIENTS)))
    return tally


async def _client(client, request: dict, stop: asyncio.Event, tally: Tally) -> None:
    import httpx

    while not stop.is_set():
        start = time.perf_counter()
        try:
            ok = (await client.post("/predict", **request)).status_code == 200
        except httpx.HTTPError:
            ok = False
        if ok:
            tally.latencies.append(time.perf_counter() - start)
        else:
            tally.errors += 1
            await asyncio.sleep(BACKOFF_S)


async def _restart_under_load(server: ServiceProcess, client, request: dict) -> tuple[float, int]:
    """(seconds from SIGKILL to the new server's first healthy answer, requests that failed meanwhile and in the
    RESTART_LOAD_S before and after)."""
    stop = asyncio.Event()
    load = asyncio.create_task(_load(client, request, stop))
    try:
        await asyncio.sleep(RESTART_LOAD_S)
        start = time.perf_counter()
        server.stop()
        server.start()
        await server.until_healthy()
        restart_s = time.perf_counter() - start
        await asyncio.sleep(RESTART_LOAD_S)
    finally:
        stop.set()
        tally = await load
    return restart_s, tally.errors

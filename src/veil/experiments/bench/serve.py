"""`veil bench serve`: the prediction service (`veil serve`, one worker unless told) in a child process on a loopback
port, driven by 16 concurrent clients in this process with JSON and with .npy bodies, then killed and restarted under
load. The clients send the service's token, as any client must (`auth=False` serves with --no-auth instead, to
measure what the token costs).

Client and server share the machine's cores, which a deployment would not: on a small machine the figures are
lower bounds of what the service does alone. The clients are raw HTTP/1.1 keep-alive connections on asyncio streams,
each sending one request prepared in advance, so that they take as little of the cores as they can; the figures
say how much they took (`client_cpu_share_c16_*`).
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
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
#: request bodies measured, for vector models (image models: .npy only)
BODIES = ("json", "npy")
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
                workers: int = 1, force: bool = False, auth: bool = True) -> dict:
    """`veil serve` under 16 concurrent clients with JSON and .npy bodies: vectors per second, p99 latency, a
    1,000-row request, and a kill and restart under load

    Serve `model_dir` (default: an nn trained here on scikit-learn's digits) with `workers` processes and measure
    it from 16 clients.

    Figures, each with a `_json` and a `_npy` suffix for the body sent (image models: `_npy` only), and unsuffixed
    for the body of more vectors per second: `vectors_per_s_c16` and `p99_ms_c16` (rows answered per second and the
    99th percentile latency of successful requests, 16 clients sending batches of 32 for `duration_s` each),
    `batch1000_s` (one request of 1,000 rows, best of `repeats`; unsuffixed: the faster body), and
    `client_cpu_share_c16` and `server_cpu_share_c16` (CPU time of the clients and of the server over the load's
    wall time, as a share of all the machine's cores; the server's is None where /proc cannot be read). Then
    `errors` (failed requests of all loads), `restart_s` (from killing the server with SIGKILL under the load of the
    faster body to its new process answering /health) and `restart_failed_requests` (failed requests around the
    restart). The rows are random normal samples of the model's input shape: prediction time does not depend on
    their values. Every wait is bounded, and the server is killed at the end whatever happens. Run with nothing else
    on the machine."""
    with claim_output(json_path, force) as tmp, tempfile.TemporaryDirectory() as work:
        start = time.time()
        if model_dir is None:
            model_dir, model = Path(work) / "model", _train_digits_model(Path(work) / "model", seed)
        else:
            model = {"dir": str(model_dir)}
        token_file = write_new_key(Path(work) / "token") if auth else None
        server = ServiceProcess(model_dir, Path(work) / "server.log", token_file, workers)
        try:
            figures, served = asyncio.run(_measure(server, duration_s, repeats, seed))
        finally:
            server.stop()
        write_results(tmp, figures, seed=seed, wall_s=time.time() - start, config={
            "model": {**model, **served}, "server": f"veil serve --model DIR --port PORT --workers {workers} "
                                                     f"{'--token-file FILE' if auth else '--no-auth'} (loopback)",
            "clients": CLIENTS, "batch": BATCH, "large_batch": LARGE_BATCH, "duration_s": duration_s,
            "repeats": repeats, "bodies": list(_bodies(served)), "cores": os.cpu_count(),
            "restart": {"signal": "SIGKILL", "load_before_and_after_s": RESTART_LOAD_S,
                        "client_backoff_s": BACKOFF_S},
            "client": "one raw HTTP/1.1 keep-alive connection per client (asyncio streams) in the benchmark's "
                      "process, on the server's machine"})
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

    def __init__(self, model_dir, log_path: Path, token_file: Path | None = None, workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        access = ["--token-file", str(token_file)] if token_file is not None else ["--no-auth"]
        self.command = [*VEIL_PROCESS, "serve", "--model", str(model_dir), "--port", str(self.port), "--workers",
                        str(workers), *access]
        #: what every request but GET /health carries
        self.headers = {} if token_file is None else {"authorization": f"Bearer {token_file.read_text().strip()}"}
        self.log_path = log_path
        self.process = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def stop(self) -> None:
        """Kill the server and its worker processes (SIGKILL to its process group: the benchmark's restart is a
        crash) and reap it."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def cpu_seconds(self) -> float | None:
        """The CPU time so far of the server and its worker processes (all their threads; /proc), None where that
        cannot be read."""
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            ticks = sum(_cpu_ticks(process) for process in [pid, *map(int, children)])
        except OSError:
            return None
        return ticks / os.sysconf("SC_CLK_TCK")

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


def _cpu_ticks(pid: int) -> int:
    """User and system CPU ticks of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@dataclass
class Tally:
    """What the clients of one load saw: the latency of each successful request, and the failed ones."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0


class Connection:
    """One keep-alive HTTP/1.1 connection to the server, opened on first use and again after a failure. It sends
    bytes prepared in advance and reads only the status line and Content-Length of the answer: 16 clients on httpx took
    2.6 ms of CPU per request of 32 rows as .npy, three times the server's own, and these 0.07 ms."""

    def __init__(self, port: int):
        self.port = port
        self._streams = None

    async def send(self, request: bytes) -> int:
        """The answer's HTTP status; an OSError when the connection fails (it is then closed)."""
        try:
            if self._streams is None:
                self._streams = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = self._streams
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(_content_length(head))
            return int(head[9:12])
        except (OSError, EOFError, asyncio.LimitOverrunError, ValueError) as exc:
            self.close()
            raise OSError(f"the request failed: {exc}") from None

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


def _content_length(head: bytes) -> int:
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line[15:])
    raise ValueError("the answer has no Content-Length")


async def _measure(server: ServiceProcess, duration_s: float, repeats: int, seed: int) -> tuple[dict, dict]:
    """(the figures, what GET /model said of the served model)."""
    import httpx

    server.start()
    await server.until_healthy()
    async with httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT_S, headers=server.headers) as client:
        served = (await client.get("/model")).json()
    rows = np.random.default_rng(seed).normal(size=(LARGE_BATCH, *served["input_shape"])).astype(np.float32)
    figures, small = {}, {}
    for body in _bodies(served):
        large, small[body] = (_request(served, rows, body, server.headers),
                              _request(served, rows[:BATCH], body, server.headers))
        figures[f"batch1000_s_{body}"] = await _best_seconds(server.port, large, repeats)
        figures.update({f"{name}_{body}": value for name, value in (await _timed_load(server, small[body],
                                                                                        duration_s)).items()})
    best = max(_bodies(served), key=lambda body: figures[f"vectors_per_s_c16_{body}"])
    restart_s, restart_failed = await _restart_under_load(server, small[best])
    figures.update({name: figures[f"{name}_{best}"] for name in ("vectors_per_s_c16", "p99_ms_c16",
                                                                 "client_cpu_share_c16", "server_cpu_share_c16")})
    figures.update({"batch1000_s": min(figures[f"batch1000_s_{body}"] for body in _bodies(served)),
                    "errors": sum(figures.pop(f"errors_{body}") for body in _bodies(served)),
                    "restart_failed_requests": restart_failed, "restart_s": restart_s})
    return figures, {key: served[key] for key in ("kind", "fingerprint", "input_shape")}


def _bodies(served: dict) -> tuple[str, ...]:
    return BODIES if len(served["input_shape"]) == 1 else ("npy",)


def _request(served: dict, rows: np.ndarray, body: str, access: dict) -> bytes:
    """One POST /predict with the `access` headers (the token), encoded once: a JSON body, or an .npy body with the
    fingerprint in the X-Veil-Fingerprint header; the answer is asked for in the same format."""
    if body == "json":
        content = json.dumps({"fingerprint": served["fingerprint"], "vectors": rows.tolist()}).encode()
        headers = {"content-type": "application/json"}
    else:
        buffer = io.BytesIO()
        np.save(buffer, rows)
        content = buffer.getvalue()
        headers = {"content-type": "application/x-npy", "accept": "application/x-npy",
                   "x-veil-fingerprint": served["fingerprint"]}
    lines = ["POST /predict HTTP/1.1", "host: 127.0.0.1", f"content-length: {len(content)}",
             *(f"{name}: {value}" for name, value in {**headers, **access}.items())]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + content


async def _best_seconds(port: int, request: bytes, repeats: int) -> float:
    connection, timings = Connection(port), []
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            status = await asyncio.wait_for(connection.send(request), REQUEST_TIMEOUT_S)
            timings.append(time.perf_counter() - start)
            if status != 200:
                raise VeilError(f"veil serve refused the benchmark's batch of {LARGE_BATCH} rows (status {status})")
    finally:
        connection.close()
    return min(timings)


async def _timed_load(server: ServiceProcess, request: bytes, duration_s: float) -> dict:
    """The figures of CLIENTS clients sending `request` for `duration_s`: vectors per second, p99 latency, failed
    requests, and the CPU shares of the clients (this process) and of the server."""
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(duration_s, stop.set)
    start, client_cpu, server_cpu = time.perf_counter(), time.process_time(), server.cpu_seconds()
    load = await _load(server.port, request, stop)
    elapsed = time.perf_counter() - start
    server_used = None if server_cpu is None else server.cpu_seconds() - server_cpu
    machine = elapsed * (os.cpu_count() or 1)
    return {"vectors_per_s_c16": BATCH * len(load.latencies) / elapsed,
            "p99_ms_c16": 1000 * float(np.percentile(load.latencies, 99)) if load.latencies else None,
            "errors": load.errors, "client_cpu_share_c16": (time.process_time() - client_cpu) / machine,
            "server_cpu_share_c16": None if server_used is None else server_used / machine}


async def _load(port: int, request: bytes, stop: asyncio.Event) -> Tally:
    """CLIENTS clients, each on its own connection sending `request` again as soon as the last one is answered,
    until `stop` is set."""
    tally = Tally()
    await asyncio.gather(*(_client(Connection(port), request, stop, tally) for _ in range(CLIENTS)))
    return tally


async def _client(connection: Connection, request: bytes, stop: asyncio.Event, tally: Tally) -> None:
    try:
        while not stop.is_set():
            start = time.perf_counter()
            try:
                ok = await asyncio.wait_for(connection.send(request), REQUEST_TIMEOUT_S) == 200
            except (OSError, asyncio.TimeoutError):
                connection.close()
                ok = False
            if ok:
                tally.latencies.append(time.perf_counter() - start)
            else:
                tally.errors += 1
                await asyncio.sleep(BACKOFF_S)
    finally:
        connection.close()


async def _restart_under_load(server: ServiceProcess, request: bytes) -> tuple[float, int]:
    """(seconds from SIGKILL to the new server's first healthy answer, requests that failed meanwhile and in the
    RESTART_LOAD_S before and after)."""
    stop = asyncio.Event()
    load = asyncio.create_task(_load(server.port, request, stop))
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

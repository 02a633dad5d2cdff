"""`veil serve --workers N`: N worker processes, each listening on a socket of its own on the same port
(SO_REUSEPORT), so that the kernel spreads new connections over them.

Why not uvicorn's own workers: they share one listening socket, and whichever worker wakes first accepts every
connection waiting. A burst of connections (16 clients opening at once) can then all land on one worker, which serves
them alone: its event loop and its model thread take turns under Python's global lock, about one core in use.
`veil bench serve --workers 2` measured 35,600 vectors/s in that case, against 55,000-62,500 when the connections
happened to be spread. With a socket per worker, the kernel hashes each new connection (its addresses and ports) to
one of the sockets: every worker gets its share of the clients, and each core its worker.

The sockets are bound here, before any worker starts, so that a busy port is one error and no worker is left
without its socket; each worker gets its own (spawned afresh: forking a process that has loaded torch can hang its
threads) and builds the app from the settings `veil.serve.app.run` leaves in the environment. Stopping: SIGINT from
the terminal reaches every worker; SIGINT or SIGTERM sent to this process is passed on as SIGTERM. Each worker shuts
down as uvicorn does. If one worker exits, the others are stopped too, and the service ends with an error rather than
run short of a worker unseen.
"""
from __future__ import annotations

import multiprocessing
import signal
import socket
from multiprocessing.connection import wait

from veil.errors import VeilError

#: how long a worker may take to finish its requests after SIGTERM before it is killed
STOP_TIMEOUT_S = 10.0


def serve_workers(app: str, host: str, port: int, workers: int, options: dict) -> None:
    """Serve the app factory named by `app` ("module:function") from `workers` processes on host:port until
    interrupted; `options`: further uvicorn settings (TLS, proxy headers, access log)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise VeilError("--workers N needs sockets that share a port (SO_REUSEPORT: Linux, macOS, BSD), which this "
                        "system lacks; use --workers 1")
    listeners = [bound_socket(host, port, reuse_port=True) for _ in range(workers)]
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker, args=(app, listener, options), name=f"veil-serve-{n}")
                 for n, listener in enumerate(listeners)]
    previous = signal.signal(signal.SIGTERM, _interrupt)
    stopped = False
    try:
        for process in processes:
            process.start()
        for listener in listeners:  # each worker holds its own copy now
            listener.close()
        wait([process.sentinel for process in processes])
    except KeyboardInterrupt:
        stopped = True
    finally:
        _stop(processes)
        signal.signal(signal.SIGTERM, previous)
    failed = [process for process in processes if process.exitcode not in (0, -signal.SIGTERM, -signal.SIGINT)]
    if failed and not stopped:
        raise VeilError(f"a worker of veil serve stopped (exit code {failed[0].exitcode}); the others were stopped "
                        "too: see the log above")


def bound_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to host:port as uvicorn binds (SO_REUSEADDR), and with `reuse_port` one that other sockets
    of this user may bind too (SO_REUSEPORT); a one-line VeilError for a busy port or an unknown host."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise VeilError(f"cannot listen on {host} port {port} ({exc.strerror or exc})") from None
    return listener


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _stop(processes: list) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(STOP_TIMEOUT_S)
        if process.is_alive():
            process.kill()
            process.join()


def _worker(app: str, listener: socket.socket, options: dict) -> None:
    import uvicorn

    uvicorn.Server(uvicorn.Config(app, factory=True, **options)).run(sockets=[listener])

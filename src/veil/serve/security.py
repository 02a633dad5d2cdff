"""Who may call the prediction service, and how much: a bearer token on every endpoint but /health, a rate limit per
client, a bound on the requests in progress, and the API's description (/docs, /openapi.json) behind the token.

Each is a plain ASGI middleware (no request object is built for a request it turns down), and each refusal is a
one-line `{"detail": ...}` that never quotes what the client sent. `ServeSecurity` holds the command's options and
checks them before anything listens: `--no-auth` only on a loopback address, a token file or TLS key only if its owner
alone can read it, a TLS pair only if it loads.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import shutil
import ssl
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from starlette.responses import JSONResponse

from veil.defaults import SERVE_MAX_CONCURRENT
from veil.errors import VeilError
from veil.io.write import make_private
from veil.keyfiles import refuse_exposed_key
from veil.keys import MIN_SECRET_BYTES
from veil.serve.options import ServeOptions

#: answered to anyone, whatever the limits: a liveness probe must see the service alive while a flood is refused
OPEN_PATHS = frozenset({"/health"})
#: FastAPI's pages and schema, open to anyone only with --public-docs
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
#: RFC 6750's b64token: what an Authorization header can carry as it is
TOKEN_PATTERN = re.compile(rb"[A-Za-z0-9\-._~+/]+=*")
TOKEN_FILE_NAME = "token"


@dataclass(frozen=True)
class Access:
    """What `guard` enforces. `token`: the bearer token every request but /health must bring, or None for none (a
    loopback service only: `ServeSecurity` refuses it elsewhere); `max_rps`: requests per second per client address
    (bursts of one second's worth), None for no limit; `max_concurrent`: requests in progress at once, beyond which
    the service answers 503 before reading the body, so that memory stays within about `max_concurrent` bodies;
    `public_docs`: /docs and /openapi.json without the token."""
    token: bytes | None = field(repr=False)
    max_rps: float | None = None
    max_concurrent: int = SERVE_MAX_CONCURRENT
    public_docs: bool = False


def guard(app, access: Access) -> None:
    """Put `access` in front of `app` (a FastAPI app). The token check is outermost: a stranger's request costs a
    hash and is counted by no limit."""
    app.add_middleware(ConcurrencyBound, limit=access.max_concurrent)
    if access.max_rps is not None:
        app.add_middleware(RateLimit, rate=access.max_rps)
    if access.token is not None:
        open_paths = OPEN_PATHS | (DOCS_PATHS if access.public_docs else frozenset())
        app.add_middleware(TokenCheck, token=access.token, open_paths=open_paths)
        _document_bearer(app)


def _document_bearer(app) -> None:
    """Declare the bearer token in the OpenAPI schema, so that /docs offers an Authorize button for it."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()  # FastAPI keeps it as app.openapi_schema: completed here in place, once
            schema.setdefault("components", {})["securitySchemes"] = {"token": {"type": "http", "scheme": "bearer"}}
            for path, operations in schema["paths"].items():
                for operation in operations.values():
                    operation["security"] = [] if path in OPEN_PATHS else [{"token": []}]
        return app.openapi_schema

    app.openapi = openapi


async def _refuse(scope, receive, send, status: int, detail: str, headers: dict | None = None) -> None:
    await JSONResponse({"detail": detail}, status_code=status, headers=headers)(scope, receive, send)


class TokenCheck:
    """401 for a request without `Authorization: Bearer <token>`, or with another token. Digests of equal length are
    compared with `hmac.compare_digest`, so the time taken tells nothing of the token, not even its length."""

    def __init__(self, app, token: bytes, open_paths: frozenset):
        self.app = app
        self.digest = hashlib.sha256(token).digest()
        self.open_paths = open_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            return await self.app(scope, receive, send)
        presented = _bearer(scope)
        matches = hmac.compare_digest(hashlib.sha256(presented or b"").digest(), self.digest)
        if presented is not None and matches:
            return await self.app(scope, receive, send)
        detail = ("the token is not this service's" if presented is not None else
                  "this service needs its token: send the header 'Authorization: Bearer TOKEN' (veil serve names "
                  "the file that holds it)")
        await _refuse(scope, receive, send, 401, detail, {"WWW-Authenticate": "Bearer"})


def _bearer(scope) -> bytes | None:
    """The token of the request's `Authorization: Bearer` header, None without one."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            return token.strip() if scheme.lower() == b"bearer" else None
    return None


class RateLimit:
    """429 for a client (by address) past `rate` requests per second: a token bucket that holds one second's worth,
    so a burst of `rate` requests passes and then one every 1/`rate` seconds. /health is not counted.

    The table of buckets is swept once per `refill` (the time an empty bucket takes to fill), dropping the full ones:
    a full bucket is what a new client gets, so no client is let off early. Every bucket untouched for a `refill` is
    full, so the table holds only the clients of the last two refills, and each request's bucket is looked at by two
    sweeps at most: O(1) a request, amortised, whatever the number of addresses."""

    def __init__(self, app, rate: float, clock=time.monotonic):
        self.app = app
        self.rate = rate
        self.burst = max(rate, 1.0)
        self.refill = self.burst / rate
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}  # client -> (requests left, when counted)
        self.next_sweep = clock() + self.refill

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        client = scope["client"][0] if scope.get("client") else ""
        if self._take(client):
            return await self.app(scope, receive, send)
        await _refuse(scope, receive, send, 429, f"over this service's limit of {self.rate:g} requests per second "
                                                 "per client; slow down", {"Retry-After": "1"})

    def _take(self, client: str) -> bool:
        now = self.clock()
        if now >= self.next_sweep:
            self._forget_full(now)
        left, then = self.buckets.get(client, (self.burst, now))
        left = min(self.burst, left + (now - then) * self.rate)
        if left < 1:
            self.buckets[client] = (left, now)
            return False
        self.buckets[client] = (left - 1, now)
        return True

    def _forget_full(self, now: float) -> None:
        self.buckets = {client: (left, then) for client, (left, then) in self.buckets.items()
                        if left + (now - then) * self.rate < self.burst}
        self.next_sweep = now + self.refill


class ConcurrencyBound:
    """503 for a request that arrives while `limit` others are in progress (/health excepted), before its body is
    read: a flood costs a short answer per request, not a body each."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit
        self.active = 0  # one event loop per process: no lock needed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        if self.active >= self.limit:
            return await _refuse(scope, receive, send, 503, f"the service is busy ({self.limit} requests in "
                                                            "progress); try again shortly", {"Retry-After": "1"})
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine only: a loopback address or `localhost` (another name could resolve to
    anything, so it counts as reachable from the network)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(path) -> bytes:
    """The token in `path` (trailing newline dropped): a file only its owner may read, holding at least
    MIN_SECRET_BYTES characters that an Authorization header carries as they are (`veil keygen --out FILE` makes
    one)."""
    path = Path(path)
    try:
        token = path.read_bytes().rstrip(b"\r\n")
    except FileNotFoundError:
        raise VeilError("token file not found (create one with `veil keygen --out FILE`)", path) from None
    except OSError as exc:
        raise VeilError(f"cannot read token file ({exc.strerror or exc})", path) from None
    refuse_exposed_key(path, what="token file", remedy="")
    if len(token) < MIN_SECRET_BYTES or not TOKEN_PATTERN.fullmatch(token):
        raise VeilError(f"the token file must hold one token of at least {MIN_SECRET_BYTES} letters, digits or "
                        "-._~+/ (`veil keygen --out FILE` writes one)", path)
    return token


@dataclass(frozen=True)
class ServeSecurity(ServeOptions):
    """`veil serve`'s options (`ServeOptions`), checked before anything listens and applied to the service."""

    def check(self, host: str) -> None:
        """Refuse, in one line, what would expose the service: --no-auth off loopback, half a TLS pair, a TLS key
        that others may read, a pair that does not load, --no-auth together with a token file."""
        if self.no_auth and not is_loopback(host):
            raise VeilError(f"--no-auth is only allowed on a loopback host (127.0.0.1, ::1, localhost), not {host}: "
                            "anyone on the network could call the service")
        if self.no_auth and self.token_file:
            raise VeilError("give either --no-auth or --token-file, not both")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise VeilError("give --tls-cert and --tls-key together")
        if self.tls_cert is not None:
            _check_tls_pair(self.tls_cert, self.tls_key)

    def token_path(self) -> Path | None:
        """The file that holds the token (a new one unless --token-file), checked; None with --no-auth."""
        if self.no_auth:
            return None
        if self.token_file is not None:
            read_token(self.token_file)
            return Path(self.token_file)
        return _new_token_file()

    def announce(self, host: str, token_path: Path | None) -> None:
        """Tell the operator, on stderr, where the token is (never the token) and whether the network sees plain
        HTTP."""
        if token_path is not None:
            print(f"veil: the service's token is in {token_path}; clients send 'Authorization: Bearer <token>'",
                  file=sys.stderr, flush=True)
        if not is_loopback(host) and self.tls_cert is None:
            print(f"veil: warning: {host} is reachable from the network and there is no TLS: the token and the data "
                  "cross it in the clear (give --tls-cert and --tls-key, or a TLS proxy)", file=sys.stderr,
                  flush=True)

    def uvicorn_options(self) -> dict:
        """TLS when asked; proxy headers off, so the rate limit keys on the connection's own address and a client
        cannot name another with X-Forwarded-For (uvicorn trusts it from 127.0.0.1 by default)."""
        tls = {} if self.tls_cert is None else {"ssl_certfile": self.tls_cert, "ssl_keyfile": self.tls_key}
        return {"proxy_headers": False, **tls}

    def access(self, token_path: Path | None) -> Access:
        return Access(None if token_path is None else read_token(token_path), max_rps=self.max_rps,
                      max_concurrent=self.max_concurrent, public_docs=self.public_docs)


def _new_token_file() -> Path:
    folder = make_private(tempfile.mkdtemp(prefix="veil-serve-"))
    path = folder / TOKEN_FILE_NAME
    path.touch(mode=0o600)
    make_private(path).write_text(secrets.token_urlsafe(32) + "\n")
    return path


def remove_new_token(security: ServeSecurity, token_path: Path | None) -> None:
    """Remove the folder of a token made at start (a --token-file is the operator's and stays)."""
    if token_path is not None and security.token_file is None:
        shutil.rmtree(token_path.parent, ignore_errors=True)


def _check_tls_pair(cert: str, key: str) -> None:
    """Load the pair as uvicorn will, so that a missing file or a key that does not match is one line, not a
    traceback of uvicorn's. A private key that group or others may read is refused, as a token file is."""
    for path in (cert, key):
        if not Path(path).is_file():
            raise VeilError("TLS file not found", path)
    refuse_exposed_key(Path(key), what="TLS key file", remedy="")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise VeilError(f"cannot load the TLS certificate and key ({exc.strerror or exc})", cert) from None

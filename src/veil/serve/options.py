"""`veil serve`'s options of access and transport as plain values, importable without FastAPI, so that the command
line carries them as one value; `veil.serve.security.ServeSecurity` checks and applies them."""
from __future__ import annotations

from dataclasses import dataclass

from veil.defaults import SERVE_MAX_CONCURRENT


@dataclass(frozen=True)
class ServeOptions:
    """--token-file, --no-auth, --tls-cert, --tls-key, --max-rps, --max-concurrent, --public-docs. Without
    `token_file`, a new random token is written to a new owner-only folder at start and removed at a clean stop."""
    token_file: str | None = None
    no_auth: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    max_rps: float | None = None
    max_concurrent: int = SERVE_MAX_CONCURRENT
    public_docs: bool = False

"""Reading and writing secrets for the keyed schemes (key files, environment variables), and the stand-in secret of
benchmarks. The key primitives are `veil.keys`; this module sits beside it, below the schemes and the maskers, since
the CLI and the experiments read keys without building a masker."""
from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from veil.errors import VeilError
from veil.io.output import claim_output
from veil.io.write import make_private
from veil.keys import MIN_SECRET_BYTES


def read_secret(key_file=None, key_env: str | None = None, insecure_permissions: bool = False) -> bytes:
    """The secret from exactly one of a key file and an environment variable, as bytes (trailing newline dropped).

    A key file that group or others may read is refused, as ssh refuses such a private key, unless
    `insecure_permissions`."""
    if (key_file is None) == (key_env is None):
        raise VeilError("give the secret with exactly one of --key-file FILE and --key-env VARIABLE")
    if key_file is not None:
        path = Path(key_file)
        try:
            secret, where = path.read_bytes().rstrip(b"\r\n"), path
        except FileNotFoundError:
            raise VeilError("key file not found (create one with `veil keygen --out FILE`)", path) from None
        except OSError as exc:
            raise VeilError(f"cannot read key file ({exc.strerror or exc})", path) from None
    else:
        if key_env not in os.environ:
            raise VeilError(f"environment variable {key_env} is not set")
        secret, where = os.environ[key_env].encode(), f"${key_env}"
    if len(secret) < MIN_SECRET_BYTES:
        raise VeilError(f"the secret is shorter than {MIN_SECRET_BYTES} bytes; use `veil keygen` for a strong one",
                        where)
    if key_file is not None and not insecure_permissions:
        refuse_exposed_key(Path(key_file))
    return secret


def refuse_exposed_key(path: Path, what: str = "key file",
                       remedy: str = " (or pass --insecure-key-permissions)") -> None:
    """Refuse a secret-bearing file (`what`) that group or others may read; `remedy` follows the chmod advice."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise VeilError(f"{what} is readable by group or others (mode {mode:04o}); run `chmod 600 {path}`{remedy}",
                        path)


def write_new_key(path, force: bool = False) -> Path:
    """Write a fresh random secret (32 bytes, hex) to a new file readable by its owner only (mode 0600); `force`
    replaces an existing key (everything encrypted with it can then no longer be decrypted)."""
    path = Path(path)
    with claim_output(path, force) as tmp:
        make_private(tmp).write_text(secrets.token_hex(32) + "\n")
    return path


def experiment_secret(seed: int) -> bytes:
    """A reproducible stand-in secret for benchmarks and the accuracy baselines (`veil bench encrypt`,
    `compress-report` without a key, `veil reproduce tradeoff`), where only accuracy or speed is measured: anyone
    who knows veil can enumerate these, so never for real data, nor for a victim whose privacy is measured (the
    privacy report draws a random key)."""
    return f"veil-experiment-key-seed-{int(seed)}".encode()

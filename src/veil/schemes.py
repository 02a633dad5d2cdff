"""`veil mask --method` / `veil unmask` for the schemes other than the AAE: keyed encryptions built from a secret,
and the unkeyed filter perturbations built from a kernel size and a seed. No masker directory is needed: the
masked set records the method, its configuration and the key fingerprint (never the secret)."""
from __future__ import annotations

from veil.data import ImageSet
from veil.errors import VeilError
from veil.masked import UINT8_STORAGE, MaskedSet
from veil.maskers.base import Masker, build_from_config, masker_class
from veil.maskers.filters import FilterMasker
from veil.maskers.keyed import KeyedMasker
from veil.workflows import mask_images, write_reconstructions


def build_masker(method: str, secret: bytes | None = None, block: int | None = None, kernel: int | None = None,
                 seed: int = 0) -> Masker:
    """The masker for a keyed or filter method from its options; options that the method does not use are refused."""
    cls = masker_class(method)
    if not issubclass(cls, (KeyedMasker, FilterMasker)):
        raise VeilError(f"--method {method} is not built from a key or options (an AAE needs --masker DIR)")
    if issubclass(cls, KeyedMasker):
        if kernel is not None:
            raise VeilError(f"{method} has no --kernel (it is a keyed block scheme)")
        if secret is None:
            raise VeilError(f"{method} is keyed: give the secret with --key-file FILE or --key-env VARIABLE")
        if block is not None and cls.allowed_blocks == (1,):
            raise VeilError(f"{method} works pixel by pixel and takes no --block")
        return cls(secret, block=block)
    if block is not None or secret is not None:
        raise VeilError(f"{method} takes --kernel and --seed, not --block or a key")
    return cls(kernel=kernel, seed=seed)


def mask_with(masker: Masker, data: ImageSet) -> MaskedSet:
    """Mask `data`; the set records the method's configuration (and stores exact 8-bit schemes as uint8)."""
    masked = mask_images(masker, data)
    if isinstance(masker, (KeyedMasker, FilterMasker)):
        masked.meta["config"] = masker.config
    if getattr(masker, "exact_uint8", False):
        masked.meta["storage"] = UINT8_STORAGE
    return masked


def unmask_with_key(masked_file, secret: bytes, out_dir, data: ImageSet | None = None,
                    limit: int | None = None, force: bool = False) -> dict:
    """Decrypt a keyed masked set to PNGs; a secret whose fingerprint differs from the set's is refused."""
    masked = MaskedSet.load(masked_file)
    cls = masker_class(masked.method)
    if not issubclass(cls, KeyedMasker):
        raise VeilError(f"masked with {masked.method!r}, which has no key to unmask with"
                        + (" (use --masker with the AAE masker directory)" if masked.method == "aae" else ""),
                        masked_file)
    masker = build_from_config(cls, masked.meta.get("config", {}), masked_file, secret)
    if masker.fingerprint != masked.fingerprint:
        raise VeilError("wrong key: its fingerprint differs from the one the set was masked with", masked_file)
    return write_reconstructions(masker, masked, out_dir, data, limit,
                                 {"masked": str(masked_file), "key_fingerprint": masker.fingerprint}, force)

"""Masking schemes: one module per scheme, one interface (fit / transform / inverse_transform / save / load)."""
from veil.maskers.aae import AAEMasker
from veil.maskers.base import MASKERS, Masker, load_masker, masker_class, register_masker

__all__ = ["AAEMasker", "MASKERS", "Masker", "load_masker", "masker_class", "register_masker"]

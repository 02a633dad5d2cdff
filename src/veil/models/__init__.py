"""torch nn.Modules only, one file per architecture, registered by the name the CLI uses."""
from veil.models.registry import build_model, register_model
from veil.registry import ARCHITECTURES

__all__ = ["ARCHITECTURES", "build_model", "register_model"]

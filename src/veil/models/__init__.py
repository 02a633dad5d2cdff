"""torch nn.Modules only, one file per architecture, registered by the name the CLI uses."""
from veil.models.registry import MODELS, build_model, register_model

__all__ = ["MODELS", "build_model", "register_model"]

"""The third party's prediction service (`veil serve`): one trained classifier over HTTP, refusing data masked by
another masker or key. Needs FastAPI and uvicorn, which only this package imports, and only once one of the names
below is first used: the command line reads `veil.serve.options` at start without them."""
from importlib import import_module

_HOMES = {"create_app": "veil.serve.app", "run": "veil.serve.app", "Access": "veil.serve.security",
          "Predictor": "veil.serve.predictor", "Refusal": "veil.serve.predictor"}
__all__ = list(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'veil.serve' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)

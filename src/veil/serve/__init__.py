"""The third party's prediction service (`veil serve`): one trained classifier over HTTP, refusing data masked by
another masker or key. Needs FastAPI and uvicorn, which only this package imports."""
from veil.serve.app import create_app, run
from veil.serve.predictor import Predictor, Refusal
from veil.serve.security import Access

__all__ = ["create_app", "run", "Access", "Predictor", "Refusal"]

"""veil: classify images nobody may see.

Data flows one way: data -> masker -> masked dataset -> classifier -> metrics.
"""
from veil.errors import VeilError

__version__ = "0.1.0"
__all__ = ["VeilError", "__version__"]

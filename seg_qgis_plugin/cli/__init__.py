"""`seg`: the engine from a terminal. User mistakes print one sentence and exit 2."""
from .main import main

__all__ = ["main"]

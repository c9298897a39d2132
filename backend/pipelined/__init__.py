"""pipelined: run each processed event through filters, mutators and handlers."""

from .daemon import Pipelined

__all__ = ["Pipelined"]

"""Real processes for end-to-end tests: backends (and later agents) on loopback."""

from .backend import BackendProcess, Cluster, free_port, start_cluster

__all__ = ["BackendProcess", "Cluster", "free_port", "start_cluster"]

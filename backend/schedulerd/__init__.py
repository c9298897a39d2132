"""schedulerd: per-check timers (pure arithmetic in ``timers.py``), dispatch and proxies."""

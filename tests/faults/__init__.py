"""Fault-injection tests of the replicated key-value service and the tools that judge their histories."""

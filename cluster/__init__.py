"""The replicated key/value store that replaces Sensu's embedded etcd.

Layers, bottom up: ``raft`` (the Raft member: the only package that imports
pysyncobj, with every correction of it), ``statemachine`` (the deterministic
apply code that runs on the Raft tick thread), ``bridge`` (the only crossing
between that thread and trio), ``watch`` (prefix watchers in revision order),
``store`` (the async API with group commit, read-your-writes and leases) and
``membership`` (the ``--etcd-*`` flags mapped onto Raft members).
"""

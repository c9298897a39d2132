"""What ``sensu-agent`` and ``sensu-backend`` share: the resource model, tokens, configuration
values, the command line, logging and the version; and what the backend's daemons and its REST
API share: the seed of a new cluster (:mod:`core.seed`) and identity (:mod:`core.identity`:
principal, users, passwords, the RBAC decision).

It plays the part of Sensu Go's ``api/core/v2`` module: both programs import it, and it imports
neither of them (nor ``api``). Only ``core.seed`` and ``core.identity`` use ``cluster`` (its
store interface and codec); the agent never imports those two, so an agent build never drags
the backend in.
"""

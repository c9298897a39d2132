"""``sensu-agent`` in Python: connects to a Sensu backend over websockets, sends
keepalives, runs check requests and forwards local events (runtime.md §1-§2).

Modules, in the order data flows:

* :mod:`agent.config`    -- layered, validated :class:`~agent.config.AgentConfig`
* :mod:`agent.cli`       -- ``sensu-agent start|version|help``
* :mod:`agent.agent`     -- the composition root: queue, API, connection loop, signals
* :mod:`agent.transport` -- websocket dialing, TLS, heartbeats, backoff, URL permutation
* :mod:`agent.protocol`  -- handshake headers (pure; frames are :mod:`core.frames`)
* :mod:`agent.session`   -- one connection's life: entity_config gate, keepalives,
  check requests, draining the queue
* :mod:`agent.entity`    -- the entity and system facts
* :mod:`agent.keepalive` -- the keepalive event (pure)
* :mod:`agent.executor`  -- running checks and hooks; :mod:`core.tokens`, :mod:`agent.metrics`
* :mod:`agent.queue`     -- the durable on-disk event queue in ``cache-dir``
* :mod:`agent.api`       -- the local HTTP API (``POST /events``, ``/healthz``, ``/version``)
"""

"""What ``sensu-agent`` and ``sensu-backend`` share: the resource model, tokens, configuration
values, the command line, logging and the version.

It plays the part of Sensu Go's ``api/core/v2`` module: both programs import it, and it imports
neither of them (nor ``api`` or ``cluster``), so an agent build never drags the backend in.
"""

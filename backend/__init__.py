"""The sensu-backend process: command line, configuration, daemons and their composition."""

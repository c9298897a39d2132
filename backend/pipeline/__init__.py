"""The event pipeline: filters (pure, ``filters.py``), JavaScript (``jsengine.py``),
mutators and handlers."""

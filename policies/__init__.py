"""The project's policy pack (``__main__.py`` for the engine; ``secure_defaults`` for everyone)."""

"""runbus common code: the event contract, names, settings, logging and the producer client."""

__version__ = "0.1.0"

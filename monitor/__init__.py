"""monitor: watch public sources for darknet-market successor chatter."""

__version__ = "0.1.0"

"""logtui: a live terminal dashboard for web access logs."""

__version__ = "0.1.0"

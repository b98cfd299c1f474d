"""credstore: per-user encrypted credentials for shared machines."""

__version__ = "0.1.0"

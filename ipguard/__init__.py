"""ipguard: network asset and IP-binding inventory scanner."""

__version__ = "0.1.0"

"""akm-infra: inventory-driven infrastructure of the Xonobod city Information-Library Centre."""

__version__ = "0.1.0"

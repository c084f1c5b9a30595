"""fraudrules: declarative fraud rules over call, SMS, SIM and payment records."""

__version__ = "0.1.0"

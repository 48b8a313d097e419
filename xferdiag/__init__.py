"""xferdiag: did transfer help, why, and where?"""

__version__ = "0.1.0"

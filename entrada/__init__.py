"""Entrada: the shared kernel that the device daemon and the central service both import.

The wire contract (`entrada.protocol`), outcome codes (`entrada.codes`), the exception
hierarchy (`entrada.errors`), config machinery (`entrada.config`) and the command line
live here, so neither side owns what both must agree on.
"""

__version__ = "0.1.0"

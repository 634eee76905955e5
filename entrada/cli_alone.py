"""Running one group of ``entrada`` subcommands on its own (tests call ``main([...])`` of
a ``cli_*`` module without building the whole command line)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from entrada.errors import ConfigError, EntradaError

#: Exit code for a config file that cannot be used (the same as ``entrada`` itself).
EXIT_CONFIG = 2


def run_alone(register: Callable[[Any], Any], argv: list[str] | None) -> int:
    """Parse ``argv`` with only ``register``'s subcommands and run the chosen one: a bad
    config exits with :data:`EXIT_CONFIG`, any other EntradaError with 1."""
    parser = argparse.ArgumentParser(prog="entrada")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as err:
        sys.stderr.write(f"{err}\n")
        return EXIT_CONFIG
    except EntradaError as err:
        sys.stderr.write(f"entrada: {err}\n")
        return 1

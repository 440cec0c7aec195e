"""What logtui's and shadow's command lines share: the exit-code contract.

0 ok, 2 usage error (a one-line message naming the bad argument), 1 runtime failure
(a one-line cause). A user mistake never shows a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn


class UsageError(Exception):
    """Bad arguments: exit 2."""


class RuntimeFailure(Exception):
    """The command could not do its job: exit 1."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def run(prog: str, parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse, run the chosen command's `run(args)`, and turn failures into exit codes."""
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            # argparse would name the top-level help; point at the subcommand's instead
            raise UsageError(f"unrecognized arguments: {' '.join(unknown)} "
                             f"(see '{prog} {getattr(args, 'command', '') or ''} --help')"
                             .replace("  --help", " --help"))
        return int(args.run(args))
    except UsageError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    except RuntimeFailure as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `... --no-ui | head`: the reader left; that is not an error
        sys.stderr.close()
        return 0

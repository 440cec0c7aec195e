"""What logtui's and shadow's command lines share: the exit-code contract.

0 ok, 2 usage error (a one-line message naming the bad argument), 1 runtime failure
(a one-line cause). A user mistake never shows a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from typing import NoReturn

from logtui.core.sanitize import printable


class UsageError(Exception):
    """Bad arguments: exit 2."""


class RuntimeFailure(Exception):
    """The command could not do its job: exit 1."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def attach_values(argv: Sequence[str], options: Iterable[str]) -> list[str]:
    """`--filter -bot:*` as `--filter=-bot:*`: argparse reads a value that starts with '-'
    as an option of its own, and a filter may well start with a negated term. A word that
    starts with '--' is still an option (`--filter --once` misses its value)."""
    wanted = frozenset(options)
    words = list(argv)
    joined: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--":
            joined.extend(words[index:])
            break
        value = words[index + 1] if index + 1 < len(words) else ""
        if word in wanted and value.startswith("-") and not value.startswith("--"):
            joined.append(f"{word}={value}")
            index += 2
        else:
            joined.append(word)
            index += 1
    return joined


def run(prog: str, parser: argparse.ArgumentParser, argv: Sequence[str] | None,
        dash_values: Iterable[str] = ()) -> int:
    """Parse, run the chosen command's `run(args)`, and turn failures into exit codes.
    The options in `dash_values` take the next word as their value even if it starts with
    a dash."""
    try:
        argv = attach_values(sys.argv[1:] if argv is None else argv, dash_values)
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            # argparse would name the top-level help; point at the subcommand's instead
            raise UsageError(f"unrecognized arguments: {' '.join(unknown)} "
                             f"(see '{prog} {getattr(args, 'command', '') or ''} --help')"
                             .replace("  --help", " --help"))
        return int(args.run(args))
    except UsageError as error:
        print(f"{prog}: {printable(str(error))}", file=sys.stderr)
        return 2
    except RuntimeFailure as error:   # file names and peers' words may hold escapes
        print(f"{prog}: {printable(str(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `... --no-ui | head`: the reader left; that is not an error
        sys.stderr.close()
        return 0

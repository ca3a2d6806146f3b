"""`jaxrnn`'s entry point: parse, run the subcommand, turn errors into
exit statuses."""

from __future__ import annotations

import os
import sys
from typing import Sequence

from jaxrnn import runs
from jaxrnn._cli._parser import build_parser
from jaxrnn.tasks import MissingExtraError


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)  # --help prints here
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try
        return status
    except BrokenPipeError:
        # The reader went away (`jaxrnn eval RUN | head -1`): stop quietly.
        # Python would flush stdout again at exit and complain, so point it
        # at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a killed process would report
    except runs.Diverged as error:
        print(f"jaxrnn {args.command}: {error}", file=sys.stderr)
        return 3
    except (runs.RunError, MissingExtraError, ValueError) as error:
        print(f"jaxrnn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

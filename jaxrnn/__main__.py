"""`python -m jaxrnn`: the command line (see `jaxrnn --help`)."""

import sys

from jaxrnn._cli import main

if __name__ == "__main__":
    sys.exit(main())

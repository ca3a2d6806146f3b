"""python -m benchmarks: the harness of `jaxrnn.bench`, run from the repo root.

    python -m benchmarks --smoke                 # about a minute
    python -m benchmarks --grid cpu --save       # the CPU grid, into results/
    python -m benchmarks --grid gpu --save       # DeepBench sizes on a GPU

Results go to benchmarks/results/<machine>/ (bench.jsonl, bench.md,
bench.png). Run it alone on an idle machine.
"""

import pathlib
import sys

from jaxrnn.bench import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a == "--results" or a.startswith("--results=") for a in argv):
        argv += ["--results", str(pathlib.Path(__file__).parent / "results")]
    sys.exit(main(argv))

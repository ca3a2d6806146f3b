"""What each subcommand of the `jaxrnn` command line does."""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time

import jax
import optax

import jaxrnn
from jaxrnn import runs, tasks
from jaxrnn.fast import _cpu
from jaxrnn.runs import _files, _report, _train
from jaxrnn.runs._progress import Progress


def _config_of(args: argparse.Namespace, **fixed) -> runs.RunConfig:
    names = {f.name for f in dataclasses.fields(runs.RunConfig)}
    given = {k: v for k, v in vars(args).items() if k in names}
    if "data" in given and "task" not in given:  # series or text by the ending
        given["task"] = tasks.kind_of(given["data"])
    return runs.RunConfig(**(given | fixed))


def _public(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "history"}


def _print_result(result: dict) -> None:
    print(_report.results_table([result]))
    print()
    print(_report.baselines_table(result))


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume is not None:
        given = {k for k in vars(args)} & {
            f.name for f in dataclasses.fields(runs.RunConfig)
        }
        if given - {"steps"}:
            raise runs.RunError(
                f"--resume continues {args.resume!r} with its saved config; of the "
                f"run's flags only --steps may be given, got "
                + ", ".join(
                    "--" + n.replace("_", "-") for n in sorted(given - {"steps"})
                )
            )
        run_dir, config = args.resume, None
        label = "resume"
    else:
        config = _config_of(args)
        run_dir = args.out or time.strftime(
            f"runs/{config.task}-{config.cell}-%Y%m%d-%H%M%S"
        )
        label = config.cell
    if config is not None:  # before anything is printed:
        _files.refuse_a_run(run_dir)  # a used folder,
        if config.data is not None:  # a file of one's own that cannot be used
            _train.task_of(config.resolved())  # (cheap; a built-in task is not)
    if not args.json and config is not None:
        print(f"{config.task}: training {config.cell}; the run is written to {run_dir}")
    result = runs.fit(
        config,
        run_dir,
        resume=args.resume is not None,
        steps=getattr(args, "steps", None) if args.resume is not None else None,
        progress=Progress(label, not args.quiet),
    )
    if args.json:
        print(json.dumps(_public(result)))
    else:
        _print_result(result)
        plotted = (
            "loss.png"
            if _files.have_matplotlib()
            else "no loss.png: pip install 'jaxrnn[plot]'"
        )
        kept, steps = result["kept"], result["steps"]
        early = f"; it stopped early at step {steps}" if result["stopped_early"] else ""
        print(f"\nkept the {kept['keep']} checkpoint, of step {kept['step']}{early}")
        print(
            f"run directory: {run_dir} (config.json, metrics.jsonl, "
            f"checkpoint.npz, best.npz, result.json, {plotted})"
        )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    result = runs.evaluate_run(args.run_dir)
    if args.json:
        print(json.dumps(result))
    else:
        kept = result["kept"]
        print(
            f"{result['description']} (the {kept['keep']} checkpoint, of step "
            f"{kept['step']})"
        )
        _print_result(result)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    text = runs.generate_run(
        args.run_dir,
        args.prompt,
        args.length,
        temperature=args.temperature,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps({"prompt": args.prompt, "text": text}))
    else:
        print(args.prompt + text)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    config = _config_of(args, cell=args.cell[0])
    resolved = config.resolved()
    if not args.json:
        print(
            f"{resolved.task}: {', '.join(args.cell)} with the same budget "
            f"({resolved.steps} steps of batch {resolved.batch_size}, H="
            f"{resolved.hidden_size}, "
            + (
                f"seeds {' '.join(map(str, args.seeds))})"
                if args.seeds
                else f"seed {resolved.seed})"
            ),
            flush=True,
        )
    results = runs.compare(
        config,
        args.cell,
        seeds=args.seeds,
        out=args.out,
        progress=lambda label: Progress(label, not args.quiet),
        on_result=(lambda r: print(json.dumps(_public(r)), flush=True))
        if args.json
        else None,
    )
    if not args.json:
        print(_report.results_table(results))
        if args.seeds and len(args.seeds) > 1:
            print()
            print(_report.seeds_table(results))
        print()
        print(_report.baselines_table(results[0]))
        for r in results:
            if "reason" in r:
                print(f"\n{r['cell']} (seed {r['seed']}) diverged: {r['reason']}")
        if args.out:
            print(f"\nruns and compare.png in {args.out}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    info = {
        "jaxrnn": jaxrnn.__version__,
        "jax": jax.__version__,
        "optax": optax.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }
    if jax.default_backend() == "cpu":
        kernels = _cpu.status()
        info["kernels"] = kernels.describe()
    if args.json:
        print(json.dumps(info))
    else:
        for k, v in info.items():
            print(f"{k:>8}: {v}")
    return 0

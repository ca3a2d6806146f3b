"""Training a run: chunks of compiled steps, validation, checkpoints, resume."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from jaxrnn import io
from jaxrnn import train as _train
from jaxrnn.runs import _files, _result
from jaxrnn.runs._config import RunConfig
from jaxrnn.runs._model import Model, forward, init_model
from jaxrnn.tasks import _registry

EVAL_PIECE = 256  # sequences per compiled evaluation call


class Diverged(_files.RunError):
    """Training stopped on non-finite losses; the last good checkpoint is kept."""


def task_of(config: RunConfig) -> _registry.Task:
    """The task of a resolved config (reading its data, if any)."""
    return _registry.make_task(
        config.task,
        seq_len=config.seq_len,
        horizon=config.horizon,
        blanks=config.blanks,
        eval_size=config.eval_size,
        data=config.data,
        column=config.column,
    )


def build(config: RunConfig):
    """(task, model, optimizer, opt_state) for a resolved config, from its seed."""
    task = task_of(config)
    model = init_model(jax.random.key(config.seed), config, task)
    learning_rate = config.learning_rate
    if config.schedule == "cosine":
        learning_rate = optax.warmup_cosine_decay_schedule(
            0.0, config.learning_rate, max(1, config.steps // 50), config.steps
        )
    optimizer = _train.make_optimizer(
        learning_rate,
        max_norm=config.clip_norm,
        clip_value=config.clip_value,
        optimizer=getattr(optax, config.optimizer),
        skip_nonfinite=True,
    )
    return task, model, optimizer, optimizer.init(model)


def make_evaluate(config: RunConfig, task: _registry.Task) -> Callable:
    """`evaluate(model, split) -> {metric: mean}` over the whole split."""

    @jax.jit
    def sums(model, batch):
        outputs = forward(model, batch.xs, config, task)
        return {k: jnp.sum(v) for k, v in task.per_example(outputs, batch).items()}

    def evaluate(model: Model, split: str) -> dict[str, float]:
        batch = task.splits[split]
        count = batch.xs.shape[0]
        totals: dict[str, float] = {}
        for first in range(0, count, EVAL_PIECE):
            piece = jax.tree.map(lambda a: a[first : first + EVAL_PIECE], batch)
            for name, value in sums(model, piece).items():
                totals[name] = totals.get(name, 0.0) + float(value)
        means = {name: total / count for name, total in totals.items()}
        if "mse" in means:
            means["rmse"] = math.sqrt(means["mse"]) if means["mse"] >= 0 else math.nan
        return means

    return evaluate


def _resume_config(run_dir: str, steps: int | None) -> RunConfig:
    saved = RunConfig.from_dict(_files.read_json(run_dir, _files.CONFIG)["config"])
    if steps is None:
        return saved
    return dataclasses.replace(saved, steps=steps).resolved()


def _before_first_checkpoint(run_dir: str, checkpoint: str, config: RunConfig) -> bool:
    """Whether a run was stopped before it wrote its first checkpoint: it
    has none, and logged no step past the first one's. (A run that logged
    more had a checkpoint; without it the run cannot go on.)"""
    if os.path.exists(checkpoint):
        return False
    first = min(config.eval_every, config.steps)
    return all(row.get("step", 0) <= first for row in _files.read_metrics(run_dir))


def _check_resume(
    run_dir: str, step: int, steps: int | None, config: RunConfig, stopped: bool = False
) -> None:
    """Refuse, before any file changes, a resume that would train nothing
    (`stopped`: the run stopped early, for want of a better validation)."""
    if steps is not None and steps <= step:
        raise _files.RunError(
            f"the run in {run_dir!r} is already at step {step}; steps={steps} would "
            f"not train it further. Give more than {step} steps to train it longer "
            f"(`jaxrnn eval {run_dir}` reports its metrics). No file was changed."
        )
    done = os.path.exists(os.path.join(run_dir, _files.RESULT))
    if steps is None and (step >= config.steps or stopped) and done:
        early = " (it stopped early: no better validation)" if stopped else ""
        raise _files.RunError(
            f"the run in {run_dir!r} is complete at step {step}{early}. Give more "
            "steps to train it longer (`jaxrnn train --resume DIR --steps N`). No file "
            "was changed."
        )


def fit(
    config: RunConfig | None = None,
    run_dir: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    steps: int | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
) -> dict[str, Any]:
    """Train a model as `config` says, validating and checkpointing as it goes.

    Args:
        config: the run's config (its None fields take the task's defaults);
            None with resume=True, which reads the saved one.
        run_dir: the folder to write (see `jaxrnn.runs._files`), or None to
            keep everything in memory. A new run refuses a folder that
            already holds one.
        resume: continue the run in `run_dir` from its checkpoint (from step
            0 where it stopped before writing one), after deleting what
            writes cut short left behind. Batches are a function of the seed
            and the step, so a resumed run follows exactly the steps that an
            uninterrupted one would.
        steps: with resume, a new total number of steps (to train longer;
            a run that stopped early gets `patience` validations more).
        progress: called as `progress(step, steps, metrics)` after each
            chunk, with the step reached (a resumed run's first call is past
            its checkpoint's step), the total and {"loss": the chunk's mean
            training loss} plus the latest validation metric.

    Returns:
        The result: the config, the metrics on every split of the kept
        checkpoint (`config.keep`: the best validation's, or the last),
        "kept" (which, and its step), the steps trained, the baselines, the
        verdict, times and parameter count (also written to result.json).

    Raises:
        RunError: an unusable run directory or checkpoint, or a bad resume
            (steps at or below the checkpoint's step, or a complete run
            resumed without more steps); no file is changed then.
        Diverged: `max_bad_steps` consecutive non-finite losses or gradients
            (those updates were skipped); the last checkpoint is kept.
        MissingExtraError: the task's data package is not installed.
    """
    run_dir = None if run_dir is None else os.fspath(run_dir)
    if resume:
        if run_dir is None or config is not None:
            raise _files.RunError(
                "resume continues the run in run_dir with its saved config: give "
                "run_dir, and no config (steps=N trains it for longer)."
            )
        config = _resume_config(run_dir, steps)
    else:
        config = (config or RunConfig()).resolved()
    task, model, optimizer, opt_state = build(config)
    step, rows = 0, []
    checkpoint = None if run_dir is None else os.path.join(run_dir, _files.CHECKPOINT)
    best_path = None if run_dir is None else os.path.join(run_dir, _files.BEST)
    watch, best_model = (
        _train.keep_best(lower=task.lower, patience=config.patience),
        None,
    )
    clock = {"time_s": 0.0, "train_s": 0.0, "compile_s": 0.0}  # totals so far
    if resume and _before_first_checkpoint(run_dir, checkpoint, config):
        # Stopped before its first checkpoint: it starts again from step 0.
        _check_resume(run_dir, step, steps, config)
        _files.remove_leftovers(run_dir)
        rows = _files.rewind_metrics(run_dir, 0)
    elif resume:
        try:
            saved = io.load(checkpoint, {"model": model, "opt_state": opt_state})
            metadata = io.load_metadata(checkpoint)
            step = int(metadata["step"])
            watch = _train.KeepBest(**metadata.get("watch", watch._asdict()))
        except (ValueError, KeyError, TypeError) as error:
            raise _files.RunError(
                f"cannot resume from {checkpoint!r}: {error}. The run directory was "
                "left as it is."
            ) from None
        _check_resume(run_dir, step, steps, config, watch.stop)
        if steps is not None:  # trained longer: patience starts again
            watch = watch._replace(waited=0)
        _files.remove_leftovers(run_dir)
        clock |= {k: float(v) for k, v in metadata.get("clock", {}).items()}
        model, opt_state = saved["model"], saved["opt_state"]
        rows = _files.rewind_metrics(run_dir, step)
        record = _files.read_json(run_dir, _files.CONFIG)
        if record["config"] != config.to_dict():  # a new number of steps
            _files.write_json(
                run_dir, _files.CONFIG, record | {"config": config.to_dict()}
            )
    elif run_dir is not None:
        _files.prepare(run_dir)
        record = {"config": config.to_dict(), "task": task.description}
        _files.write_json(run_dir, _files.CONFIG, record | _files.environment())

    key_data, key_dropout = jax.random.split(jax.random.key(config.seed + 1))

    def loss_fn(model, batch, key):
        outputs = forward(model, batch.xs, config, task, training=True, key=key)
        return jnp.mean(task.per_example(outputs, batch)["loss"])

    step_fn = _train.make_train_step(optimizer, loss_fn)

    def one_step(model, opt_state, i):
        batch = task.train_batch(jax.random.fold_in(key_data, i), config.batch_size)
        return step_fn(model, opt_state, batch, jax.random.fold_in(key_dropout, i))

    @jax.jit
    def run_chunk(model, opt_state, first, count):
        """Steps first .. first + count - 1 (count <= chunk): one compiled
        program for every count, so that a run stops exactly at `steps` and
        validates exactly every `eval_every` steps."""
        shapes = jax.eval_shape(one_step, model, opt_state, first)[2]
        logs = jax.tree.map(
            lambda s: jnp.zeros((config.chunk, *s.shape), s.dtype), shapes
        )

        def body(i, state):
            model, opt_state, logs = state
            model, opt_state, metrics = one_step(model, opt_state, i)
            logs = jax.tree.map(lambda a, m: a.at[i - first].set(m), logs, metrics)
            return model, opt_state, logs

        model, opt_state, logs = jax.lax.fori_loop(
            first, first + count, body, (model, opt_state, logs)
        )
        return (model, opt_state), logs

    evaluate = make_evaluate(config, task)
    start = time.perf_counter()
    run_chunk = run_chunk.lower(model, opt_state, step, config.chunk).compile()
    compile_s = time.perf_counter() - start

    def totals() -> dict[str, float]:
        """The run's seconds so far, over every session of it."""
        session = time.perf_counter() - start
        return {
            "time_s": clock["time_s"] + session,
            "train_s": clock["train_s"] + session - compile_s,
            "compile_s": clock["compile_s"] + compile_s,
        }

    last_good, bad_run, latest = (step if resume else None), 0, {}
    while step < config.steps and not watch.stop:
        next_eval = (step // config.eval_every + 1) * config.eval_every
        count = min(config.chunk, config.steps - step, next_eval - step)
        (new_model, new_opt_state), metrics = run_chunk(model, opt_state, step, count)
        losses = metrics["loss"][:count].tolist()
        oks = metrics["finite"][:count].tolist()
        finite = [x for x in losses if math.isfinite(x)]
        for ok in oks:
            bad_run = 0 if ok else bad_run + 1
            if bad_run >= config.max_bad_steps:
                break
        row = {
            "step": step + count,
            "split": "train",
            "loss": sum(finite) / len(finite) if finite else math.nan,
            "grad_norm": float(metrics["grad_norm"][count - 1]),
            "skipped": count - int(sum(oks)),
            "time_s": round(totals()["time_s"], 3),
        }
        if bad_run >= config.max_bad_steps:
            _files.append_metrics(run_dir, [row])
            kept = (
                f"the last good checkpoint, from step {last_good}, is kept in "
                f"{checkpoint!r}"
                if last_good is not None and checkpoint
                else "no checkpoint had been written yet"
            )
            raise Diverged(
                f"training stopped at step {row['step']}: {bad_run} consecutive steps "
                f"had a non-finite loss or gradient (their updates were skipped); "
                f"{kept}. Lower --learning-rate, set --clip-norm, or raise "
                "--max-bad-steps."
            )
        model, opt_state, step = new_model, new_opt_state, step + count
        rows.append(row)
        _files.append_metrics(run_dir, [row])
        if step % config.eval_every == 0 or step == config.steps:
            latest = evaluate(model, "valid")
            watch = watch.update(step, latest.get(task.metric, math.nan))
            improved = config.keep == "best" and watch.step == step
            best_model = model if improved else best_model
            valid_row = {"step": step, "split": "valid", **latest}
            rows.append(valid_row)
            _files.append_metrics(run_dir, [valid_row])
            leaves = jax.tree.leaves(model)
            if checkpoint and all(bool(jnp.all(jnp.isfinite(x))) for x in leaves):
                if improved:  # before the checkpoint whose watch names it
                    io.save(best_path, {"model": model}, metadata={"step": step})
                io.save(
                    checkpoint,
                    {"model": model, "opt_state": opt_state},
                    metadata={
                        "step": step,
                        "valid": latest,
                        "config": config.to_dict(),
                        "clock": totals(),
                        "watch": watch._asdict(),
                    },
                )
                last_good = step
                _result.plot(run_dir, rows, task, config)
        if progress is not None:
            shown = {"loss": row["loss"]}
            if task.metric in latest:
                shown[f"valid_{task.metric}"] = latest[task.metric]
            progress(step, config.steps, shown)
    times = totals()
    kept = {"keep": "last", "step": step}
    if config.keep == "best" and watch.step is not None:
        if best_model is None and best_path and os.path.exists(best_path):
            best_model = io.load(best_path, {"model": model})["model"]
        if best_model is not None:  # a run from before best.npz keeps the last
            kept = {"keep": "best", "step": watch.step, "valid": watch.best}
            model = best_model
    result = _result.summarize(config, task, model, evaluate)
    result |= {"kept": kept, "steps": step, "stopped_early": step < config.steps}
    result |= {k: times[k] for k in ("compile_s", "train_s")} | {"run_dir": run_dir}
    result["skipped_steps"] = int(_train.skipped_steps(opt_state))
    if run_dir is not None:
        _files.write_json(run_dir, _files.RESULT, result)
    result["history"] = rows
    return result

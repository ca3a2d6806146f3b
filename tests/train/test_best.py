"""KeepBest: the best validation so far and early stopping, as a value."""

import math

import pytest

from jaxrnn import train


def _run(watch, values, start=100, every=100):
    steps = []
    for i, value in enumerate(values):
        step = start + i * every
        watch = watch.update(step, value)
        steps.append((watch.step, watch.waited, watch.stop))
    return watch, steps


def test_a_lower_value_improves_and_patience_counts_the_rest():
    watch, trace = _run(train.keep_best(patience=2), [0.5, 0.3, 0.3, 0.4, 0.2])
    # 0.3 again is no improvement (strictly better only); two in a row stop.
    assert trace == [(100, 0, False), (200, 0, False), (200, 1, False),
                     (200, 2, True), (500, 0, False)]  # fmt: skip
    assert (watch.best, watch.step) == (0.2, 500)


def test_higher_is_better_for_an_accuracy():
    watch, _ = _run(train.keep_best(lower=False), [0.1, 0.6, 0.4])
    assert (watch.best, watch.step, watch.waited, watch.stop) == (0.6, 200, 1, False)


def test_nan_and_infinity_never_improve():
    watch, trace = _run(
        train.keep_best(patience=3), [math.nan, 1.0, math.inf, math.nan]
    )
    assert watch.best == 1.0 and watch.step == 200 and watch.waited == 2
    assert trace[0] == (None, 1, False)


def test_without_patience_it_never_stops():
    watch, _ = _run(train.keep_best(), [1.0] + [2.0] * 50)
    assert watch.waited == 50 and not watch.stop


def test_it_round_trips_through_a_dict_as_a_checkpoint_stores_it():
    watch, _ = _run(train.keep_best(patience=4), [0.5, 0.7])
    assert train.KeepBest(**watch._asdict()) == watch


@pytest.mark.parametrize("patience", [0, -1, 1.5, True])
def test_a_bad_patience_is_refused(patience):
    with pytest.raises((ValueError, TypeError), match="keep_best: patience"):
        train.keep_best(patience=patience)

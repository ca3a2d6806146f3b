"""Character-level language modelling: a vocabulary, batches of windows, and
sampling with a temperature."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxrnn import _checks
from jaxrnn.tasks._synthetic import Batch


class Vocab(NamedTuple):
    """The characters of a text, sorted; a character's id is its index.

    Examples:
        >>> v = Vocab.from_text("hello")
        >>> v.chars, v.encode("hole").tolist(), v.decode([3, 1])
        ('ehlo', [1, 3, 2, 0], 'oh')
    """

    chars: str

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        return cls("".join(sorted(set(text))))

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """int32 ids; a character outside the vocabulary is an error that names it."""
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            raise ValueError(
                f"Vocab.encode: the text must use only the model's "
                f"{self.size} characters, got {len(unknown)} others: "
                f"{''.join(unknown)!r}."
            )
        return np.fromiter((index[c] for c in text), np.int32, len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))


def split_text(ids: np.ndarray, valid_fraction: float = 0.1):
    """(train, valid): the first part of the text and the rest, by position."""
    if not 0 < valid_fraction < 1:
        raise ValueError(
            f"split_text: valid_fraction must be in (0, 1), got {valid_fraction}."
        )
    cut = len(ids) - int(round(len(ids) * valid_fraction))
    return ids[:cut], ids[cut:]


def make_char_batch(
    key: jax.Array, ids: jax.Array, batch_size: int, seq_len: int
) -> Batch:
    """Random windows of a text: the targets are the inputs shifted by one.

    Args:
        key: a PRNG key; the same key gives the same batch.
        ids: int32 [N] with N > seq_len, the encoded text.
        batch_size: B.
        seq_len: T.

    Returns:
        Batch(xs int32 [B, T], ys int32 [B, T] with ys[:, t] = xs[:, t + 1]
        in the text, mask [B, T] all True).
    """
    fn = "make_char_batch"
    batch_size = _checks.positive_int(fn, "batch_size", batch_size)
    seq_len = _checks.positive_int(fn, "seq_len", seq_len)
    if ids.shape[0] <= seq_len:
        _checks.fail(
            fn, "ids", f"must be longer than seq_len ({seq_len})", f"{ids.shape[0]}"
        )
    starts = jax.random.randint(key, (batch_size,), 0, ids.shape[0] - seq_len)
    rows = starts[:, None] + jnp.arange(seq_len + 1)[None]
    windows = ids[rows]
    return Batch(windows[:, :-1], windows[:, 1:], jnp.ones((batch_size, seq_len), bool))


def char_windows(ids: np.ndarray, seq_len: int) -> Batch:
    """Every non-overlapping window of a text, for evaluation (the tail that
    does not fill a window is dropped: fewer than seq_len characters)."""
    count = (len(ids) - 1) // seq_len
    if count == 0:
        raise ValueError(
            f"char_windows: the text ({len(ids)} characters) must be longer "
            f"than seq_len ({seq_len})."
        )
    xs = ids[: count * seq_len].reshape(count, seq_len)
    ys = ids[1 : count * seq_len + 1].reshape(count, seq_len)
    return Batch(jnp.asarray(xs), jnp.asarray(ys), jnp.ones(xs.shape, bool))


def unigram_loss(train: np.ndarray, valid: np.ndarray, size: int) -> float:
    """The cross-entropy of the training text's character frequencies on the
    validation text, in nats (add-one smoothed): what a model with no context
    scores."""
    counts = np.bincount(train, minlength=size) + 1.0
    logp = np.log(counts / counts.sum())
    return float(-logp[valid].mean())


def sample_logits(key: jax.Array, logits: ArrayLike, temperature: float) -> jax.Array:
    """Draw ids from softmax(logits / temperature); temperature 0 is argmax."""
    if temperature == 0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(
            f"sample_logits: temperature must be >= 0 and finite, got {temperature}."
        )
    return jax.random.categorical(key, logits / temperature).astype(jnp.int32)

"""The crisis question's second net: a naive Bayes over words and letter groups, learned from examples.

The crisis patterns (crisis.toml) alert; on wordings nobody wrote a pattern for they miss about half of
all crisis messages (docs/SAFETY.md, the held-out sets): farewells, preparations, means named without a
verb the patterns know. This model catches some of those by resemblance to labelled examples. It never
alerts by itself: a message it scores at or above its threshold, that no crisis pattern matched, gets
the crisis question (Yes is handled as a crisis, No goes on to the usual offer), as a ``[[concern]]``
word does (rehab_bot.crisis.is_concern).

The rules:

- Examples are TOML files with the lists ``crisis``, ``not_crisis`` (hard negatives: the format of the
  crisis report's corpora) and ``everyday`` (thanks, greetings, goodbyes, reports: what most messages
  are), under ``crisis_examples/`` of the built-in content and of a clinic's content directory
  (content/__init__.py reads them). All languages make one model, as the patterns serve
  every language: a German patient may write English.
- Features: the words of the folded text (case, umlauts and ß folded, everything but letters and digits
  a space), pairs of neighbouring words, and groups of 3, 4 and 5 letters (spaces included). A message's
  score is the sum of its features' log odds (crisis against not, add-half smoothing, each feature once)
  divided by the square root of their number, so long messages do not score high by length alone.
- Messages of fewer than MIN_WORDS words are never asked because of the model: "thanks" or "danke"
  alone scored as farewells do, having little else to score.
- The threshold: each example is scored by a model trained without it (5 folds, a fixed shuffle), and
  the threshold is set so that at most ASK_SHARE of the ``not_crisis`` examples would be asked. Hard
  negatives are chosen to look like crisis talk, so everyday messages are asked less often than that;
  the ``everyday`` examples are learned from but not counted in that share.
- Training is pure counting, five folds and the whole (about 1.2 s for the 3,451 built-in examples on a
  Xeon core); models are cached by their examples.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MIN_WORDS = 4  # shorter messages ("thanks", "danke", "bis bald") resemble farewells by their few words alone
ASK_SHARE = 0.08  # at most this share of the examples' hard negatives (scored out of fold) is asked
FOLDS = 5
SMOOTHING = 0.5
_SHUFFLE_SEED = 0
_FOLD_TABLE = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_NOT_WORD = re.compile(r"[^\w]+|_")


def fold(text: str) -> str:
    """Lower case, umlauts and ß written out, anything but letters and digits a single space."""
    return " ".join(_NOT_WORD.sub(" ", text.casefold().translate(_FOLD_TABLE)).split())


def features(text: str) -> frozenset[str]:
    """Each feature of the text once: its words, pairs of neighbouring words, and groups of 3-5 letters."""
    folded = fold(text)
    words = folded.split()
    padded = f" {folded} "
    found = {f"w {w}" for w in words}
    found.update(f"b {a} {b}" for a, b in itertools.pairwise(words))
    for size in (3, 4, 5):
        found.update(f"{size} {padded[i : i + size]}" for i in range(len(padded) - size + 1))
    return frozenset(found)


def _weights(examples: Iterable[tuple[frozenset[str], bool]]) -> dict[str, float]:
    counts: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
    totals = [0, 0]
    for found, is_crisis in examples:
        counts[is_crisis].update(found)
        totals[is_crisis] += 1
    weights = {}
    for feature in counts[0].keys() | counts[1].keys():
        crisis_share = (counts[1][feature] + SMOOTHING) / (totals[1] + 2 * SMOOTHING)
        other_share = (counts[0][feature] + SMOOTHING) / (totals[0] + 2 * SMOOTHING)
        weights[feature] = math.log(crisis_share / other_share)
    return weights


def _score(weights: dict[str, float], found: frozenset[str]) -> float:
    return sum(weights.get(f, 0.0) for f in found) / math.sqrt(len(found) or 1)


@dataclass(frozen=True)
class Model:
    weights: dict[str, float]
    threshold: float

    def score(self, text: str) -> float:
        return _score(self.weights, features(text))

    def asks(self, text: str) -> bool:
        """Whether the text resembles the crisis examples enough to ask the crisis question."""
        return len(fold(text).split()) >= MIN_WORDS and self.score(text) >= self.threshold


def train(crisis: Sequence[str], not_crisis: Sequence[str], everyday: Sequence[str] = ()) -> Model | None:
    """The model of these examples and its threshold (module docstring), or None without enough crisis and
    not-crisis examples to cross-validate (then nothing is asked because of it). Everyday messages are
    learned as not crisis, but the threshold's share counts the hard negatives (not_crisis) only: easy
    examples would lower the threshold by making the share's count larger."""
    if len(crisis) < FOLDS or len(not_crisis) < FOLDS:
        return None
    examples = (
        [(features(t), True) for t in crisis]
        + [(features(t), False) for t in not_crisis]
        + [(features(t), False) for t in everyday]
    )
    hard = range(len(crisis), len(crisis) + len(not_crisis))
    order = list(range(len(examples)))
    random.Random(_SHUFFLE_SEED).shuffle(order)  # noqa: S311 - a fixed, reproducible shuffle, no secret
    out_of_fold: list[float] = [0.0] * len(examples)
    for fold_index in range(FOLDS):
        held = set(order[fold_index::FOLDS])
        weights = _weights(e for i, e in enumerate(examples) if i not in held)
        for i in held:
            out_of_fold[i] = _score(weights, examples[i][0])
    negatives = sorted((out_of_fold[i] for i in hard), reverse=True)
    allowed = int(len(negatives) * ASK_SHARE)  # this many hard negatives may score above the threshold
    threshold = negatives[allowed] + 1e-9  # just above the first one that must not be asked
    return Model(_weights(examples), threshold)


@functools.lru_cache(maxsize=8)
def model_of(crisis: tuple[str, ...], not_crisis: tuple[str, ...], everyday: tuple[str, ...] = ()) -> Model | None:
    """train, once per set of examples (the content is loaded once; tests load it many times)."""
    return train(crisis, not_crisis, everyday)

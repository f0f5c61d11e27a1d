"""Recall and false-positive rate of the crisis patterns on a test corpus.

    python -m rehab_bot.crisis_report [--content DIR] [--corpus DIR]

Prints a Markdown table (the one in docs/SAFETY.md, "Crisis detection") and
every missed sentence and false alarm, then a second table for the crisis
question: how many crisis sentences raise the crisis response or at least the
question (a ``[[concern]]`` pattern, or rehab_bot.crisis_model), and how many hard negatives are asked it. The
corpus is one TOML file per
language (``en.toml``, ``de.toml``) with two lists: ``crisis`` (sentences that
must raise the crisis response) and ``not_crisis`` (hard negatives: idioms,
negations, other people, medical talk). The default corpus is the first set of the
package's examples, rehab_bot/content/defaults/crisis_examples (what the crisis
question's model learns from: measure the model on a set it did not learn from,
as tests/data/crisis/ninth); a clinic that changes crisis.toml should run it
with ``--content`` on its own content directory, and add its patients' wordings
to a corpus of its own.

Exit status 1 when a language misses the targets (recall >= 95 %, false
positives <= 5 %), 2 on a content error. Prints no patient data: the corpus
is made up.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rehab_bot import crisis
from rehab_bot.content import Content, ContentError, load_content

CORPUS_DIR = Path(__file__).resolve().parent / "content" / "defaults" / "crisis_examples"
MIN_RECALL = 0.95
MAX_FPR = 0.05


@dataclass(frozen=True)
class Corpus:
    lang: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...]


@dataclass(frozen=True)
class Result:
    corpus: Corpus
    missed: tuple[str, ...]
    false_positives: tuple[str, ...]
    asked: tuple[str, ...] = ()  # missed crisis sentences that get the crisis question
    negatives_asked: tuple[str, ...] = ()  # hard negatives (not alerted) that get the crisis question

    @property
    def recall(self) -> float:
        return 1 - len(self.missed) / len(self.corpus.positives)

    @property
    def false_positive_rate(self) -> float:
        return len(self.false_positives) / len(self.corpus.negatives)

    @property
    def ok(self) -> bool:
        return self.recall >= MIN_RECALL and self.false_positive_rate <= MAX_FPR


class CorpusError(ValueError):
    """A corpus file that is not TOML with the lists ``crisis`` and ``not_crisis`` (the message says which)."""


def load_corpus(path: Path) -> Corpus:
    """A <lang>.toml corpus file; CorpusError naming the file and what is wrong with it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: not TOML ({exc})") from exc
    lists = []
    for key in ("crisis", "not_crisis"):
        value = data.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
            found = ", ".join(sorted(data)) or "nothing"
            raise CorpusError(f"{path}: needs a non-empty list of strings `{key}` (found: {found})")
        lists.append(tuple(value))
    return Corpus(path.stem, lists[0], lists[1])


def evaluate(content: Content, corpus: Corpus) -> Result:
    missed = tuple(s for s in corpus.positives if not crisis.is_crisis(s, content))
    false_positives = tuple(s for s in corpus.negatives if crisis.is_crisis(s, content))
    asked = tuple(s for s in missed if crisis.asks_question(s, content))
    negatives_asked = tuple(s for s in corpus.negatives if crisis.asks_question(s, content))
    return Result(corpus, missed, false_positives, asked, negatives_asked)


def _table(
    results: Sequence[Result], headings: tuple[str, str], hits: Callable[[Result], tuple[int, int]]
) -> list[str]:
    """One row per language: its crisis sentences reached and its hard negatives caught, as shares."""
    lines = [
        f"| language | crisis sentences | {headings[0]} | hard negatives | {headings[1]} |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        c, (found, wrong) = r.corpus, hits(r)
        positives, negatives = len(c.positives), len(c.negatives)
        lines.append(
            f"| {c.lang} | {positives} | {found / positives:.1%} ({found}/{positives}) "
            f"| {negatives} | {wrong / negatives:.1%} ({wrong}/{negatives}) |"
        )
    return lines


def report(results: Sequence[Result]) -> str:
    """The crisis patterns' table, then every missed sentence and false alarm."""
    lines = _table(
        results,
        ("recall", "false-positive rate"),
        lambda r: (len(r.corpus.positives) - len(r.missed), len(r.false_positives)),
    )
    notes = [f"- missed ({r.corpus.lang}): «{s}»" for r in results for s in r.missed]
    notes += [f"- false alarm ({r.corpus.lang}): «{s}»" for r in results for s in r.false_positives]
    return "\n".join([*lines, "", *notes] if notes else lines)


def question_report(results: Sequence[Result]) -> str:
    """The crisis question's table: crisis sentences alerted or asked, hard negatives asked."""
    return "\n".join(
        _table(
            results,
            ("alerted or asked", "asked the question"),
            lambda r: (len(r.corpus.positives) - len(r.missed) + len(r.asked), len(r.negatives_asked)),
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rehab_bot.crisis_report",
        description="Recall and false-positive rate of the crisis patterns (crisis.toml) on a test corpus.",
    )
    parser.add_argument("--content", type=Path, help="the clinic's content directory (default: built-in content)")
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR, help="a directory of <lang>.toml corpus files")
    args = parser.parse_args(argv)
    try:
        content = load_content(args.content)
    except ContentError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return 2
    files = sorted(args.corpus.glob("*.toml"))
    if not files:
        print(f"no <lang>.toml corpus files in {args.corpus}", file=sys.stderr)
        return 2
    try:
        corpora = [load_corpus(path) for path in files]
    except CorpusError as exc:
        print(exc, file=sys.stderr)
        return 2
    results = [evaluate(content, corpus) for corpus in corpora]
    print(report(results))
    print("\nWith the crisis question:\n")
    print(question_report(results))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

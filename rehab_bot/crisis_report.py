"""Recall and false-positive rate of the crisis patterns on a test corpus.

    python -m rehab_bot.crisis_report [--content DIR] [--corpus DIR]

Prints a Markdown table (the one in docs/SAFETY.md, "Crisis detection") and
every missed sentence and false alarm, then a second table for the crisis
question: how many crisis sentences raise the crisis response or at least the
question (a ``[[concern]]`` pattern), and how many hard negatives are asked it. The corpus is one TOML file per
language (``en.toml``, ``de.toml``) with two lists: ``crisis`` (sentences that
must raise the crisis response) and ``not_crisis`` (hard negatives: idioms,
negations, other people, medical talk). The default corpus is the one in the
source tree, tests/data/crisis; a clinic that changes crisis.toml should run
it with ``--content`` on its own content directory, and add its patients'
wordings to a corpus of its own.

Exit status 1 when a language misses the targets (recall >= 95 %, false
positives <= 5 %), 2 on a content error. Prints no patient data: the corpus
is made up.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rehab_bot import crisis
from rehab_bot.content import Content, ContentError, load_content

CORPUS_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "crisis"
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


def load_corpus(path: Path) -> Corpus:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return Corpus(path.stem, tuple(data["crisis"]), tuple(data["not_crisis"]))


def evaluate(content: Content, corpus: Corpus) -> Result:
    missed = tuple(s for s in corpus.positives if not crisis.is_crisis(s, content))
    false_positives = tuple(s for s in corpus.negatives if crisis.is_crisis(s, content))
    asks = "crisis_question" in content.texts
    asked = tuple(s for s in missed if asks and crisis.is_concern(s, content))
    quiet = [s for s in corpus.negatives if s not in false_positives]
    negatives_asked = tuple(s for s in quiet if asks and crisis.is_concern(s, content))
    return Result(corpus, missed, false_positives, asked, negatives_asked)


def report(results: Sequence[Result]) -> str:
    lines = [
        "| language | crisis sentences | recall | hard negatives | false-positive rate |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        c = r.corpus
        found = len(c.positives) - len(r.missed)
        lines.append(
            f"| {c.lang} | {len(c.positives)} | {r.recall:.1%} ({found}/{len(c.positives)}) "
            f"| {len(c.negatives)} | {r.false_positive_rate:.1%} "
            f"({len(r.false_positives)}/{len(c.negatives)}) |"
        )
    notes = [f"- missed ({r.corpus.lang}): «{s}»" for r in results for s in r.missed]
    notes += [f"- false alarm ({r.corpus.lang}): «{s}»" for r in results for s in r.false_positives]
    return "\n".join([*lines, "", *notes] if notes else lines)


def question_report(results: Sequence[Result]) -> str:
    """The crisis question's table: crisis sentences alerted or asked, hard negatives asked."""
    lines = [
        "| language | crisis sentences | alerted or asked | hard negatives | asked the question |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        c = r.corpus
        reached = len(c.positives) - len(r.missed) + len(r.asked)
        lines.append(
            f"| {c.lang} | {len(c.positives)} | {reached / len(c.positives):.1%} ({reached}/{len(c.positives)}) "
            f"| {len(c.negatives)} | {len(r.negatives_asked) / len(c.negatives):.1%} "
            f"({len(r.negatives_asked)}/{len(c.negatives)}) |"
        )
    return "\n".join(lines)


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
    results = [evaluate(content, load_corpus(path)) for path in files]
    print(report(results))
    print("\nWith the crisis question:\n")
    print(question_report(results))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

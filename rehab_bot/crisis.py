"""Crisis phrases and symptom words: matching what a patient types against clinic content.

``crisis.toml`` holds ``[[crisis]]`` lists (a match shows the crisis text and
raises an emergency alert, see :mod:`rehab_bot.redflag`) and
``[[symptom_words]]`` lists (a match offers the symptom check with one tap).
Both are written in one small pattern language, documented in the file's
header and in ``docs/SAFETY.md``:

* a pattern is words, matched as whole words, in order, next to each other:
  ``kill myself``;
* ``word*`` is a word stem: ``sterb*`` matches sterben, sterbe, sterbt;
* ``a|b`` is either word: ``want|wish``, ``moechte|will*``;
* ``...`` between two words allows up to :data:`MAX_FILLER` other words there
  ("ich will wirklich nicht mehr leben" matches ``will ... nicht mehr ...
  leben``); filler words are never negations ("ich will nicht sterben" does
  not match ``will ... sterb*``);
* ``$`` at the end: the match must end a clause (a punctuation mark or the
  end of the message): ``will ... nicht mehr $`` matches "ich will einfach
  nicht mehr." but not "ich will nicht mehr so viele Tabletten";
* ``#`` is a count of ten or more, in digits or as a number word ("20",
  "zwanzig", "twenty", "dozen"): ``took ... # tramadol`` matches "took about
  20 tramadol" but not "took 2 tramadol" (:func:`is_count`).

Before matching, text and patterns are normalised the same way
(:func:`normalise`): case, umlauts and ß (ä = ae, ß = ss), punctuation,
English contractions (I'm, don't, can't, I'd, wanna ...), German ones (hab's,
gibt's, wär ...) and letters repeated for emphasis ("sooooo", "dieee"); words
are also compared with doubled letters read as one ("diee" = "die").

A crisis match right after a negation (:data:`NEGATIONS`, up to two words
before it in the same clause) does not count: "I would never hurt myself",
"I'm not suicidal"; not when the negation stands in a conditional clause with
a word between ("wenn die Versteifung nicht hält will ich nicht mehr leben").
"no" and "kein" cancel thoughts and intentions only ("no suicidal thoughts",
"no thoughts of hurting myself"). Symptom words ignore negations ("no fever"
still offers the check: asking costs one tap).

Plain Python: no telegram imports. Nothing here logs the text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rehab_bot import crisis_model
from rehab_bot.typed import one_slip

if TYPE_CHECKING:
    from rehab_bot.content import Content

MAX_FILLER = 3  # words that "..." allows
NEGATION_WINDOW = 2  # words before a crisis match that a negation cancels it from
NEGATIONS = frozenset({"not", "never", "nicht", "nie", "niemals", "keinesfalls", "keineswegs"})
# A negation in a conditional clause before the match negates that clause's own verb, not the crisis
# words after it: "wenn die Versteifung nicht hält will ich nicht mehr leben", "wenn der Schmerz nicht
# aufhört spring ich vom Balkon" (typed without the comma that would end the clause). It still cancels
# a match right after it: "if I'm not suicidal ...".
CONDITIONALS = frozenset({"wenn", "falls", "sofern", "solange", "if", "unless"})
# "no" and "kein" negate thoughts and intentions: right before a match that names them ("no suicidal
# thoughts", "keine Selbstmordgedanken", "kein Suizidgedanke") or before such a noun that stands before
# the match ("no thoughts of hurting myself", "keine Absicht mich zu verletzen"). Anywhere else they do
# not cancel: "I see no point in living", "no, I want to die".
NEGATING_ARTICLES = frozenset({"no", "kein", "keine", "keinen", "keiner", "keinerlei"})
INTENT_NOUNS = frozenset(
    {
        "thought", "thoughts", "intention", "intentions", "plan", "plans", "urge", "urges", "wish", "desire",
        "ideation", "gedanke", "gedanken", "absicht", "absichten", "plaene", "wunsch",
    }
)  # fmt: skip
INTENT_LINKS = frozenset({"of", "to", "about", "an", "daran", "zu", "mich", "mir"})
MIN_LETTERS = 4  # a pattern needs this many letters, to be safe from chance matches
MIN_STEM = 3  # letters before a "*"
MIN_COUNT = 10  # the smallest number "#" matches: an overdose told as a count ("took 20 tramadol")
# Number words of MIN_COUNT or more, as compared (doubled letters as one: "dreissig" is "dreisig").
_COUNT_WORDS = frozenset(
    {
        "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
        "nineteen", "twenty", "thirty", "forty", "fifty", "sixty", "hundred", "dozen", "dozens",
        "zehn", "elf", "zwoelf", "dreizehn", "vierzehn", "fuenfzehn", "sechzehn", "siebzehn", "achtzehn",
        "neunzehn", "zwanzig", "dreisig", "vierzig", "fuenfzig", "sechzig", "hundert", "dutzend", "dutzende",
    }
)  # fmt: skip
_COUNT_COMPOUND = re.compile(r"^[a-z]+und(zwanzig|dreisig|vierzig|fuenfzig|sechzig)$")  # fuenfundzwanzig

# --------------------------------------------------------------------------- normalising

_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'"})
# A sentence ends at . ! ? ; or a line break; "..." and "…" only end a clause
# ("ich will... nicht mehr" is one sentence), as do , : brackets, quotes, dashes.
_SENTENCE_END = re.compile(r"(?<!\.)\.(?!\.)|[!?;\n\r]+")
_CLAUSE_END = re.compile(r"\.{2,}|[…,:()\[\]\"“”„«»—–]+|\s-+\s")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*", re.UNICODE)
_REPEATS = re.compile(r"([^\W\d_])\1{2,}", re.UNICODE)
_DOUBLES = re.compile(r"([^\W\d_])\1+", re.UNICODE)  # letters only: "100" stays 100

# English contractions, with and without the apostrophe (people drop it).
_EN_WHOLE = {
    "can't": "can not",
    "cant": "can not",
    "cannot": "can not",
    "won't": "will not",
    "wont": "will not",
    "ain't": "am not",
    "aint": "am not",
    "shan't": "shall not",
    "i'm": "i am",
    "ive": "i have",
    "i'd": "i would",
    "i'll": "i will",
    "wanna": "want to",
    "gonna": "going to",
    "gotta": "got to",
    "hafta": "have to",
    "dunno": "do not know",
    "youre": "you are",
    "theyre": "they are",
    "thats": "that is",
    "whats": "what is",
    "theres": "there is",
    "heres": "here is",
    "everyones": "everyone is",
    "lifes": "life is",
}
_EN_NOT = re.compile(r"^(do|does|did|is|are|was|were|has|have|had|would|could|should|must|need|might)n'?t$")
_EN_IS = frozenset(
    {"it", "that", "what", "there", "here", "he", "she", "who", "where", "life", "everyone", "everything", "nothing"}
)
_EN_SUFFIX = {"m": "am", "re": "are", "ve": "have", "ll": "will", "d": "would"}
# German: "hab's", "gibt's", "gehts" (the pronoun "es"), colloquial short forms.
_DE_ES = frozenset(
    {
        "hab", "habe", "gibt", "geht", "war", "ist", "wird", "mach", "mache", "macht", "schaff", "schaffe",
        "halt", "halte", "ertrag", "ertrage", "kann", "will", "tut", "hat", "bringt", "bring", "wie", "waer", "wuerd",
    }
)  # fmt: skip
_DE_WHOLE = {
    "hab": "habe",
    "waer": "waere",
    "wuerd": "wuerde",
    "moecht": "moechte",
    "koennt": "koennte",
    "haett": "haette",
    "nich": "nicht",
    "nix": "nichts",
    "gibts": "gibt es",
    "gehts": "geht es",
    "habs": "habe es",
    "wars": "war es",
    "machs": "mache es",
    "schaffs": "schaffe es",
}


def _expand(word: str) -> str:
    """One word, its contractions written out (the word itself when it has none)."""
    if word in _EN_WHOLE:
        return _EN_WHOLE[word]
    if m := _EN_NOT.match(word):
        return f"{m.group(1)} not"
    if "'" in word:
        stem, _, suffix = word.rpartition("'")
        if suffix == "s":
            if stem in _EN_IS:
                return f"{stem} is"
            if stem in _DE_ES:
                return f"{_DE_WHOLE.get(stem, stem)} es"
            return stem + "s"
        if suffix in _EN_SUFFIX and stem.isalpha() and len(stem) <= 5:
            return f"{stem} {_EN_SUFFIX[suffix]}"
        return word.replace("'", "")
    return _DE_WHOLE.get(word, word)


def _fold(text: str) -> str:
    folded = text.casefold().translate(_FOLD)
    return _REPEATS.sub(r"\1", folded)


# Negations of more than one word, read as the one-word negation they mean.
_NEGATION_PHRASES = {("auf", "keinen", "fall"): "keinesfalls", ("in", "keinem", "fall"): "keinesfalls"}


def _words(clause: str) -> list[str]:
    words = " ".join(_expand(w) for w in _WORD.findall(clause)).split()
    for phrase, negation in _NEGATION_PHRASES.items():
        n = len(phrase)
        for at in range(len(words) - n, -1, -1):
            if tuple(words[at : at + n]) == phrase:
                words[at : at + n] = [negation]
    return words


def normalise(text: str) -> str:
    """What matching sees: lower case, umlauts folded, contractions written out, no punctuation."""
    return " ".join(_words(_fold(text)))


def key(word: str) -> str:
    """A word as compared: doubled letters read as one ("diee" = "die", "will" = "wil")."""
    return _DOUBLES.sub(r"\1", word)


def is_count(word: str) -> bool:
    """Is this word (as compared) a count of MIN_COUNT or more: digits, or a number word?"""
    if word.isdecimal():  # not isdigit: "²²" is digits to str.isdigit, and int() refuses it
        return int(word) >= MIN_COUNT
    return word in _COUNT_WORDS or _COUNT_COMPOUND.match(word) is not None


# Words are compared by key (doubled letters as one), so the negations are too: "keinesfalls" is "keinesfals".
_NEGATION_KEYS = frozenset(key(w) for w in NEGATIONS)
_CONDITIONAL_KEYS = frozenset(key(w) for w in CONDITIONALS)
_ARTICLE_KEYS = frozenset(key(w) for w in NEGATING_ARTICLES)
_INTENT_KEYS = frozenset(key(w) for w in INTENT_NOUNS)
_LINK_KEYS = frozenset(key(w) for w in INTENT_LINKS)


@dataclass(frozen=True)
class Sentence:
    """One sentence of a message: its words (as compared) and where clauses end."""

    words: tuple[str, ...]
    clause_ends: frozenset[int]  # indices of words that end a clause (the last word always does)


def sentences(text: str) -> list[Sentence]:
    """A message split into sentences of comparable words."""
    result = []
    for raw in _SENTENCE_END.split(_fold(text)):
        words: list[str] = []
        ends: set[int] = set()
        for clause in _CLAUSE_END.split(raw):
            found = _words(clause)
            if found:
                words.extend(key(w) for w in found)
                ends.add(len(words) - 1)
        if words:
            result.append(Sentence(tuple(words), frozenset(ends)))
    return result


# --------------------------------------------------------------------------- patterns


class PatternError(ValueError):
    """A pattern that cannot be used; the message says why, for `content check`."""


@dataclass(frozen=True)
class Slot:
    """One word of a pattern: its alternatives (key, is a stem) and the filler allowed before it;
    a count ("#") has no alternatives and matches a number of MIN_COUNT or more."""

    alternatives: tuple[tuple[str, bool], ...]
    filler: int = 0
    count: bool = False

    def matches(self, word: str) -> bool:
        if self.count:
            return is_count(word)
        for alt, stem in self.alternatives:
            if word == alt or (stem and word.startswith(alt)):
                return True
        return False


@dataclass(frozen=True)
class Pattern:
    source: str
    slots: tuple[Slot, ...]
    clause_end: bool = False


_PATTERN_CHARS = re.compile(r"^[\w' |*$.#-]+$", re.UNICODE)


def _alternative(text: str) -> tuple[str, bool, int]:
    """One side of "a|b" (or a stem): (its key, is a stem, its letters)."""
    stem = text.endswith("*")
    body = text[:-1] if stem else text
    if "*" in body:
        raise PatternError(f"'{text}': '*' may only end a word")
    words = normalise(body).split()
    if len(words) != 1:
        what = "is empty" if not words else f"is more than one word ({' '.join(words)})"
        raise PatternError(f"'{text}' {what}; each side of '|' and each stem must be one word")
    if stem and len(words[0]) < MIN_STEM:
        raise PatternError(f"'{text}': a stem needs {MIN_STEM} letters or more before '*'")
    return key(words[0]), stem, len(words[0])


# Pure and its result frozen, so kept per pattern text: content is checked again on each reload, by
# `rehab-bot content check` and by every bot a test starts (the crisis lists had 30% of a load).
@functools.lru_cache(maxsize=8192)
def compile_pattern(pattern: str) -> Pattern:
    """Parse one pattern; raises PatternError with a message for the clinic (never cached)."""
    text = pattern.strip()
    if not text:
        raise PatternError("an empty pattern")
    if not _PATTERN_CHARS.match(text):
        bad = sorted({c for c in text if not re.match(r"[\w' |*$.#-]", c)})
        raise PatternError(f"'{pattern}' has characters a pattern cannot use: {' '.join(bad)}")
    pieces = re.sub(r"\s*\.\.\.\s*", " ... ", _fold_umlauts(text)).split()
    clause_end = bool(pieces) and pieces[-1] == "$"
    if clause_end:
        pieces = pieces[:-1]
    if "$" in " ".join(pieces):
        raise PatternError(f"'{pattern}': '$' may only stand at the end, as a word of its own")
    slots: list[Slot] = []
    letters = 0
    filler = 0
    for piece in pieces:
        if piece == "...":
            if not slots or filler:
                raise PatternError(f"'{pattern}': '...' must stand between two words")
            filler = MAX_FILLER
            continue
        if piece == "#":
            slots.append(Slot((), filler, count=True))
            filler = 0
            continue
        if "#" in piece:
            raise PatternError(f"'{pattern}': '#' (a count) must stand as a word of its own")
        if "." in piece:
            raise PatternError(f"'{pattern}': write '...' (three dots, for filler words) or no dots")
        if "|" in piece or "*" in piece:
            parsed = [_alternative(alt) for alt in piece.split("|")]
            slots.append(Slot(tuple((k, stem) for k, stem, _ in parsed), filler))
            letters += min(n for _, _, n in parsed)
        else:
            words = normalise(piece).split()
            if not words:
                raise PatternError(f"'{pattern}': '{piece}' has no letters")
            for n, word in enumerate(words):
                slots.append(Slot(((key(word), False),), filler if n == 0 else 0))
                letters += len(word)
        filler = 0
    if filler:
        raise PatternError(f"'{pattern}': '...' must stand between two words")
    if not slots:
        raise PatternError(f"'{pattern}' has no words")
    if letters < MIN_LETTERS:
        raise PatternError(f"'{pattern}' is too short to match safely ({MIN_LETTERS} letters or more)")
    return Pattern(pattern, tuple(slots), clause_end)


def _fold_umlauts(text: str) -> str:
    return text.casefold().translate(_FOLD)


# --------------------------------------------------------------------------- matching


def _rest(pattern: Pattern, sentence: Sentence, slot_index: int, position: int, skip_negations: bool) -> bool:
    """Do the pattern's slots from slot_index on match the sentence from position on?"""
    words = sentence.words
    if slot_index == len(pattern.slots):
        return not pattern.clause_end or (position - 1) in sentence.clause_ends
    slot = pattern.slots[slot_index]
    for gap in range(slot.filler + 1):
        at = position + gap
        if at >= len(words):
            return False
        if gap and skip_negations and words[at - 1] in _NEGATION_KEYS:
            return False  # filler words are never negations
        if slot.matches(words[at]) and _rest(pattern, sentence, slot_index + 1, at + 1, skip_negations):
            return True
    return False


def _clause_end(sentence: Sentence, at: int) -> int:
    while at not in sentence.clause_ends:
        at += 1
    return at


def _clause_start(sentence: Sentence, at: int) -> int:
    while at > 0 and (at - 1) not in sentence.clause_ends:
        at -= 1
    return at


def _negated(sentence: Sentence, start: int) -> bool:
    """Is a crisis match starting at `start` negated by the words just before it (same clause)?"""
    words = sentence.words
    for back in range(1, NEGATION_WINDOW + 1):
        at = start - back
        if at < 0 or at in sentence.clause_ends:
            break
        if words[at] in _NEGATION_KEYS:
            conditional = any(w in _CONDITIONAL_KEYS for w in words[_clause_start(sentence, at) : at])
            if back == 1 or not conditional:
                return True
    # "no" / "kein" right before a match that names thoughts ("no suicidal thoughts"), or before a noun of
    # intent (and a link word) right before the match ("no thoughts of hurting myself")
    before = start - 1
    if before < 0 or before in sentence.clause_ends:
        return False
    if words[before] in _ARTICLE_KEYS:
        after = words[start : _clause_end(sentence, start) + 1][:4]
        return any(w.endswith(noun) for w in after for noun in _INTENT_KEYS)
    at = before - 1 if words[before] in _LINK_KEYS else before
    if at < 1 or at in sentence.clause_ends or words[at] not in _INTENT_KEYS:
        return False
    return (at - 1) not in sentence.clause_ends and words[at - 1] in _ARTICLE_KEYS


# An invitation link (t.me/<bot>?start=<code>) arrives as the message "/start <code>". The code is
# random (rehab_bot.invite.new_code: 16 characters of A-Z, a-z, 0-9, _ and -), never the patient's
# words, yet about one code in 20,000 reads as a word stem: "riTzER8eSvch4I4u" as ritz* (a crisis
# pattern), "leAkbo-j2Zfasz8p" as leak* (a symptom word). Such a patient got the crisis text every
# time they opened their own link and could never enrol. A payload with a digit, _ or -, or with
# capitals after its first letter is a code and is not read; "/start Sterben" typed by hand still is.
_LINK_PAYLOAD = re.compile(r"\A\s*/start(?:@\w+)?\s+(\S+)\s*\Z", re.IGNORECASE)
# The same code in a link pasted into a message (t.me/<bot>?start=<code>): the parameter is not read.
_LINK_PARAMETER = re.compile(r"[?&]start(?:app|group)?=[A-Za-z0-9_-]+", re.IGNORECASE)


def is_link_code(text: str) -> bool:
    """True when the text is "/start <payload>" and the payload is a code rather than a word."""
    found = _LINK_PAYLOAD.match(text)
    if found is None:
        return False
    payload = found.group(1)
    if any(c.isdigit() or c in "_-" for c in payload):
        return True
    return not (payload.islower() or payload.isupper() or payload[1:].islower())


def find(patterns: Sequence[Pattern], text: str, *, negations: bool = True) -> Pattern | None:
    """The first pattern that matches the text, or None. negations: apply the negation rules.

    The code of an invitation link ("/start <code>", :func:`is_link_code`, or ``?start=<code>``
    in a pasted link) is not text and matches nothing.
    """
    if is_link_code(text):
        return None
    return _find_in(patterns, sentences(_LINK_PARAMETER.sub(" ", text)), negations)


def _find_in(patterns: Sequence[Pattern], found: list[Sentence], negations: bool) -> Pattern | None:
    for sentence in found:
        for start, word in enumerate(sentence.words):
            for pattern in patterns:
                if (
                    pattern.slots[0].matches(word)
                    and _rest(pattern, sentence, 1, start + 1, negations)
                    and not (negations and _negated(sentence, start))
                ):
                    return pattern
    return None


# A slip of the keyboard in a crisis word ("i wnat to die", "kill myslef", "will mich umbrigen"): one
# letter left out, one added or two neighbours swapped (rehab_bot.typed.one_slip), in a word of
# SLIP_MIN_LETTERS or more; a letter added at the end is another word ("Ritzel" is not "ritze"). Such a
# match asks the crisis question; it never alerts by itself.
SLIP_MIN_LETTERS = 4


@functools.lru_cache(maxsize=16)
def _slip_index(patterns: tuple[Pattern, ...]) -> dict[str, frozenset[tuple[str, bool]]]:
    """The patterns' words (key, is a stem) by each of their one-letter-shorter forms and themselves."""
    index: dict[str, set[tuple[str, bool]]] = {}
    for pattern in patterns:
        for slot in pattern.slots:
            for alt, stem in slot.alternatives:
                if len(alt) >= SLIP_MIN_LETTERS:
                    for form in {alt, *(alt[:i] + alt[i + 1 :] for i in range(len(alt)))}:
                        index.setdefault(form, set()).add((alt, stem))
    return {form: frozenset(words) for form, words in index.items()}


def _unslipped(word: str, index: dict[str, frozenset[tuple[str, bool]]]) -> str:
    """The pattern word a typed word is one slip away from (a stem's word: the stem), or the word itself."""
    if len(word) < SLIP_MIN_LETTERS or any(alt == word for alt, _ in index.get(word, ())):
        return word
    for cut in range(len(word), len(word) - 3, -1):  # a stem: the word's beginning, one letter either way
        head = word[:cut]
        forms = {head, *(head[:i] + head[i + 1 :] for i in range(len(head)))}
        for form in forms:
            for alt, stem in index.get(form, ()):
                if (stem or cut == len(word)) and one_slip(head, alt) and head[:-1] != alt:
                    return alt  # a stem's word: the stem itself, which matches it
    return word


def find_slipped(patterns: Sequence[Pattern], text: str) -> Pattern | None:
    """The first pattern that matches the text once words one slip away from a pattern's word are read as
    that word; None when none does (the plain :func:`find` is tried first by callers)."""
    if is_link_code(text):
        return None
    index = _slip_index(tuple(patterns))
    read = [
        Sentence(tuple(_unslipped(w, index) for w in sentence.words), sentence.clause_ends)
        for sentence in sentences(_LINK_PARAMETER.sub(" ", text))
    ]
    return _find_in(patterns, read, True)


# --------------------------------------------------------------------------- content


def crisis_patterns(content: Content) -> tuple[Pattern, ...]:
    """Every crisis pattern of every language (a German patient may write English)."""
    return tuple(p for lst in content.crisis.values() for p in lst.patterns)


def is_crisis(text: str, content: Content) -> bool:
    """True when the text matches a crisis pattern."""
    return bool(text) and find(crisis_patterns(content), text) is not None


QUESTION = "crisis_question"  # the content text that asks; without it the concern lists are not used


def asks_question(text: str, content: Content) -> bool:
    """True when the bot should ask the crisis question about this text: no crisis pattern (that alerts
    at once), but a concern pattern, and the clinic's content has the question's text."""
    return QUESTION in content.texts and not is_crisis(text, content) and is_concern(text, content)


# A typed answer to the crisis question (the patient wrote instead of tapping Yes or No). Anything that
# leans towards yes counts as Yes, as a clinician would take it ("sometimes", "maybe", "ja, manchmal"):
# Yes alerts the clinic and shows the crisis text, so a doubtful answer errs that way. No is only a
# short message of nothing but no-words ("no", "nein danke", "no, not at all", "auf keinen Fall").
TYPED_YES = frozenset(
    "yes yeah yea yep yup ya yah yas ye aye sure sometimes maybe perhaps possibly kinda somewhat "
    "ja jap jep jo joa jawohl jein manchmal vielleicht eventuell moeglicherweise bisschen irgendwie "
    "teilweise oefter oft".split()
)
TYPED_YES_PHRASES = ("i think so", "kind of", "a bit", "a little", "glaube schon", "denke schon", "schon irgendwie")
TYPED_NO = frozenset(
    "no nope nah not never nein noe ne nee nicht nie niemals keinesfalls keineswegs "
    "thanks thank you danke at all all gar ueberhaupt auf keinen fall of course definitely absolutely "
    "really natuerlich sicher im i am bin ich alles schon gut fine ok okay".split()
)
TYPED_NO_FIRST = frozenset("no nope nah nein noe ne nee nie never keinesfalls keineswegs".split())
_NOT_BEFORE_YES = frozenset("no not kein keine nicht nie never".split())  # "kein bisschen", "not often"
TYPED_ANSWER_MAX_WORDS = 8


def typed_answer(text: str) -> bool | None:
    """A typed reply to the crisis question read as Yes (True), No (False) or neither (None).

    Yes: a short message (at most TYPED_ANSWER_MAX_WORDS words) with a yes-word in it ("ja", "yes I
    have", "sometimes", "ich glaube schon"). No: a short message that begins with a no-word and has
    nothing but no-words ("nein", "no, not at all", "nein danke, alles gut"). Anything else (a longer
    message, "no but I wish it was over") is neither, and is read as any other message is.
    """
    words = normalise(text).split()
    if not words or len(words) > TYPED_ANSWER_MAX_WORDS:
        return None
    said = " ".join(words)
    if any(w in TYPED_YES and (i == 0 or words[i - 1] not in _NOT_BEFORE_YES) for i, w in enumerate(words)) or any(
        f" {phrase} " in f" {said} " for phrase in TYPED_YES_PHRASES
    ):
        return True
    if words[0] in TYPED_NO_FIRST and all(w in TYPED_NO for w in words):
        return False
    return None


def is_concern(text: str, content: Content) -> bool:
    """True when the text matches a concern pattern: a word of danger too common to alert on by itself
    (pills and "extra", a will, a ledge), about which the bot asks the patient directly first; or when it
    resembles the content's crisis examples (rehab_bot.crisis_model: a farewell, a preparation), which
    never alerts by itself either."""
    if not text:
        return False
    if find(tuple(p for lst in content.concern.values() for p in lst.patterns), text) is not None:
        return True
    if find_slipped(crisis_patterns(content), text) is not None:  # a crisis word mistyped: ask
        return True
    model = crisis_model.model_of(*content.crisis_examples)
    return model is not None and model.asks(text)


def symptom_checks(content: Content) -> frozenset[str]:
    """Every questionnaire a symptom word can offer (symptom_check_for)."""
    found = (words.questionnaire for words in content.symptom_words.values())
    return frozenset(q for q in found if q in content.questionnaires)


def symptom_check_for(text: str, content: Content) -> str | None:
    """The questionnaire to offer for a symptom word in the text (not a crisis), or None."""
    if not text:
        return None
    for words in content.symptom_words.values():
        if words.questionnaire in content.questionnaires and find(words.patterns, text, negations=False):
            return words.questionnaire
    return None

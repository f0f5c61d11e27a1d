"""Crisis patterns and symptom words: normalising, the pattern language, and the corpus.

The corpus (tests/data/crisis/*.toml) was written by the same team as the
patterns, before them and without tuning sentences to patterns; the figures it
gives are printed by ``python -m rehab_bot.crisis_report`` and quoted in
docs/SAFETY.md.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from rehab_bot import crisis, redflag
from rehab_bot.content import Content, load_content
from rehab_bot.crisis import PatternError, compile_pattern, find, normalise
from rehab_bot.crisis_report import CORPUS_DIR, MAX_FPR, MIN_RECALL, evaluate, load_corpus, question_report, report


@pytest.fixture(scope="module")
def content() -> Content:
    return load_content(None)


def matches(pattern: str, text: str, *, negations: bool = True) -> bool:
    return find([compile_pattern(pattern)], text, negations=negations) is not None


# --------------------------------------------------------------------------- normalising


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("Ich MÖCHTE nicht mehr leben!!!", "ich moechte nicht mehr leben"),
        ("Das Maß ist voll, Straße", "das mass ist voll strasse"),
        ("I'm done. I don't want to live", "i am done i do not want to live"),
        (
            "I wasn’t here, I can't, I won't, I'd go, I've been",
            "i was not here i can not i will not i would go i have been",
        ),
        ("i dont wanna, im gonna, it's, cannot", "i do not want to im going to it is can not"),
        ("isnt wasnt couldnt shouldnt", "is not was not could not should not"),
        (
            "hab's nicht geschafft, gibt's, gehts, hab keine Kraft",
            "habe es nicht geschafft gibt es geht es habe keine kraft",
        ),
        ("ich wär lieber tot", "ich waere lieber tot"),
        ("Sooooo tired, dieeee, STERBEEEN", "so tired die sterben"),
        ("self-harm; end-of-life", "self harm end of life"),
    ],
)
def test_normalise(text: str, normalised: str) -> None:
    assert normalise(text) == normalised


def test_german_im_is_not_i_am() -> None:
    assert normalise("Ich will nicht mehr im Bett liegen") == "ich will nicht mehr im bett liegen"


# --------------------------------------------------------------------------- the pattern language


def test_words_match_whole_and_in_order() -> None:
    assert matches("kill myself", "I want to KILL MYSELF.")
    assert not matches("kill myself", "myself, I would kill for a coffee")
    assert not matches("kill myself", "I'll skill myself up")


def test_a_stem_matches_inflections() -> None:
    assert matches("will ... sterb*", "ich will sterben")
    assert matches("will ... sterb*", "ich will sterbe")
    assert matches("kill* myself", "I've been killing myself")
    assert not matches("kill myself", "I've been killing myself")


def test_alternatives() -> None:
    pattern = "want|wish to ... die"
    assert matches(pattern, "I want to die") and matches(pattern, "I wish to die")
    assert matches(pattern, "I wanna just die")  # wanna = want to
    assert not matches(pattern, "I need to die")


def test_filler_words_up_to_three_and_never_negations() -> None:
    pattern = "will ... nicht mehr ... leben"
    assert matches(pattern, "Ich will nicht mehr leben")
    assert matches(pattern, "Ich will wirklich nicht mehr leben")
    assert matches(pattern, "Ich will ehrlich gesagt echt nicht mehr so leben")
    assert not matches(pattern, "Ich will ehrlich gesagt echt wirklich nicht mehr leben")  # four
    assert not matches("will ... sterb*", "Ich will nicht sterben, ich habe Angst vor der OP")
    assert matches("will ... sterb*", "Ich will, ehrlich gesagt, sterben")  # commas inside a sentence are fine
    assert not matches("will ... sterb*", "Ich will heim. Sterben tut hier keiner")  # not across sentences


def test_ellipsis_in_a_message_does_not_end_the_sentence() -> None:
    assert matches("will ... nicht mehr ... leben", "ich will... einfach nicht mehr leben")
    assert matches("will ... nicht mehr ... leben", "ich will … nicht mehr leben")


def test_dollar_ends_a_clause() -> None:
    pattern = "will ... nicht mehr $"
    assert matches(pattern, "Ich will einfach nicht mehr.")
    assert matches(pattern, "Ich will nicht mehr, ich kann nicht mehr")
    assert matches(pattern, "ich will nicht mehr")
    assert not matches(pattern, "Ich will nicht mehr so viele Tabletten nehmen")


def test_a_negation_just_before_a_crisis_match_cancels_it() -> None:
    assert not matches("hurt myself", "I would never hurt myself")
    assert not matches("suicid*", "I'm not suicidal, just frustrated")
    assert matches("suicid*", "I'm not ok, I'm suicidal")  # another clause
    assert matches("suicid*", "I'm not sure what to do, I keep thinking of suicide")
    assert matches("not want to live", "I do not want to live")  # the negation is part of the pattern
    assert matches("suicid*", "I'm not suicidal", negations=False)  # symptom words ignore negations


def test_keinesfalls_and_auf_keinen_fall_negate() -> None:
    # words are compared with doubled letters as one: "keinesfalls" is read as "keinesfals"
    assert not matches("will ... sterb*", "ich will keinesfalls sterben")
    assert not matches("will ... sterb*", "ich will auf keinen Fall sterben")
    assert matches("will ... sterb*", "ich will auf jeden Fall sterben")


def test_a_negation_in_a_conditional_clause_does_not_cancel_what_follows() -> None:
    pattern = "will|moechte ... nicht mehr ... leb*"
    assert matches(pattern, "wenn die Versteifung nicht hält will ich nicht mehr leben")
    assert matches("spring* ... balkon", "wenn der Schmerz nicht aufhört spring ich vom Balkon")
    assert not matches("suicid*", "if I'm not suicidal, why do I feel like this")  # right before: negated
    assert not matches("will ... sterb*", "weil die Reha nicht wirkt will ich nie sterben")  # no conditional


def test_no_and_kein_negate_thoughts_but_not_a_point() -> None:
    assert not matches("suicid*", "no suicidal thoughts, just tired")
    assert not matches("selbstmord*", "ich hab keine Selbstmordgedanken")
    assert not matches("hurting myself", "no thoughts of hurting myself, just bored")
    assert matches("point in living", "I see no point in living")
    assert matches("want to ... die", "no i want to die")


def test_a_count_is_ten_or_more_in_digits_or_words() -> None:
    pattern = "took ... # tramadol|pills"
    counts = ("took about 20 tramadol", "took 10 pills", "took 100 pills", "took twenty pills", "took a dozen pills")
    for text in counts:
        assert matches(pattern, text), text
    for text in ("took 2 tramadol", "took 9 pills", "took 20 mg tramadol", "took two pills"):
        assert not matches(pattern, text), text
    assert matches("# tabletten ... genommen", "hab fünfundzwanzig Tabletten genommen")
    assert matches("# tabletten ... genommen", "hab dreißig Tabletten genommen")
    assert not matches("# tabletten ... genommen", "hab 2 Tabletten genommen")
    assert crisis.key("100") == "100" and crisis.key("11") == "11"  # doubled digits are not letters


def test_doubled_letters_count_once() -> None:
    assert matches("want to ... die", "i want to diee")
    assert matches("better off dead", "better of dead")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "empty"),
        ("die", "too short"),
        ("... want to die", "between two words"),
        ("want to die ...", "between two words"),
        ("want ... ... die", "between two words"),
        ("want .. die", "three dots"),
        ("want to die!", "cannot use: !"),
        ("want (to) die", "cannot use: ( )"),
        ("st*rb", "may only end a word"),
        ("le* mehr", "3 letters or more before '*'"),
        ("don't|never want", "one word"),
        ("will $ sterben", "'$' may only stand at the end"),
        ("*|sterben", "is empty"),
        ("took #5 pills", "'#' (a count) must stand as a word of its own"),
        ("# #", "too short"),
    ],
)
def test_bad_patterns_are_explained(pattern: str, message: str) -> None:
    with pytest.raises(PatternError, match=None) as info:
        compile_pattern(pattern)
    assert message in str(info.value)


# --------------------------------------------------------------------------- built-in content


def test_issue_12_wordings_are_crises(content: Content) -> None:
    for text in (
        "Ich will wirklich nicht mehr leben",  # a filler word inside a listed phrase
        "I wish I wasn't here",
        "ich möchte am liebsten tot sein",
        "ich will einfach nicht mehr",
        "everyone would be better off without me",
        "I've been cutting myself",
        "ich ritze mich",
    ):
        assert redflag.is_crisis(text, content), text


def test_idioms_are_not_crises_but_may_offer_the_pain_check(content: Content) -> None:
    for text in ("this pain is killing me", "I'm dying to get back to running", "ich lache mich tot"):
        assert not redflag.is_crisis(text, content), text
    assert crisis.symptom_check_for("this pain is killing me", content) == "pain"
    assert crisis.symptom_check_for("Die Schmerzen bringen mich noch um", content) == "pain"


@pytest.mark.parametrize(
    "text",
    ["my bladder feels strange", "meine Blase fühlt sich komisch an", "my leg is numb", "Das Bein ist taub",
     "I have a fever", "Ich habe Fieber", "the wound is bleeding", "die Wunde blutet", "die Wunde nässt",
     "I feel a weakness in my legs", "I can't walk properly"],
)  # fmt: skip
def test_symptom_words_offer_the_symptom_check(content: Content, text: str) -> None:
    assert crisis.symptom_check_for(text, content) == "symptoms"


@pytest.mark.parametrize(
    "text",
    ["I can't pee", "I cannot urinate", "I peed myself", "I can't feel my legs", "I can't breathe",
     "ich kann nicht mehr pinkeln", "Ich kann kein Wasser lassen", "Ich spüre meine Beine nicht",
     "ich bekomme keine Luft"],
)  # fmt: skip
def test_retention_lost_feeling_and_breathlessness_in_plain_words_offer_the_symptom_check(
    content: Content, text: str
) -> None:
    """Cauda equina (urinary retention, legs without feeling) and breathlessness typed in everyday words."""
    assert crisis.symptom_check_for(text, content) == "symptoms"
    assert not redflag.is_crisis(text, content)


@pytest.mark.parametrize(
    "text", ["ich nehme mir das leben", "Ich nehm mir das Leben", "ich tu mir was an", "Ich tue mir etwas an."]
)
def test_german_word_orders_of_suicide_and_self_harm_are_crises(content: Content, text: str) -> None:
    assert redflag.is_crisis(text, content), text


def test_no_symptom_word_no_offer(content: Content) -> None:
    assert crisis.symptom_check_for("Thanks, see you tomorrow!", content) is None
    assert crisis.symptom_check_for("", content) is None


def test_the_ritz_is_no_crisis_but_cutting_is(content: Content) -> None:
    for text in ("We had tea at the Ritz", "Das Ritzel am Fahrrad ist kaputt", "Ritz crackers"):
        assert not crisis.is_crisis(text, content), text
    for text in ("ich ritze mich", "Ich ritzte mich gestern", "ich habe mir den Arm aufgeritzt", "sie ritzt sich"):
        assert crisis.is_crisis(text, content), text


def test_numbness_offers_the_check_but_a_phone_number_does_not(content: Content) -> None:
    for text in ("my foot is numb", "numbness in my left leg", "my toes feel numbed"):
        assert crisis.symptom_check_for(text, content) == "symptoms", text
    for text in ("What is the clinic's phone number?", "numbers are up today"):
        assert crisis.symptom_check_for(text, content) is None, text


def test_crisis_phrases_lists_the_patterns(content: Content) -> None:
    phrases = redflag.crisis_phrases(content)
    assert "kill* myself" in phrases and "geritzt|aufgeritzt|aufritzen|aufzuritzen" in phrases
    assert len(phrases) == len(set(phrases))


# --------------------------------------------------------------------------- the corpus


def test_the_corpus_is_large_enough() -> None:
    for lang in ("en", "de"):
        corpus = load_corpus(CORPUS_DIR / f"{lang}.toml")
        assert len(corpus.positives) >= 80 and len(corpus.negatives) >= 80, lang
        assert not set(corpus.positives) & set(corpus.negatives)


SETS = [CORPUS_DIR, CORPUS_DIR / "second", CORPUS_DIR / "third", CORPUS_DIR / "fourth", CORPUS_DIR / "fifth"]
SET_IDS = ["first", "second", "third", "fourth", "fifth"]
# The third, fourth and fifth sets were written by helpers who had not seen the patterns, measured held
# out (docs/SAFETY.md), and then the patterns were extended. Their recall is below MIN_RECALL: these
# floors are the figures after the extension, so a change to crisis.toml may keep or raise them only.
FLOORS = {
    ("third", "de"): 54 / 60,
    ("third", "en"): 54 / 60,
    ("fourth", "de"): 43 / 50,
    ("fourth", "en"): 46 / 50,
    ("fifth", "de"): 40 / 50,
    ("fifth", "en"): 41 / 50,
}


@pytest.mark.parametrize("corpus", SETS, ids=SET_IDS)
@pytest.mark.parametrize("lang", ["en", "de"])
def test_corpus_recall_and_false_positive_rate(content: Content, corpus: Path, lang: str) -> None:
    result = evaluate(content, load_corpus(corpus / f"{lang}.toml"))
    floor = FLOORS.get((SET_IDS[SETS.index(corpus)], lang), MIN_RECALL)
    assert result.recall >= floor - 1e-9, f"missed: {result.missed}"
    assert result.false_positive_rate <= MAX_FPR, f"false positives: {result.false_positives}"


@pytest.mark.parametrize("corpus", SETS, ids=SET_IDS)
def test_docs_safety_shows_what_the_report_prints(content: Content, corpus: Path) -> None:
    """docs/SAFETY.md quotes the figures; they must be the ones the code gives today."""
    results = [evaluate(content, load_corpus(corpus / f"{lang}.toml")) for lang in ("de", "en")]
    docs = (CORPUS_DIR.parent.parent.parent / "docs" / "SAFETY.md").read_text(encoding="utf-8")
    section = docs.split("## Crisis detection", 1)[1].split("\n## ", 1)[0]
    for line in report(results).splitlines():
        assert line in section, f"docs/SAFETY.md lacks: {line}"


@pytest.mark.parametrize("corpus", [CORPUS_DIR, CORPUS_DIR / "fifth"], ids=["first", "fifth"])
def test_docs_safety_shows_the_crisis_questions_table(content: Content, corpus: Path) -> None:
    results = [evaluate(content, load_corpus(corpus / f"{lang}.toml")) for lang in ("de", "en")]
    docs = (CORPUS_DIR.parent.parent.parent / "docs" / "SAFETY.md").read_text(encoding="utf-8")
    section = docs.split("## Crisis detection", 1)[1].split("\n## ", 1)[0]
    for line in question_report(results).splitlines():
        assert line in section, f"docs/SAFETY.md lacks: {line}"


HELD_OUT = CORPUS_DIR / "sixth"


def test_docs_safety_shows_the_held_out_sets_figures_and_none_of_its_sentences(content: Content) -> None:
    """The sixth set is held out (docs/SAFETY.md): its figures are quoted, so that a change to crisis.toml
    shows on it, but none of its sentences, and it is not held to the regression sets' floors."""
    corpora = [load_corpus(HELD_OUT / f"{lang}.toml") for lang in ("de", "en")]
    assert all(len(c.positives) == 50 and len(c.negatives) == 50 for c in corpora)
    results = [evaluate(content, corpus) for corpus in corpora]
    docs = (CORPUS_DIR.parent.parent.parent / "docs" / "SAFETY.md").read_text(encoding="utf-8")
    section = docs.split("## Crisis detection", 1)[1].split("\n## ", 1)[0]
    lines = [*report(results).splitlines(), *question_report(results).splitlines()]
    figures = [line for line in lines if line.startswith("| de ") or line.startswith("| en ")]
    assert len(figures) == 4
    for line in figures:
        assert line in section, f"docs/SAFETY.md lacks: {line}"
    for corpus in corpora:
        for sentence in (*corpus.positives, *corpus.negatives):
            assert sentence not in docs, "a held-out sentence is quoted"


def test_concern_words_ask_and_everyday_words_do_not(content: Content) -> None:
    for text in ("took an extra painkiller last night", "I wrote letters to my kids", "hab mein Testament gemacht"):
        assert crisis.is_concern(text, content) and not crisis.is_crisis(text, content), text
    for text in ("pain between my shoulder blades", "the pain disappeared", "last night was better", "a gift"):
        assert not crisis.is_concern(text, content), text


# Codes that read as a stem: ritz* (crisis), and weak*, leak*, numb*, ... (symptom words). Each was
# drawn by secrets.token_urlsafe(12), as rehab_bot.invite.new_code draws an invitation's code.
WORDY_CODES = [
    "riTzER8eSvch4I4u",
    "WeAaKVnUo1nW8MCp",
    "y-WeAK0s84D_irm3",
    "LEaKNM7C3dkreoLA",
    "B7CWPH-urrINimJB",
    "leAkbo-j2Zfasz8p",
    "FAXrTJ_LeEaKXDSD",
    "NaHT-ydyPbjYumJU",
    "N36a-Lg_BLOdMinj",
]


@pytest.mark.parametrize("code", WORDY_CODES)
def test_an_invitation_code_is_not_read_as_words(content: Content, code: str) -> None:
    for text in (f"/start {code}", f"/start@RehabBot {code}", f"/start cg{code}"):
        assert not crisis.is_crisis(text, content), text
        assert crisis.symptom_check_for(text, content) is None, text
    # The same letters in a sentence are still read: only a link's payload is skipped.
    assert crisis.is_crisis("ich ritze mich", content)
    assert crisis.symptom_check_for("my legs are weak", content) == crisis.symptom_check_for("/start weak", content)


def test_no_random_invitation_code_is_read_as_words(content: Content) -> None:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    draw = random.Random(19)
    codes = ["".join(draw.choice(alphabet) for _ in range(16)) for _ in range(40_000)]
    links = [f"/start {code}" for code in codes]
    read = [link for link in links if crisis.is_crisis(link, content) or crisis.symptom_check_for(link, content)]
    assert read == []


def test_the_code_in_a_pasted_link_is_not_read(content: Content) -> None:
    text = "here is my link https://t.me/RehabBot?start=riTzER8eSvch4I4u"
    assert not crisis.is_crisis(text, content)
    assert crisis.symptom_check_for("t.me/RehabBot?start=leAkbo-j2Zfasz8p", content) is None
    assert crisis.is_crisis("https://t.me/RehabBot?start=abc and I want to die", content)


@pytest.mark.parametrize("text", ["/start Selbstmord", "/start suicide", "/start SUIZID", "/start I want to die"])
def test_words_typed_after_start_are_still_read(content: Content, text: str) -> None:
    assert crisis.is_crisis(text, content)

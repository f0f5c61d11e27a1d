"""Crisis patterns and symptom words: normalising, the pattern language, and the corpus.

The corpus (rehab_bot/content/defaults/crisis_examples/*.toml, the first set) was written by the same
team as the patterns, before them and without tuning sentences to patterns; the figures it gives are
printed by ``python -m rehab_bot.crisis_report`` and quoted in docs/SAFETY.md. The later sets beside it
were held out once and are regression sets now; all of them are what the crisis question's model learns
from (rehab_bot.crisis_model). The held-out set is tests/data/crisis/ninth: not shipped, not learned.
"""

from __future__ import annotations

import random
import tomllib
from pathlib import Path

import pytest
import wordfreq

from rehab_bot import crisis, crisis_model, redflag
from rehab_bot.content import Content, ContentError, load_content
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
    # Digits int() cannot read ("²²", as typed for quiet hours "²²-7") are no count, and no crash.
    assert not crisis.is_count("²²") and not matches(pattern, "took ²² pills")
    assert crisis.is_count("٢٠")  # Arabic-Indic 20: a decimal number int() reads


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
     "ich bekomme keine Luft",
     # An outside test's phrasings that got no check:
     "havent been able to pee since this morning, belly is tight",
     "mein linkes Bein wird seit einer Stunde immer schwächer",
     "Beim Abwischen spür ich untenrum gar nix mehr", "hab in die Hose gemacht ohne es zu merken",
     "Kopfweh wird im Sitzen unerträglich, im Liegen gehts"],
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


# Extended on 2026-12-02 by category (methods, intent in every person, overdoses told, preparations), from
# the sixth set's misses. These sentences are our own, none is the sixth set's; the hard negatives share
# each family's words and must stay quiet.
CATEGORY_POSITIVES = {
    "shooting": [
        "ich erschieß mich, die Waffe vom Opa liegt noch im Schrank",
        "Papa sagt, er will sich erschießen",
        "er erschießt sich, sagt er",
        "he keeps saying he'll shoot himself",
        "i'm gonna shoot myself",
        "I could put a bullet through my head tonight",
        "hab schon überlegt, mir die Pistole an den Kopf zu halten",
        "my husband is talking about using the rifle on himself",
    ],
    "hanging": [
        "ich häng mich auf",
        "ich häng mich heut auf",
        "mein Sohn hat gesagt, er will sich aufhängen",
        "she said she is going to hang herself",
        "hab den Strick schon am Dachbalken festgemacht",
        "I worked out which rafter will hold.",
        "the noose is already tied",
        "he's threatening to hang himself",
    ],
    "drowning": [
        "ich will mich im See ertränken",
        "she wants to drown herself in the river",
        "I want to drown myself",
        "er will sich in der Donau ertränken",
        "my mum said she would drown herself",
    ],
    "jumping": [
        "ich spring morgen von der Talbrücke",
        "thinking of jumping off the multi storey car park",
        "mum wants to throw herself off the balcony",
        "ich stürz mich in die Tiefe",
        "ich spring vom Parkhaus",
        "werd mich vom Dach stürzen",
        "he's going to jump off the flyover",
        "my son said he would jump from the top floor",
    ],
    "trains and traffic": [
        "ich werf mich vor den nächsten Zug",
        "Opa sagt, er legt sich auf die Gleise",
        "ich lauf einfach auf die Autobahn",
        "I'm going to step in front of a lorry on the bypass",
        "thinking about lying down on the tracks tonight",
        "she walked onto the train tracks last night",
        "wollt mich vor die S-Bahn werfen",
        "ich fahr gegen einen Baum",
        "I'm going to crash my car on purpose",
    ],
    "poison, gas, starving": [
        "ich will mich mit Gas vergiften",
        "he said he'd gas himself in the car",
        "ich dreh den Gashahn auf",
        "ich lass mich einfach verhungern",
        "she is starving herself to death since the op",
        "ich will mich zu Tode hungern",
    ],
    "cutting": [
        "hab mir gestern mit ner Scherbe in den Unterarm geschnitten",
        "my daughter has been cutting herself again",
        "I slit my wrist last night",
        "ich schneid mir heut Nacht die Pulsadern auf",
        "he cut his forearms with a razor",
        "hab mir die Arme aufgeschnitten",
        "ritz mir wieder in die Arme",
        "I slashed my wrists",
    ],
    "intent, every person": [
        "Mama sagt, sie nimmt sich das Leben",
        "er hat gesagt er nimmt sich das Leben",
        "mein Mann will sich umbringen",
        "sie bringt sich um, hat sie gesagt",
        "Mei Bua sagt er bringt si um",
        "er hat gedroht, sich das Leben zu nehmen",
        "ich befürchte, er tut sich was an",
        "sie hat sich was angetan",
        "ich möchte aus dem Leben scheiden",
        "heut nacht mach ich schluss",
        "sie will ned mehr leben",
        "opa redet davon sich umzubringen",
        "my dad says he wants to kill himself",
        "she's thinking of taking her own life",
        "he is planning to end his life",
        "my wife doesn't want to go on",
        "I'm going to end it tonight",
        "I'm so tired of existing",
        "Mutti sagt, sie wolle nicht mehr leben",
        "nobody will stop me this time",
    ],
    "overdoses told": [
        "hab grad 25 Tramal genommen",
        "hab vorhin zwanzig Schlaftabletten geschluckt",
        "er hat 40 Tabletten eingeworfen",
        "I took 15 oxycodone an hour ago",
        "just swallowed about thirty sleeping pills",
        "took 20 of my pregabalin",
        "popped 12 oxy",
        "hab 15 Ibu eingeworfen",
        "sie hat 20 Stück genommen",
        "took like 30 paracetamol",
        "hab die ganze Packung Zopiclon genommen",
        "sie hat die ganzen Tilidin reingehauen",
        "die ganze Flasche Novalgin Tropfen ausgetrunken",
        "hab die halbe Packung Lyrica geschluckt",
        "I'm swallowing the whole box of diazepam tonight",
        "necked a whole bottle of codeine",
        "took 2 boxes of tramadol",
        "I doubled my oxycodone on purpose",
        "hab absichtlich doppelt genommen",
        "viel zu viele Tabletten, das war kein Versehen",
        "I've got enough tablets saved to not wake up",
    ],
}
CATEGORY_NEGATIVES = {
    "shooting": [
        "mein Nachbar ist Sportschütze",
        "the photographer will shoot us at the wedding",
        "I shot myself in the foot with that appointment",
        "der Jäger hat einen Hirsch erschossen",
        "ich hol mir eine Kugel Eis",
        "In dem Film erschießt sich der Bösewicht am Ende",
        "used the massage gun on myself after physio",
    ],
    "hanging": [
        "die App hängt sich ständig auf",
        "I hung my coat on the hook",
        "the shelf needs a beam that will hold the weight",
        "hab den Gürtel an den Haken gehängt",
        "he's hanging in there",
    ],
    "drowning": [
        "ich ertränke meinen Kummer in Schokolade",
        "I'm drowning in paperwork",
        "wir gehen im Sommer gern im See baden",
        "the river walk was lovely",
        "my grandkids came back with pockets full of stones",
        "die Kinder haben Steine in die Hosentaschen gesteckt",
    ],
    "jumping": [
        "the kids jumped off the pier into the lake",
        "hab vom Aussichtsturm runtergeschaut, tolle Sicht",
        "in dem Krimi stürzt sich der Mörder vom Kirchturm",
        "ich springe ohne Stock herum",
        "in Kroatien kann man von den Klippen springen",
        "She threw herself off balance reaching for the shelf",
    ],
    "trains and traffic": [
        "ich stelle mich vor: ich bin die neue Patientin",
        "the bus stopped in front of the station",
        "ich fahr morgen auf die Autobahn Richtung Köln",
        "my train was late",
        "ich fahr gegen zehn Uhr zur Reha",
        "the car crashed into a lamppost, nobody hurt",
        "I walked on the railway path today",
        "vor dem Zug lauf ich noch schnell zum Bäcker",
        "auf die Autobahn, dann legen wir eine Pause ein",
    ],
    "poison, gas, starving": [
        "ich hab mich an Pilzen vergiftet, war eklig",
        "I think the chips gave me food poisoning",
        "der Gasherd ist neu",
        "ich verhungere hier, wann gibt's Essen?",
        "I'm starving, is lunch soon?",
        "hab mich zu Tode gelangweilt",
        "Angst, mich an Pilzen zu vergiften",
    ],
    "cutting": [
        "ich schneide mir die Haare",
        "he cut the rope",
        "I cut my finger chopping onions",
        "the brace strap cuts into my thigh",
        "der Gurt schneidet sich in die Haut",
        "I cut my arm on the fence",
        "he's cutting himself a slice of cake",
        "bei der OP wurde mir die Haut am Rücken aufgeschnitten",
    ],
    "intent, every person": [
        "er nimmt sich das Leben nicht so schwer wie ich",
        "das bringt mich um den Schlaf",
        "my brother tried to end his life years ago, he's doing great now",
        "the hero takes his own life at the end of the book",
        "he's killing himself with work",
        "ich mache heute früher Schluss",
        "Schluss für heute mit den Übungen",
        "I want to end it with my boyfriend",
        "now nobody can stop me on the stairs!",
        "nobody can stop me now!",
        "I won't be around on Monday, can we move the appointment?",
        "sie will sich was Gutes antun",
        "please make sure I don't wake up during the operation",
        "I'm tired of being here, when can I go home?",
        "er wollte vor Jahren nicht mehr leben, heute geht's ihm gut",
        "das werd ich sicher nicht überleben",
    ],
    "overdoses told": [
        "ich nehme 12 Tabletten am Tag",
        "I take 10 tablets a day for my heart",
        "took 20 mg of tramadol as prescribed",
        "hab 2 Ibuprofen genommen",
        "hab 30 Tropfen Novalgin genommen",
        "ich hab die Tablette mit Absicht nach dem Essen genommen",
        "the physio doubled my exercises on purpose",
        "hab die ganze Flasche Wein ausgetrunken",
        "die ganze Packung Kekse gegessen",
        "I bought a whole box of paracetamol at the pharmacy",
        "took the tablets with food on purpose",
        "I took the stairs on purpose",
        "ich hab 12 Übungen gemacht",
        "ich habe heute alle 10 Medikamente eingenommen",
        "I take my meds together on purpose so I don't forget",
        "Der Physio hat mich hart rangenommen, das war Absicht.",
        "Ich hab den Bus genommen, war kein Zufall dass wir uns trafen",
        "hab die ganze Packung Gummibärchen reingehauen",
    ],
}


@pytest.mark.parametrize("family", list(CATEGORY_POSITIVES))
def test_each_category_alerts_on_its_wordings_and_stays_quiet_on_everyday_talk(content: Content, family: str) -> None:
    missed = [text for text in CATEGORY_POSITIVES[family] if not crisis.is_crisis(text, content)]
    alerted = [text for text in CATEGORY_NEGATIVES[family] if crisis.is_crisis(text, content)]
    assert missed == [] and alerted == []


@pytest.mark.parametrize(
    "text",
    ["I won't be needing the brace, I'm sorting out the rest of my stuff anyway. Don't look for me.",
     "hab das Abo und den Handyvertrag gekündigt", "wenn ich nicht mehr bin, kriegt ihr das Haus",
     "Opa redet seit Tagen nur vom Sterben", "dann geh ich in den Fluss.", "da würd mich keiner mehr rausholen.",
     "I doubled it and then tripled it again on purpose", "mum keeps hiding her tramadol under the mattress",
     "er fährt raus und kommt nicht wieder.", "my nan says she wants to be with grandad now",
     "I'd fill my coat with stones in the pockets and walk in", "Steine in die Manteltaschen und dann ins Wasser",
     "my dad has a gun and says he'll use it on himself", "ich geh heut nacht in den Rhein und komm nicht mehr raus"],
)  # fmt: skip
def test_farewells_and_preparations_everyday_talk_shares_are_asked_about(content: Content, text: str) -> None:
    """Not alerted at once (everyday talk has these words too), but the crisis question is asked."""
    assert not crisis.is_crisis(text, content) and crisis.asks_question(text, content), text


# The eighth round (2026-12-03), by category from the eighth set's misses. Our own sentences, none of them the
# eighth set's: each category alerts on them; everyday talk sharing their words does not alert; wordings everyday
# talk after surgery shares are asked.
EIGHTH_ROUND_ALERTS = [
    # passive death wishes in dialect and colloquial speech
    "am liebsten wär ich tot", "Des is koa Lebn mehr", "I bin miad vom Lebn", "I mecht nimma.",
    "Warum soll ich noch leben?", "Für was lebe ich eigentlich noch", "I'd be better aff deid",
    "Cannae face another day o this", "This isn't living.", "What's the point in carrying on?",
    # wishing to be killed, or to have died in the operation
    "Hoping a truck hits me on the way home", "I hope I get hit by a train", "I hope I don't survive the op",
    "Ich wünsch mir, ein Zug würde mich überfahren", "Ich wünschte ich wäre auf dem Operationstisch geblieben",
    "Wieso habt ihr mich nicht sterben lassen",
    # self-injury described by its act
    "dug into my arms with scissors till it bled", "I punch my head with my fists when it gets bad",
    "she sliced up her arms last night", "Er schlägt sich mit den Fäusten", "Sie hat sich die Beine zerschnitten",
    "Hab nen Strick im Keller versteckt",
    # a named drug on purpose, everything in the cabinet
    "deliberately took too much insulin", "Hab absichtlich viel zu viel Insulin gespritzt",
    "12 Oxy und ein paar Tavor geschluckt", "I'm going to swallow everything in my medicine cabinet tonight",
    "Ich schluck heut alles aus der Hausapotheke",
    # stockpiling until there is enough, for the day one ends it
    "Hoarding the oxy till there's plenty", "Ich horte das Oxy, bis es reicht", "saving them for the day I end it",
    "Die sind für den Tag, an dem ich Schluss mache",
    # farewells to the world, plans with a time, intent a relative reports in a subordinate clause
    "I'm ready to leave this world", "Ich verabschiede mich von der Welt", "ending this tonight",
    "Ich beende es heute Nacht", "Ich setz mich heut Nacht auf die Gleise",
    "Meine Tochter sagt, dass sie sich umbringen will", "my dad keeps talking about hanging himself",
]  # fmt: skip
EIGHTH_ROUND_EVERYDAY = [
    "Am liebsten wär ich heute im Bett geblieben", "Das ist kein Leben mehr in den Beinen, so schwach",
    "Ich sammle Pfandflaschen, bis es reicht", "I'm fed up with living in this brace",
    "What's the point of carrying on with the exercise if it hurts?", "I hope the bus takes me to the clinic",
    "I wish I hadn't been hit by that car", "Ich wär bei dem Unfall fast gestorben, Glück gehabt",
    "Sie haben mich nicht sterben lassen, Gott sei Dank", "Er hat mit der Faust auf den Tisch gehauen",
    "Der Physio drückt die Faust in den Bauch", "Bei der OP wurde mir das Bein aufgeschnitten",
    "I took my insulin late on purpose", "gave myself extra insulin on purpose because my sugar was high",
    "I'm going to take everything out of the cupboard now to clean it", "Hab den Rest Tee mit der Tablette geschluckt",
    "I'm saving up until I have enough for a new car", "für den Tag, an dem ich wieder arbeiten gehe",
    "Mein Opa hat sich 2019 von dieser Welt verabschiedet", "Mein Vater hat 2019 die Welt verlassen",
    "Ich beende das Programm endgültig", "I'm ending this subscription for good", "Ich setz mich auf die Bank am Gleis",
    "Ans Springen denk ich noch gar nicht, erst mal gehen", "Angst, dass er sich mit den Pilzen vergiften wird",
    "Keine Ahnung, wie ich es machen werde.", "Ich leg mich auf die Schiene, die Bewegungsschiene",
]  # fmt: skip
EIGHTH_ROUND_ASKED = [
    "tying up loose ends before I go", "gave our cat to the neighbours", "lied to the doctor to get more oxy",
    "I've quit my heart tablets", "Grandad says he's ready to go.", "I feel strangely calm",
    "The bridge is 5 minutes from my flat", "Ich nehm meine Blutverdünner nicht mehr", "die letzten Dinge regeln",
    "hab den Hausarzt angelogen", "dann wär endlich Ruhe", "I pack des nimmer.", "Ich schreib hier zum letzten Mal",
]  # fmt: skip


def test_the_eighth_rounds_categories_alert_and_everyday_talk_does_not(content: Content) -> None:
    assert [text for text in EIGHTH_ROUND_ALERTS if not crisis.is_crisis(text, content)] == []
    assert [text for text in EIGHTH_ROUND_EVERYDAY if crisis.is_crisis(text, content)] == []
    asked = [text for text in EIGHTH_ROUND_ASKED if crisis.asks_question(text, content)]
    assert asked == EIGHTH_ROUND_ASKED and not any(crisis.is_crisis(text, content) for text in asked)


# The ninth round (2026-12-03), by category from the misses in two written example sets (/work/train9 and
# train9b, 600 crisis sentences). Our own sentences, none of them the sets': each category alerts on them;
# everyday talk sharing their words does not alert; wordings everyday talk after surgery shares are asked.
NINTH_ROUND_ALERTS = [
    # means or a place with intent
    "The old railway bridge is high enough, I measured it.", "Der Steinbruch ist tief genug.",
    "I'm standing on the outside of the railing now", "Sie steht außen am Brückengeländer",
    "Den Strick hab ich, der Dachbalken hält", "My son has his shotgun on his lap again",
    "the kitchen knife is under my pillow tonight", "Ich hab ein Messer unterm Kopfkissen",
    "I'm sitting in the garage with the car running", "Er sitzt in der Garage, der Motor läuft",
    "Nobody would know, it would look like an accident.", "So dass es wie ein Unfall aussieht",
    "Next time I'm not coming back.", "Das nächste Mal komm ich nicht zurück.",
    "I'll walk in and keep walking", "schwimm raus und schwimm nicht zurück",
    # questions how much would kill, with a second element
    "Could I die if I take all of my tramadol?", "Wenn ich die alle auf einmal schlucke, wach ich dann noch auf?",
    # a drug one lives on stopped, with the intent beside it
    "I'll just let my heart do what it wants now", "Soll das Herz halt machen, was es will.",
    "Let's see how long this old pump lasts", "Mal sehen, wie lange die alte Pumpe noch mitmacht",
    "Grandma stopped her insulin and says she's ready to go",
    "Oma spritzt ihr Insulin nicht mehr und sagt, sie ist bereit zu gehen",
    # everything swallowed
    "I've taken everything in the medicine cabinet", "took all my oxy with a bottle of whisky",
    "Erst doppelt, dann dreifach, jetzt die ganze Schachtel", "Hab ne ganze Flasche Wodka und dazu die Schlaftabletten",
    "I'm keeping them for when I decide.", "Ich hab die Lyrica gesammelt, die reichen.",
    # self-injury described by its act
    "pressed my hand onto the hob until it blistered", "stubbed a cigarette out on my arm",
    "I punched the door until my knuckles split", "Ich drück mir die Zigarette am Arm aus",
    "pinching my skin till it bruises", "Ich kneif mir die Haut bis sie blau ist",
    "Mit dem Zirkel über den Arm gekratzt", "Hab die Narbe mit dem Cuttermesser aufgemacht",
    # reported by someone else, wishing to have died in the operation or to be killed
    "my husband keeps talking about ending his life", "Sie wünscht, die Operation hätte sie umgebracht",
    "I wish the surgeon's hand had slipped", "Ich bete um eine Thrombose",
    "hoping the wound gets infected", "Wenn mich ein Lkw überfährt, wär ich erleichtert",
    "my family would cope better with a funeral", "Ohne mich hätten die Kinder ein besseres Leben",
    # final farewells and plans with a date
    "I'm at peace and ready to go.", "Ich gehe heute in Frieden.", "logging off from life.",
    "I've decided to end it on Sunday", "I'm going to finish my life this week", "Es gibt kein Morgen für mich",
    "Des wars dann mit mir.", "Das ist mein Abschied für immer",
    # slang, euphemism, dialect
    "gonna eat my gun", "I'm off to meet my maker", "time for the long nap", "pushing up daisies soon",
    "Ich geb den Löffel ab, und zwar freiwillig", "Bald schau ich mir die Radieschen von unten an",
    "I han koi Luscht meh aufs Lebe", "will nich mer lebn", "Ik heff keen Lust mehr up dat Leven",
    "dont wanna b here anymor", "i cannae dae this anymair", "Morgen spring ick vor die Bahn",
]  # fmt: skip
NINTH_ROUND_EVERYDAY = [
    "The pool is deep enough for my hydrotherapy", "Die Bank ist hoch genug zum Aufstehen",
    "I think the step is high enough.", "The gun is in the cabinet and the key is with my husband",
    "warming up the car in the drive with the engine running", "It would look like an accident if you fell, be careful",
    "Next time I'm going in earlier", "Next time I'm not walking back from the shops, I'll get a taxi",
    "Can I die if I take ibuprofen with my blood thinners?", "Wenn ich alles auf einmal nehme, geht das?",
    "Let's see how long the heart monitor battery lasts", "Grandad says he's ready to go home",
    "Took all my tablets this morning as usual", "Hab eine ganze Flasche Wasser und dazu die Tabletten genommen",
    "I held my hand on the hob to check it was off", "burnt my hand on the iron by accident",
    "Poured hot water over my hand by accident", "Whacking my leg with the walking stick when I walk",
    "I used the razor on my legs", "I have not eaten since midnight on purpose because of the op",
    "The police found my stolen bike on the bridge", "I pray for a complication-free recovery",
    "Hoping for a quick recovery without infection", "I hope the wound doesn't get infected",
    "She would be free if I was not around this weekend, she's going out", "I'm at peace now and ready to go home",
    "I've decided to end it with my boyfriend", "I'll hang on till Friday for the appointment",
    "done with physio for good.", "I had the long nap I needed", "I think about dying my hair",
    "Am Freitag mach ich Schluss.", "Feierabend für immer, ich bin in Rente",
    "Ich will verschwinden, so peinlich war das",
    "Die Polizei hat ihn auf der Brücke gefunden, er hatte sich verlaufen",
    "Ich stell mich vor den Bus an der Haltestelle",
    "Das Seil liegt bereit für die Übung", "Der Kachelofen, die Klappe muss zu bleiben",
    "Nach der OP bin ich nicht mehr aufgewacht bis abends", "Ich bin eine Belastung für mein Knie",
]  # fmt: skip
NINTH_ROUND_ASKED = [
    "How many pregabalin would be too many?", "Ab wie vielen Tabletten wird es gefährlich?",
    "Haven't taken my insulin for three days", "Hab seit Tagen kein Marcumar mehr genommen",
    "I told the doctor I lost my prescription", "Frag nicht warum.", "My tablets are lined up and ready.",
    "There's a rope in the garage", "Ich hab den Schlüssel vom Waffenschrank", "Friday is my last day.",
    "I've picked a date", "Die Entscheidung ist gefallen", "You did nothing wrong.", "Es ist nicht Ihre Schuld.",
    "I think it's deep enough.", "Ich glaub, das ist hoch genug.", "Das Wasser ruft",
]  # fmt: skip


def test_the_ninth_rounds_categories_alert_and_everyday_talk_does_not(content: Content) -> None:
    assert [text for text in NINTH_ROUND_ALERTS if not crisis.is_crisis(text, content)] == []
    assert [text for text in NINTH_ROUND_EVERYDAY if crisis.is_crisis(text, content)] == []
    asked = [text for text in NINTH_ROUND_ASKED if crisis.asks_question(text, content)]
    assert asked == NINTH_ROUND_ASKED and not any(crisis.is_crisis(text, content) for text in asked)


# The 40,000 most frequent words of each language (wordfreq), sent alone: these alert, and no other.
SINGLE_WORDS_THAT_ALERT = {
    "suicide", "suicidal", "suicides", "hopeless", "selbstmord", "suizid", "überdosis", "erhängt", "ritzen",
}  # fmt: skip


def test_no_frequent_single_word_alerts_but_the_known_ones(content: Content) -> None:
    words = {w for lang in ("en", "de") for w in wordfreq.top_n_list(lang, 40_000)}
    assert {w for w in words if crisis.is_crisis(w, content)} <= SINGLE_WORDS_THAT_ALERT


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


SAFETY_MD = Path(__file__).resolve().parent.parent / "docs" / "SAFETY.md"
SET_IDS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]
SETS = [CORPUS_DIR, *(CORPUS_DIR / name for name in SET_IDS[1:])]
# The third to eighth sets were written by helpers who had not seen the patterns, measured held out
# (docs/SAFETY.md), and then the patterns were extended. Their recall is below MIN_RECALL: these floors
# are the figures after the latest extension (2026-12-03, by category, from the eighth set's misses), so
# a change to crisis.toml may keep or raise them only.
FLOORS = {
    ("third", "de"): 54 / 60,
    ("third", "en"): 54 / 60,
    ("fourth", "de"): 43 / 50,
    ("fourth", "en"): 46 / 50,
    ("fifth", "de"): 41 / 50,
    ("fifth", "en"): 42 / 50,
    ("sixth", "de"): 29 / 50,
    ("sixth", "en"): 35 / 50,
    ("seventh", "de"): 45 / 50,
    ("seventh", "en"): 44 / 50,
    ("eighth", "de"): 42 / 50,
    ("eighth", "en"): 41 / 50,
}
# False alarms are held at MAX_FPR or less, but for the sixth set's English ones and the seventh and eighth
# sets', which were above it when the sets were measured held out: they may stay at what they were then, not rise
# (docs/SAFETY.md).
FALSE_ALARM_CEILINGS = {
    ("sixth", "en"): 5 / 50,
    ("seventh", "de"): 3 / 50,
    ("seventh", "en"): 4 / 50,
    ("eighth", "en"): 3 / 50,
}


@pytest.mark.parametrize("corpus", SETS, ids=SET_IDS)
@pytest.mark.parametrize("lang", ["en", "de"])
def test_corpus_recall_and_false_positive_rate(content: Content, corpus: Path, lang: str) -> None:
    result = evaluate(content, load_corpus(corpus / f"{lang}.toml"))
    name = SET_IDS[SETS.index(corpus)]
    assert result.recall >= FLOORS.get((name, lang), MIN_RECALL) - 1e-9, f"missed: {result.missed}"
    ceiling = FALSE_ALARM_CEILINGS.get((name, lang), MAX_FPR)
    assert result.false_positive_rate <= ceiling + 1e-9, f"false positives: {result.false_positives}"


@pytest.mark.parametrize("corpus", SETS, ids=SET_IDS)
def test_docs_safety_shows_what_the_report_prints(content: Content, corpus: Path) -> None:
    """docs/SAFETY.md quotes the figures; they must be the ones the code gives today."""
    results = [evaluate(content, load_corpus(corpus / f"{lang}.toml")) for lang in ("de", "en")]
    docs = SAFETY_MD.read_text(encoding="utf-8")
    section = docs.split("## Crisis detection", 1)[1].split("\n## ", 1)[0]
    for line in report(results).splitlines():
        assert line in section, f"docs/SAFETY.md lacks: {line}"


@pytest.mark.parametrize("corpus", [CORPUS_DIR, CORPUS_DIR / "fifth"], ids=["first", "fifth"])
def test_docs_safety_shows_the_crisis_questions_table(content: Content, corpus: Path) -> None:
    results = [evaluate(content, load_corpus(corpus / f"{lang}.toml")) for lang in ("de", "en")]
    docs = SAFETY_MD.read_text(encoding="utf-8")
    section = docs.split("## Crisis detection", 1)[1].split("\n## ", 1)[0]
    for line in question_report(results).splitlines():
        assert line in section, f"docs/SAFETY.md lacks: {line}"


HELD_OUT = Path(__file__).resolve().parent / "data" / "crisis" / "ninth"


def test_docs_safety_shows_the_held_out_sets_figures_and_none_of_its_sentences(content: Content) -> None:
    """The ninth set is held out (docs/SAFETY.md): written by a helper who saw neither crisis.toml nor the
    other sets; its figures are quoted, so that a change to the patterns or the model shows on it, but none
    of its sentences; it is no example the model learns from, and it is held to no floor."""
    corpora = [load_corpus(HELD_OUT / f"{lang}.toml") for lang in ("de", "en")]
    # 50 and 50 per language, but for the English hard negative that was word for word a first-set example.
    assert [(len(c.positives), len(c.negatives)) for c in corpora] == [(50, 50), (50, 49)]
    results = [evaluate(content, corpus) for corpus in corpora]
    docs = SAFETY_MD.read_text(encoding="utf-8")
    section = docs.split("## Crisis detection", 1)[1].split("\n## ", 1)[0]
    lines = [*report(results).splitlines(), *question_report(results).splitlines()]
    figures = [line for line in lines if line.startswith("| de ") or line.startswith("| en ")]
    assert len(figures) == 4
    for line in figures:
        assert line in section, f"docs/SAFETY.md lacks: {line}"
    learned = set(content.crisis_examples[0]) | set(content.crisis_examples[1])
    for corpus in corpora:
        for sentence in (*corpus.positives, *corpus.negatives):
            assert sentence not in docs, "a held-out sentence is quoted"
    # No sentence of it is an example the model learns from.
    overlap = {s for corpus in corpora for s in (*corpus.positives, *corpus.negatives) if s in learned}
    assert overlap == set()


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


# --------------------------------------------------------------------------- the crisis question's model

EVERYDAY_HELD_OUT = Path(__file__).resolve().parent / "data" / "crisis" / "everyday_heldout.toml"


def test_the_model_learns_the_examples_and_asks_about_a_resemblance_only(content: Content) -> None:
    model = crisis_model.model_of(*content.crisis_examples)
    assert model is not None
    # Indirect messages no pattern names, written for this test: asked, never alerted.
    for text in (
        "Sorted out my papers and cancelled my phone contract, my wife won't have any trouble with it after",
        "Ich hab meinem Sohn gesagt wo die Papiere liegen, dann muss er nicht suchen wenn ich weg bin",
        "I won't be needing the follow-up appointment, please give my slot to someone else",
    ):
        assert model.asks(text) and crisis.asks_question(text, content) and not crisis.is_crisis(text, content), text
    # Thanks and greetings are learned as everyday (crisis_examples/everyday/): not asked for their words.
    for text in ("Thank you for all your help", "Vielen Dank für alles!", "Danke für alles, bis nächste Woche"):
        assert not crisis.asks_question(text, content), text
    # A farewell that thanks: asked by its [[concern]] words, which the model no longer does.
    for text in ("Thank you all for everything, you won't hear from me again", "Ihr hört nie wieder von mir"):
        assert crisis.asks_question(text, content) and not crisis.is_crisis(text, content), text
    # Short messages are never asked because of the model, however much their few words resemble farewells.
    for text in ("thanks", "danke", "Danke für alles", "goodbye my friend", "Tschüss bis bald"):
        assert not model.asks(text), text


def test_the_threshold_lets_at_most_the_share_of_hard_negatives_be_asked() -> None:
    rng = random.Random(3)
    crisis_words, other_words, shared = ["ende", "abschied", "letzte"], ["uebung", "knie", "spaziergang"], ["heute"]

    def sentence(words: list[str]) -> str:
        return " ".join(rng.choice(words + shared) for _ in range(6))

    positives = [sentence(crisis_words) for _ in range(60)]
    negatives = [sentence(other_words) for _ in range(60)]
    model = crisis_model.train(positives, negatives)
    assert model is not None
    assert all(model.asks(p) for p in positives)
    assert sum(model.asks(n) for n in negatives) <= len(negatives) * crisis_model.ASK_SHARE
    # Negatives written like the positives: scored out of fold, they score as positives do, and the threshold
    # rises until at most ASK_SHARE of all negatives would be asked; in sample they are asked, as positives.
    hard = negatives[:50] + [sentence(crisis_words) for _ in range(10)]
    harder = crisis_model.train(positives, hard)
    assert harder is not None and harder.threshold > model.threshold
    assert sum(harder.asks(n) for n in hard[:50]) <= sum(model.asks(n) for n in negatives[:50])
    assert crisis_model.train(positives[:3], negatives) is None  # too few to cross-validate: no model


def test_everyday_messages_asked_are_the_ones_docs_safety_quotes(content: Content) -> None:
    """The held-out everyday set: written by a helper who saw neither the patterns, the examples nor the
    model; none alerted, and how many are asked is what docs/SAFETY.md says."""
    label = "everyday held out"
    everyday = tomllib.loads(EVERYDAY_HELD_OUT.read_text(encoding="utf-8"))
    docs = SAFETY_MD.read_text(encoding="utf-8")
    learned = set(content.crisis_examples[2])
    for lang in ("de", "en"):
        assert not any(crisis.is_crisis(m, content) for m in everyday[lang])
        assert not learned & set(everyday[lang]), "an everyday message measured is one the model learns from"
        asked = [m for m in everyday[lang] if crisis.asks_question(m, content)]
        line = f"{label} ({lang}): {len(asked)} of {len(everyday[lang])} asked"
        assert line in docs, f"docs/SAFETY.md lacks: {line} ({asked})"


def test_a_clinics_examples_add_to_the_built_in_ones(tmp_path: Path) -> None:
    folder = tmp_path / "crisis_examples"
    folder.mkdir()
    ours_toml = 'crisis = ["mein Abschiedsbrief liegt bereit"]\nnot_crisis = ["Brief an die Kasse"]\n'
    (folder / "ours.toml").write_text(ours_toml)
    built_in = load_content(None).crisis_examples
    ours = load_content(tmp_path).crisis_examples
    assert ours[0] == (*built_in[0], "mein Abschiedsbrief liegt bereit")
    assert ours[1] == (*built_in[1], "Brief an die Kasse")
    (folder / "ours.toml").write_text('crisis = "not a list"\n')
    with pytest.raises(ContentError) as raised:
        load_content(tmp_path)
    assert "ours.toml" in str(raised.value) and "crisis" in str(raised.value)


def test_unbearable_pain_is_asked_and_an_unbearable_life_alerts(content: Content) -> None:
    """ "Ich halte die Schmerzen nicht mehr aus" is everyday talk after spine surgery, and a risk too: asked first;
    "ich halte es / das alles / dieses Leben nicht mehr aus" alert as before."""
    for text in (
        "Ich halte die Schmerzen nicht mehr aus, kann ich stärkere Tabletten bekommen?",
        "halte den Rücken nicht mehr aus",
    ):
        assert crisis.asks_question(text, content) and not crisis.is_crisis(text, content), text
    for text in (
        "ich halte es nicht mehr aus",
        "Ich halt das alles nicht mehr aus",
        "ich halte dieses Leben nicht mehr aus",
    ):
        assert crisis.is_crisis(text, content), text


def test_the_report_names_a_corpus_file_it_cannot_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A corpus whose hard negatives are under another name (`hard_negatives`) ended the report with a
    KeyError traceback; it names the file and the list it needs, exit 2."""
    from rehab_bot.crisis_report import main

    (tmp_path / "en.toml").write_text('crisis = ["I want to die"]\nhard_negatives = ["this is killing me"]\n')
    assert main(["--corpus", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "en.toml: needs a non-empty list of strings `not_crisis` (found: crisis, hard_negatives)" in err
    (tmp_path / "en.toml").write_text('crisis = ["I want to die"\n')
    assert main(["--corpus", str(tmp_path)]) == 2
    assert "en.toml: not TOML" in capsys.readouterr().err


def test_everyday_talk_the_ninth_round_first_alerted_on_only_asks(content: Content) -> None:
    """The ninth round's first alerts included wordings everyday talk shares: a car warming up in the garage,
    leaving a wedding, checking out of a hotel, and the older "tonight's the night" (good news too). They ask;
    sitting in the garage with the engine running, or tonight's the night with a wish to die, alert."""
    for text in (
        "Die Garage, der Motor läuft noch warm",
        "After the wedding I'll go.",
        "checking out of everything is so hard at the hotel",
        "Tonight's the night, sleeping in my own bed again",
        "Heute Nacht ist es so weit: wieder im eigenen Bett!",
    ):
        assert not crisis.is_crisis(text, content), text
    for text in ("The car is running in the garage, it's warming up", "the engine's on in the garage, leaving soon"):
        assert not crisis.is_crisis(text, content), text
    for text in (
        "Sitting in the garage with the engine running. Sorry.",
        "Ich sitz in der Garage und der Motor läuft",
        "Sitze im Auto in der Garage, Motor an",
        "Can't live like this anymore, tonight's the night",
    ):
        assert crisis.is_crisis(text, content), text


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("ja", True),
        ("Ja.", True),
        ("yes", True),
        ("Yes I have", True),
        ("sometimes", True),
        ("maybe", True),
        ("Ich glaube schon", True),
        ("ja, manchmal", True),
        ("Jein", True),
        ("kind of", True),
        ("nein", False),
        ("No", False),
        ("Nein danke, alles gut", False),
        ("no, not at all", False),
        ("auf keinen Fall", False),
        ("Nein, natürlich nicht!", False),
        ("Nein, schon gut", False),
        ("nö", False),
        ("no but I wish it was all over", None),  # more than no-words: read as any message
        ("kein bisschen", None),  # a yes-word after a negation is none
        ("nicht oft", None),
        ("the weather is nice today", None),
        ("why do you ask", None),
        ("yes " * 9, None),  # longer than a typed answer
        ("", None),
    ],
)
def test_a_typed_answer_to_the_crisis_question_leans_to_yes(typed: str, read: bool | None) -> None:
    assert crisis.typed_answer(typed) is read


@pytest.mark.parametrize(
    ("said", "asked"),
    [
        ("Ich nehme heute Nacht alle meine Tabletten", True),  # an outside test: neither alert nor question
        ("Heute Nacht schlucke ich alle Tabletten", True),
        ("I will swallow all my pills tonight", True),
        ("Ich habe heute Abend alle Tabletten genommen", False),  # taken as prescribed: said in the past
        ("Ich nehme heute Abend meine Tabletten", False),
    ],
)
def test_all_of_ones_tablets_tonight_gets_the_crisis_question(said: str, asked: bool) -> None:
    content = load_content(None)
    assert crisis.asks_question(said, content) is asked
    assert not crisis.is_crisis(said, content), "asked, never alerted on by itself"


@pytest.mark.parametrize(
    "text", ["i wnat to die", "wanna kill myslef", "will mich umbrigen", "ich will mich umbirngen", "I want to dei"]
)
def test_a_crisis_word_with_one_slip_of_the_keyboard_asks_the_question(content: Content, text: str) -> None:
    """An outside test's typos got only the note offer: one letter left out, added or two swapped asks the
    crisis question (never an alert by itself: Yes alerts)."""
    assert not redflag.is_crisis(text, content)
    assert crisis.asks_question(text, content), text


@pytest.mark.parametrize(
    "text",
    ["Das Ritzel an meinem Fahrrad ist kaputt", "I went to the store", "i wnat to live", "skill myself up",
     "Ich lief heute viel"],
)  # fmt: skip
def test_words_near_a_crisis_word_that_are_other_words_are_not_read_as_slips(content: Content, text: str) -> None:
    assert crisis.find_slipped(crisis.crisis_patterns(content), text) is None, text

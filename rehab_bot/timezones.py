"""Finding a patient's timezone from what they type or share, offline.

Five ways in, all without any network lookup:

* a city name ("Berlin", "New York", "München") from a small bundled table in
  English and German, or the city part of any IANA name ("Chicago" finds
  America/Chicago), or an exact IANA name ("Europe/Vienna");
* a country's name in English or German ("Germany", "Deutschland", "in der
  Schweiz"), from babel's territory names (CLDR) and tzdata's zone.tab: a
  country whose zones all keep one clock gets it; for one with several clocks
  (the USA, Spain with the Canary Islands) :func:`zones_to_choose` gives one
  zone per clock, and the bot asks which;
* a time zone abbreviation ("EST", "MEZ", "CEST"): the zone of the region it names,
  with its summer time; for a clock many zones keep ("MEZ", "CET": Berlin, Vienna, Paris)
  the clinic's own zone when it keeps that clock, else the region's (Europe/Berlin);
* a UTC offset ("+2", "UTC-5", "GMT+5:30"): whole hours map to the fixed
  Etc/GMT zones (note the inverted sign: UTC+2 is Etc/GMT-2), the few
  half-hour offsets in use map to the zone that has them;
* a shared location: the zone of the nearest city in the bundled table.

Words around the place are no part of it: "I'm in Berlin", "I live in the
USA", "Ich bin in Berlin", "ich wohne in Österreich" read as the place alone.

The location lookup is an approximation: near a border, or far from every
city in the table, the nearest city can be in the wrong zone. Where the
nearest city is more than NEAREST_CITY_MAX_KM away (at sea, in a sparse
region) it falls back to the fixed offset of the longitude (15° per hour).
The bot therefore always shows the result with the local time and asks the
patient to confirm it.

Plain Python over zoneinfo: no telegram imports.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Literal
from zoneinfo import ZoneInfo, available_timezones

import tzdata
from babel import Locale

from rehab_bot.i18n import N_, SUPPORTED_LANGUAGES, t
from rehab_bot.typed import one_slip, plain

NEAREST_CITY_MAX_KM = 1000.0

# Zones offered as buttons after the clinic's own: a handful that cover the
# patients a German-speaking clinic most often sees abroad.
COMMON_ZONES: tuple[str, ...] = (
    "Europe/London",
    "Europe/Berlin",
    "Europe/Istanbul",
    "Asia/Dubai",
    "America/New_York",
    "America/Los_Angeles",
)

# City labels that differ between English and German; shown via t().
_LABELS = {
    "Europe/Vienna": N_("Vienna"),
    "Europe/Zurich": N_("Zurich"),
    "Europe/Moscow": N_("Moscow"),
    "Europe/Rome": N_("Rome"),
    "Europe/Brussels": N_("Brussels"),
    "Europe/Lisbon": N_("Lisbon"),
    "Europe/Prague": N_("Prague"),
    "Europe/Warsaw": N_("Warsaw"),
    "Europe/Athens": N_("Athens"),
    "Europe/Copenhagen": N_("Copenhagen"),
    "Europe/Kyiv": N_("Kyiv"),
    "Africa/Cairo": N_("Cairo"),
    "Asia/Tokyo": N_("Tokyo"),
}

# name variants (English, German, ASCII spellings) | latitude | longitude | zone
_CITY_TABLE = """
berlin|52.52|13.40|Europe/Berlin
hamburg|53.55|9.99|Europe/Berlin
munich,munchen,muenchen|48.14|11.58|Europe/Berlin
cologne,koln,koeln|50.94|6.96|Europe/Berlin
frankfurt|50.11|8.68|Europe/Berlin
stuttgart|48.78|9.18|Europe/Berlin
dusseldorf,duesseldorf|51.23|6.78|Europe/Berlin
leipzig|51.34|12.37|Europe/Berlin
dresden|51.05|13.74|Europe/Berlin
hanover,hannover|52.38|9.73|Europe/Berlin
nuremberg,nurnberg,nuernberg|49.45|11.08|Europe/Berlin
bremen|53.08|8.80|Europe/Berlin
freiburg|47.99|7.84|Europe/Berlin
rostock|54.09|12.10|Europe/Berlin
vienna,wien|48.21|16.37|Europe/Vienna
graz|47.07|15.44|Europe/Vienna
salzburg|47.81|13.04|Europe/Vienna
innsbruck|47.27|11.40|Europe/Vienna
zurich,zuerich|47.37|8.54|Europe/Zurich
bern,berne|46.95|7.45|Europe/Zurich
basel|47.56|7.59|Europe/Zurich
geneva,genf,geneve|46.20|6.14|Europe/Zurich
luxembourg,luxemburg|49.61|6.13|Europe/Luxembourg
brussels,brussel,bruxelles|50.85|4.35|Europe/Brussels
amsterdam|52.37|4.90|Europe/Amsterdam
paris|48.86|2.35|Europe/Paris
lyon|45.76|4.84|Europe/Paris
marseille|43.30|5.37|Europe/Paris
london|51.51|-0.13|Europe/London
manchester|53.48|-2.24|Europe/London
edinburgh|55.95|-3.19|Europe/London
dublin|53.35|-6.26|Europe/Dublin
lisbon,lissabon,lisboa|38.72|-9.14|Europe/Lisbon
madrid|40.42|-3.70|Europe/Madrid
barcelona|41.39|2.17|Europe/Madrid
palma,mallorca|39.57|2.65|Europe/Madrid
las palmas,gran canaria|28.12|-15.43|Atlantic/Canary
tenerife,teneriffa|28.47|-16.25|Atlantic/Canary
rome,rom,roma|41.90|12.50|Europe/Rome
milan,mailand,milano|45.46|9.19|Europe/Rome
naples,neapel,napoli|40.85|14.27|Europe/Rome
copenhagen,kopenhagen|55.68|12.57|Europe/Copenhagen
oslo|59.91|10.75|Europe/Oslo
stockholm|59.33|18.07|Europe/Stockholm
helsinki|60.17|24.94|Europe/Helsinki
warsaw,warschau,warszawa|52.23|21.01|Europe/Warsaw
krakow,krakau|50.06|19.94|Europe/Warsaw
prague,prag,praha|50.08|14.44|Europe/Prague
budapest|47.50|19.04|Europe/Budapest
bratislava,pressburg|48.15|17.11|Europe/Bratislava
ljubljana|46.06|14.51|Europe/Ljubljana
zagreb|45.81|15.98|Europe/Zagreb
split|43.51|16.44|Europe/Zagreb
belgrade,belgrad,beograd|44.79|20.45|Europe/Belgrade
sarajevo|43.86|18.41|Europe/Sarajevo
tirana|41.33|19.82|Europe/Tirane
skopje|41.99|21.43|Europe/Skopje
sofia|42.70|23.32|Europe/Sofia
bucharest,bukarest|44.43|26.10|Europe/Bucharest
chisinau,kischinau|47.01|28.86|Europe/Chisinau
athens,athen|37.98|23.73|Europe/Athens
thessaloniki|40.64|22.94|Europe/Athens
valletta,malta|35.90|14.51|Europe/Malta
nicosia,nikosia|35.19|33.38|Asia/Nicosia
istanbul|41.01|28.98|Europe/Istanbul
ankara|39.93|32.86|Europe/Istanbul
antalya|36.90|30.70|Europe/Istanbul
kyiv,kiev,kiew|50.45|30.52|Europe/Kyiv
minsk|53.90|27.56|Europe/Minsk
riga|56.95|24.11|Europe/Riga
vilnius,wilna|54.69|25.28|Europe/Vilnius
tallinn|59.44|24.75|Europe/Tallinn
moscow,moskau|55.76|37.62|Europe/Moscow
saint petersburg,st petersburg,sankt petersburg|59.93|30.34|Europe/Moscow
reykjavik|64.15|-21.94|Atlantic/Reykjavik
tel aviv|32.09|34.78|Asia/Jerusalem
jerusalem|31.77|35.21|Asia/Jerusalem
beirut|33.89|35.50|Asia/Beirut
amman|31.95|35.93|Asia/Amman
damascus,damaskus|33.51|36.29|Asia/Damascus
baghdad,bagdad|33.31|44.36|Asia/Baghdad
tehran,teheran|35.69|51.39|Asia/Tehran
dubai|25.20|55.27|Asia/Dubai
abu dhabi|24.45|54.38|Asia/Dubai
riyadh,riad|24.71|46.68|Asia/Riyadh
doha|25.29|51.53|Asia/Qatar
cairo,kairo|30.04|31.24|Africa/Cairo
casablanca|33.57|-7.59|Africa/Casablanca
tunis|36.81|10.18|Africa/Tunis
algiers,algier|36.75|3.06|Africa/Algiers
lagos|6.52|3.38|Africa/Lagos
accra|5.60|-0.19|Africa/Accra
addis ababa,addis abeba|9.03|38.74|Africa/Addis_Ababa
nairobi|-1.29|36.82|Africa/Nairobi
johannesburg|-26.20|28.05|Africa/Johannesburg
cape town,kapstadt|-33.92|18.42|Africa/Johannesburg
karachi|24.86|67.01|Asia/Karachi
kabul|34.56|69.21|Asia/Kabul
tashkent,taschkent|41.30|69.24|Asia/Tashkent
almaty|43.24|76.89|Asia/Almaty
yekaterinburg,jekaterinburg|56.84|60.61|Asia/Yekaterinburg
novosibirsk,nowosibirsk|55.01|82.93|Asia/Novosibirsk
vladivostok,wladiwostok|43.12|131.89|Asia/Vladivostok
delhi,new delhi,neu delhi|28.61|77.21|Asia/Kolkata
mumbai,bombay|19.08|72.88|Asia/Kolkata
bangalore,bengaluru|12.97|77.59|Asia/Kolkata
kolkata,kalkutta,calcutta|22.57|88.36|Asia/Kolkata
kathmandu|27.72|85.32|Asia/Kathmandu
dhaka|23.81|90.41|Asia/Dhaka
colombo|6.93|79.86|Asia/Colombo
yangon,rangoon|16.87|96.20|Asia/Yangon
bangkok|13.76|100.50|Asia/Bangkok
hanoi|21.03|105.85|Asia/Bangkok
ho chi minh city,saigon|10.82|106.63|Asia/Ho_Chi_Minh
jakarta|-6.21|106.85|Asia/Jakarta
singapore,singapur|1.35|103.82|Asia/Singapore
kuala lumpur|3.14|101.69|Asia/Kuala_Lumpur
manila|14.60|120.98|Asia/Manila
beijing,peking|39.90|116.41|Asia/Shanghai
shanghai|31.23|121.47|Asia/Shanghai
hong kong,hongkong|22.32|114.17|Asia/Hong_Kong
taipei,taipeh|25.03|121.57|Asia/Taipei
seoul|37.57|126.98|Asia/Seoul
tokyo,tokio|35.68|139.69|Asia/Tokyo
osaka|34.69|135.50|Asia/Tokyo
perth|-31.95|115.86|Australia/Perth
darwin|-12.46|130.84|Australia/Darwin
adelaide|-34.93|138.60|Australia/Adelaide
brisbane|-27.47|153.03|Australia/Brisbane
sydney|-33.87|151.21|Australia/Sydney
melbourne|-37.81|144.96|Australia/Melbourne
auckland|-36.85|174.76|Pacific/Auckland
wellington|-41.29|174.78|Pacific/Auckland
honolulu,hawaii|21.31|-157.86|Pacific/Honolulu
anchorage|61.22|-149.90|America/Anchorage
los angeles,la|34.05|-118.24|America/Los_Angeles
san francisco|37.77|-122.42|America/Los_Angeles
seattle|47.61|-122.33|America/Los_Angeles
las vegas|36.17|-115.14|America/Los_Angeles
vancouver|49.28|-123.12|America/Vancouver
phoenix|33.45|-112.07|America/Phoenix
denver|39.74|-104.99|America/Denver
calgary|51.05|-114.07|America/Edmonton
edmonton|53.55|-113.49|America/Edmonton
chicago|41.88|-87.63|America/Chicago
houston|29.76|-95.37|America/Chicago
dallas|32.78|-96.80|America/Chicago
winnipeg|49.90|-97.14|America/Winnipeg
mexico city,mexiko stadt,ciudad de mexico|19.43|-99.13|America/Mexico_City
guatemala|14.63|-90.51|America/Guatemala
new york,nyc,new york city|40.71|-74.01|America/New_York
boston|42.36|-71.06|America/New_York
washington|38.91|-77.04|America/New_York
philadelphia|39.95|-75.17|America/New_York
atlanta|33.75|-84.39|America/New_York
miami|25.76|-80.19|America/New_York
detroit|42.33|-83.05|America/Detroit
toronto|43.65|-79.38|America/Toronto
montreal|45.50|-73.57|America/Toronto
halifax|44.65|-63.57|America/Halifax
st john's,st johns|47.56|-52.71|America/St_Johns
havana,havanna|23.11|-82.37|America/Havana
santo domingo|18.49|-69.93|America/Santo_Domingo
san juan|18.47|-66.11|America/Puerto_Rico
panama|8.98|-79.52|America/Panama
bogota|4.71|-74.07|America/Bogota
caracas|10.48|-66.90|America/Caracas
quito|-0.18|-78.47|America/Guayaquil
lima|-12.05|-77.04|America/Lima
la paz|-16.50|-68.15|America/La_Paz
santiago|-33.45|-70.67|America/Santiago
asuncion|-25.26|-57.58|America/Asuncion
montevideo|-34.90|-56.16|America/Montevideo
buenos aires|-34.60|-58.38|America/Argentina/Buenos_Aires
sao paulo|-23.55|-46.63|America/Sao_Paulo
rio de janeiro,rio|-22.91|-43.17|America/Sao_Paulo
"""

# Offsets that are not whole hours, and the zone that uses them.
_PART_HOUR_ZONES = {
    (1, 3, 30): "Asia/Tehran",
    (1, 4, 30): "Asia/Kabul",
    (1, 5, 30): "Asia/Kolkata",
    (1, 5, 45): "Asia/Kathmandu",
    (1, 6, 30): "Asia/Yangon",
    (1, 8, 45): "Australia/Eucla",
    (1, 9, 30): "Australia/Darwin",
    (1, 12, 45): "Pacific/Chatham",
    (-1, 3, 30): "America/St_Johns",
    (-1, 9, 30): "Pacific/Marquesas",
}
# Abbreviations people type for the time where they live, summer or winter: the zone they mean,
# with its summer time. The legacy zone named EST keeps one offset all year, so "EST" typed in
# New York reminded an hour late all summer (and, unlike an Etc/ offset, without the summer-time
# warning); "CEST", "MEZ" and "PST" were not found at all. MST is Arizona's time, without summer
# time: shown as Phoenix, so a patient in Denver sees it is not theirs. Two-letter forms (PT, ET)
# are left out: they are country codes too.
_ABBREVIATIONS = {
    **dict.fromkeys(("est", "edt"), "America/New_York"),
    **dict.fromkeys(("cst", "cdt"), "America/Chicago"),
    "mst": "America/Phoenix",
    "mdt": "America/Denver",
    **dict.fromkeys(("pst", "pdt"), "America/Los_Angeles"),
    **dict.fromkeys(("akst", "akdt"), "America/Anchorage"),
    "hst": "Pacific/Honolulu",
    "bst": "Europe/London",
}
# Abbreviations of a clock many zones keep, in English and German: "MEZ" is the time in Berlin, Vienna,
# Zurich and Paris alike. They were stored as the legacy zones "CET", "WET" and "EET": shown to the
# patient as "CET", not a place, and (WET, EET) with rules of their own. The clinic's own zone is taken
# when it keeps that clock (a clinic in Vienna: Europe/Vienna), else the region's zone named here.
_SHARED_CLOCKS = {
    **dict.fromkeys(("mez", "mesz", "cet", "cest", "met", "mest"), "Europe/Berlin"),
    **dict.fromkeys(("wez", "wesz", "wet", "west"), "Europe/Lisbon"),
    **dict.fromkeys(("oez", "oesz", "eet", "eest"), "Europe/Athens"),
}
_OFFSET_RE = re.compile(
    r"^(?:(?P<prefix>utc|gmt)\s*)?(?P<sign>[+-])?\s*(?P<hours>\d{1,2})(?:\s*[:.h]?\s*(?P<minutes>\d{2}))?\s*h?$"
)


# What people call a country besides its name in babel (CLDR): short forms, parts, older names, and
# the German forms after "in den"/"im" ("in den Niederlanden", "im Vereinigten Königreich").
_COUNTRY_ALIASES = {
    **dict.fromkeys(
        ("usa", "us", "u s", "u s a", "america", "united states of america", "amerika", "vereinigten staaten"), "US"
    ),
    **dict.fromkeys(
        (
            "uk",
            "u k",
            "britain",
            "great britain",
            "england",
            "scotland",
            "wales",
            "northern ireland",
            "grossbritannien",
            "schottland",
            "nordirland",
            "vereinigten konigreich",
            "vereinigten koenigreich",
        ),
        "GB",
    ),
    **dict.fromkeys(("holland", "niederlanden"), "NL"),
    **dict.fromkeys(("turkey", "turkiye"), "TR"),
    **dict.fromkeys(("czech republic", "tschechische republik"), "CZ"),
    **dict.fromkeys(("uae", "vae", "emirates", "vereinigten arabischen emiraten"), "AE"),
    **dict.fromkeys(("ivory coast", "elfenbeinkuste", "elfenbeinkueste"), "CI"),
}
# Words before a place that are no part of it: "I'm in", "I live in the", "Ich bin gerade in der",
# "ich wohne in", "auf den" (islands).
_PLACE_LEAD = re.compile(
    r"^(?:(?:i\s*['’]?\s*m|i\s+am|we\s*['’]?\s*re|we\s+are|i\s+live|we\s+live|i\s*['’]?\s*m\s+(?:living|staying)"
    r"|i\s+am\s+(?:living|staying)|ich\s+bin|wir\s+sind|ich\s+wohne|wir\s+wohnen|ich\s+lebe|wir\s+leben"
    r"|bin|wohne|lebe)\s+)?"
    r"(?:(?:currently|now|right\s+now|at\s+the\s+moment|gerade|jetzt|zurzeit|momentan|derzeit)\s+)?"
    r"(?:in|im|auf)\s+(?:(?:the|der|den|dem)\s+)?",
    re.IGNORECASE,
)
_ARTICLE = re.compile(r"^(?:the|der|die|das|den|dem) ")
_UMLAUTS = {
    ord(umlaut): spelled for umlaut, spelled in zip("äöüÄÖÜ", ("ae", "oe", "ue", "Ae", "Oe", "Ue"), strict=True)
}


@dataclass(frozen=True)
class City:
    names: tuple[str, ...]
    latitude: float
    longitude: float
    zone: str


@dataclass(frozen=True)
class ZoneMatch:
    """A zone found from the patient's text: how it was found matters for the reply."""

    zone: str
    how: Literal["city", "country", "iana", "offset", "abbreviation"]


@dataclass(frozen=True)
class SeveralClocks:
    """A country with more than one clock: one zone for each, west to east (to ask which)."""

    country: str  # ISO 3166 code
    zones: tuple[str, ...]


@cache
def cities() -> tuple[City, ...]:
    """The bundled city table."""
    result = []
    for line in _CITY_TABLE.strip().splitlines():
        names, lat, lon, zone = line.split("|")
        result.append(City(tuple(names.split(",")), float(lat), float(lon), zone))
    return tuple(result)


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_zone(name: str) -> bool:
    """True for an IANA zone name this system knows."""
    return name in _zones()


def normalise(text: str) -> str:
    """Lower-case, no accents, ß as ss, punctuation and dashes as single spaces."""
    text = text.casefold().replace("ß", "ss")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = re.sub(r"[-_/.,;!?]+", " ", text)
    return " ".join(text.split())


# --- countries ------------------------------------------------------------------------------------

# Zones keep "one clock" when they show the same UTC offset at every one of these instants: twice a
# month over six years from the year of the installed time zone data (whose rules look ahead).
_FIRST_YEAR = int(tzdata.IANA_VERSION[:4])
_INSTANTS = tuple(
    datetime(year, month, day, 12, tzinfo=UTC)
    for year in range(_FIRST_YEAR, _FIRST_YEAR + 6)
    for month in range(1, 13)
    for day in (1, 15)
)


@cache
def _clock(zone: str) -> tuple[timedelta | None, ...]:
    tz = ZoneInfo(zone)
    return tuple(instant.astimezone(tz).utcoffset() for instant in _INSTANTS)


@cache
def _country_zones() -> dict[str, tuple[str, ...]]:
    """ISO 3166 code -> the country's zones, in tzdata's zone.tab order (its most populous first)."""
    table = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    zones: dict[str, list[str]] = {}
    for line in table.splitlines():
        fields = line.split("\t")
        if line.startswith("#") or len(fields) < 3 or not is_zone(fields[2]):
            continue
        zones.setdefault(fields[0], []).append(fields[2])
    return {code: tuple(found) for code, found in zones.items()}


@cache
def country_clocks(code: str) -> tuple[str, ...]:
    """One zone per distinct clock of a country, west to east: ("Europe/Berlin",) for Germany,
    eight for the USA. Each clock's zone is a city of the bundled table where one is, so the
    label is a place people know (Sydney rather than Macquarie), else zone.tab's first."""
    known = {city.zone for city in cities()}
    groups: dict[tuple[timedelta | None, ...], list[str]] = {}
    for zone in _country_zones().get(code, ()):
        groups.setdefault(_clock(zone), []).append(zone)
    chosen = [next((z for z in zones if z in known), zones[0]) for zones in groups.values()]
    return tuple(sorted(chosen, key=lambda zone: _clock(zone)))


def _spellings(name: str) -> set[str]:
    """A country's name as people type it: with or without umlauts (Österreich, Oesterreich, Osterreich),
    "&" as "and"/"und", without a part in brackets ("Myanmar (Burma)")."""
    forms = {name, re.sub(r"\s*\(.*?\)", "", name)}
    forms |= {f.replace("&", word) for f in forms for word in ("and", "und")}
    forms |= {f.translate(_UMLAUTS) for f in forms}
    return {normalise(form) for form in forms}


@cache
def _country_index() -> dict[str, str]:
    """Normalised country name (English and German, from babel) -> ISO 3166 code."""
    codes = _country_zones()
    index: dict[str, str] = {}
    for lang in SUPPORTED_LANGUAGES:
        for code, name in Locale.parse(lang).territories.items():
            if code in codes:
                for spelling in _spellings(name):
                    index.setdefault(spelling, code)
    for alias, code in _COUNTRY_ALIASES.items():
        index.setdefault(alias, code)
    return index


def _country(said: str) -> str | None:
    """The ISO 3166 code of the country the whole text names ("Deutschland", "the Netherlands"), else None."""
    index = _country_index()
    key = normalise(said)
    return index.get(key) or index.get(_ARTICLE.sub("", key))


@cache
def _name_index() -> dict[str, str]:
    """Normalised name -> zone: the table first, then the city part of IANA names."""
    index: dict[str, str] = {}
    for zone in sorted(_zones()):
        if zone.startswith(("Etc/", "SystemV/", "US/", "posix/", "right/")) or "/" not in zone:
            continue
        index.setdefault(normalise(zone.rsplit("/", 1)[1]), zone)
    for city in cities():
        for name in city.names:
            index[normalise(name)] = city.zone
    return index


@cache
def _iana_index() -> dict[str, str]:
    return {zone.casefold(): zone for zone in _zones()}


def _offset(compact: str) -> re.Match[str] | None:
    """The text (plain, casefolded) written as a UTC offset: "+2", "UTC-5", "GMT +05:30"; a bare "2" is
    more likely a time than an offset, so it is none."""
    match = _OFFSET_RE.match(compact)
    return None if match is None or (match["prefix"] is None and match["sign"] is None) else match


def zone_from_offset(text: str) -> str | None:
    """Map "+2", "UTC-5", "GMT +05:30" or "UTC" to a zone with that offset, else None."""
    compact = plain(text).strip().casefold()
    if compact in ("utc", "gmt", "z"):
        return "Etc/UTC"
    match = _offset(compact)
    if match is None:
        return None
    sign = -1 if match["sign"] == "-" else 1
    hours, minutes = int(match["hours"]), int(match["minutes"] or 0)
    if minutes:
        return _PART_HOUR_ZONES.get((sign, hours, minutes))
    if hours == 0:
        return "Etc/UTC"
    if (sign > 0 and hours > 14) or (sign < 0 and hours > 12):
        return None
    # POSIX-style names: Etc/GMT-2 is two hours *ahead* of UTC.
    return f"Etc/GMT{'-' if sign > 0 else '+'}{hours}"


# What a patient who typed such an offset is told (enrolment's time zone step, /settings).
OFFSET_RANGE = N_(
    "UTC offsets run from -12 to +14 (a few with :30 or :45). Please send yours again, for example +1, "
    "or a city near you."
)


def offset_out_of_range(text: str) -> bool:
    """Whether the text is written as a UTC offset ("+15", "UTC-13", "+5:15") that no clock keeps (they run
    from -12 to +14, a few with :30 or :45): the patient is told the range, not that a place is unknown."""
    return _offset(plain(text).strip().casefold()) is not None and zone_from_offset(text) is None


def zone_from_text(text: str, home: str | None = None) -> ZoneMatch | None:
    """A city, a country with one clock, an IANA name or a UTC offset typed by the patient -> a zone, else None.

    ``home`` is the clinic's zone, taken for an abbreviation of its clock ("MEZ" in a clinic in Vienna)."""
    found = place(text, home=home)
    return found if isinstance(found, ZoneMatch) else None


def zones_to_choose(text: str) -> tuple[str, ...]:
    """When the text names a country with more than one clock ("USA", "Spanien"): one zone per clock,
    west to east, for the patient to choose from; else ()."""
    found = place(text)
    return found.zones if isinstance(found, SeveralClocks) else ()


def place(text: str, *, home: str | None = None) -> ZoneMatch | SeveralClocks | None:
    """What the patient's text names: a zone (:func:`zone_from_text`), a country with several clocks to
    choose from (:func:`zones_to_choose`), or nothing. Read once by a caller that needs both answers.

    ``home``, the clinic's zone, is the answer to an abbreviation of a clock many zones keep ("MEZ",
    "CET") when it keeps that clock all year; else that region's zone (Europe/Berlin for "MEZ")."""
    raw = plain(text).strip()
    if not raw or len(raw) > 80:
        return None
    several: SeveralClocks | None = None
    for said in dict.fromkeys((raw, _PLACE_LEAD.sub("", raw, count=1).strip())):
        if not said:
            continue
        # A country before the IANA names: "Japan" and "Turkey" are old aliases, Asia/Tokyo is the zone.
        code = _country(said)
        if code is not None and len(country_clocks(code)) == 1:
            return ZoneMatch(country_clocks(code)[0], "country")
        found = _zone_named(said, home)
        if found is not None:
            return found
        # Then the last part after a comma: "Bonn, Deutschland", "Texas, USA".
        code = code or _country(said.rsplit(",", 1)[-1])
        clocks = country_clocks(code) if code is not None else ()
        if len(clocks) == 1:
            return ZoneMatch(clocks[0], "country")
        if code is not None and clocks and several is None:
            several = SeveralClocks(code, clocks)
    return several


def shared_clock_zone(abbreviation: str, home: str | None) -> str | None:
    """The zone for an abbreviation of a clock many zones keep ("MEZ", "CEST", "WEZ", "EET"): ``home`` (the
    clinic's zone) when it keeps that clock at every instant :func:`_clock` compares, else the region's
    zone (Europe/Berlin for MEZ, Europe/Lisbon for WEZ, Europe/Athens for OEZ); None for other text."""
    region = _SHARED_CLOCKS.get(abbreviation.strip().casefold())
    if region is None:
        return None
    if home is not None and is_zone(home) and not is_fixed_offset(home) and _clock(home) == _clock(region):
        return home
    return region


def _zone_named(said: str, home: str | None = None) -> ZoneMatch | None:
    """An abbreviation, an IANA name, an offset or a city, in that order."""
    shared = shared_clock_zone(said, home)
    if shared is not None:
        return ZoneMatch(shared, "abbreviation")
    abbreviation = _ABBREVIATIONS.get(said.casefold())
    if abbreviation is not None and is_zone(abbreviation):
        return ZoneMatch(abbreviation, "abbreviation")
    iana = _iana_index().get(said.casefold().replace(" ", "_"))
    if iana is not None:
        return ZoneMatch(iana, "iana")
    offset = zone_from_offset(said)
    if offset is not None:
        return ZoneMatch(offset, "offset")
    index = _name_index()
    # "Berlin, Germany" or "Frankfurt am Main": try the whole text, then the part
    # before a comma, then ever shorter leading word groups.
    for candidate in (said, said.split(",")[0]):
        words = normalise(candidate).split()
        for n in range(len(words), 0, -1):
            zone = index.get(" ".join(words[:n]))
            if zone is not None:
                return ZoneMatch(zone, "city")
    # A slip of the keyboard in a place's name ("Berlni", "Muenchn"): one letter left out, one added or two
    # neighbours swapped (typed.one_slip), in a name of SLIP_MIN_LETTERS or more, when all the names it may
    # be keep one zone. The patient confirms the zone, as for any place.
    typed = normalise(said.split(",")[0])
    if len(typed) >= SLIP_MIN_LETTERS:
        slips = _slip_index()
        forms = {typed, *(typed[:i] + typed[i + 1 :] for i in range(len(typed)))}
        zones = {index[name] for form in forms for name in slips.get(form, ()) if one_slip(typed, name)}
        if len(zones) == 1:
            return ZoneMatch(zones.pop(), "city")
    return None


SLIP_MIN_LETTERS = 5


@cache
def _slip_index() -> dict[str, frozenset[str]]:
    """The place names of SLIP_MIN_LETTERS or more by each of their one-letter-shorter forms and themselves."""
    found: dict[str, set[str]] = {}
    for name in _name_index():
        if len(name) >= SLIP_MIN_LETTERS:
            for form in {name, *(name[:i] + name[i + 1 :] for i in range(len(name)))}:
                found.setdefault(form, set()).add(name)
    return {form: frozenset(names) for form, names in found.items()}


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0 * 2 * math.asin(min(1.0, math.sqrt(a)))


def zone_from_location(latitude: float, longitude: float) -> str:
    """The zone of the nearest bundled city; far from all of them, the longitude's offset.

    An approximation (see the module docstring): always confirm with the patient.
    """
    nearest = min(cities(), key=lambda c: _distance_km(latitude, longitude, c.latitude, c.longitude))
    if _distance_km(latitude, longitude, nearest.latitude, nearest.longitude) <= NEAREST_CITY_MAX_KM:
        return nearest.zone
    hours = max(-12, min(14, round(longitude / 15)))
    if hours == 0:
        return "Etc/UTC"
    return f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"


def is_fixed_offset(zone: str) -> bool:
    """True for Etc/ zones, which never change for summer time."""
    return zone.startswith("Etc/")


def zone_label(zone: str, lang: str) -> str:
    """What a patient calls a zone: its city ("New York", "Wien") or "UTC+2"."""
    if is_fixed_offset(zone):
        name = zone.split("/", 1)[1]
        if name in ("UTC", "GMT", "UCT", "Zulu", "Universal", "GMT0", "GMT+0", "GMT-0"):
            return "UTC"
        hours = int(name[3:])
        return f"UTC{'+' if hours < 0 else '-'}{abs(hours)}"
    label = _LABELS.get(zone)
    if label is not None:
        return t(lang, label)
    return zone.rsplit("/", 1)[-1].replace("_", " ")


def local_time(zone: str, now: datetime) -> str:
    """The wall-clock time in zone at now, HH:MM."""
    return now.astimezone(ZoneInfo(zone)).strftime("%H:%M")


def zone_now(zone: str, lang: str, now: datetime) -> str:
    """A zone as a choice for the patient, in lang: "New York (now 04:10)"."""
    return t(lang, "{zone} (now {time})", zone=zone_label(zone, lang), time=local_time(zone, now))

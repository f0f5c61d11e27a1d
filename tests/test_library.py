"""The exercise library: texts per language, dose bounds, media checked by content and stored privately."""

from __future__ import annotations

import io
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from factories import has_exif, make_staff, photo
from PIL import Image
from sqlmodel import select
from test_media import WHERE, animated, phone_video

from rehab_bot import library
from rehab_bot.clock import FakeClock
from rehab_bot.content import Content, load_content
from rehab_bot.db import Database
from rehab_bot.library import LibraryError
from rehab_bot.models import AuditLog

JPEG = photo("JPEG")
PNG = photo("PNG")
GIF = b"GIF89a" + b"\x00" * 64
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64


def exercise_form(**kw: object) -> dict[str, object]:
    form: dict[str, object] = {
        "name": {"en": "Wall slides", "de": "Wandgleiten"},
        "instructions": {"en": "Slide your back down the wall.", "de": "Rücken an der Wand hinabgleiten."},
        "sets": 2,
        "reps": 8,
    }
    form.update(kw)
    return form


@pytest.fixture(scope="module")
def content() -> Content:
    return load_content(None)


@pytest.mark.parametrize(
    ("data", "name", "kind"),
    [
        (JPEG, "a.jpg", "photo"),
        (JPEG, "a.JPEG", "photo"),
        (PNG, "b.png", "photo"),
        (GIF, "c.gif", "animation"),
        (MP4, "d.mp4", "video"),
        (JPEG, "no-extension", "photo"),
    ],
)
def test_uploads_are_recognised_by_their_first_bytes(data: bytes, name: str, kind: str) -> None:
    assert library.check_media(data, name).kind == kind


@pytest.mark.parametrize(
    ("data", "name", "problem"),
    [
        (b"<html><script>alert(1)</script>", "photo.jpg", "Only photos"),  # the name says photo; the bytes do not
        (b"%PDF-1.7", "x.pdf", "Only photos"),
        (GIF, "looks-like.jpg", "ends in .jpg, but its content is image/gif: rename it to end in .gif,"),
        (MP4, "clip.png", "ends in .png"),
        (b"", "empty.jpg", "empty"),
    ],
)
def test_uploads_that_are_not_what_they_claim_are_refused(data: bytes, name: str, problem: str) -> None:
    with pytest.raises(LibraryError, match=problem):
        library.check_media(data, name)


def test_an_upload_over_telegrams_limit_for_its_kind_is_refused() -> None:
    big_photo = JPEG + b"\x00" * library.MAX_MEDIA_BYTES["photo"]
    with pytest.raises(LibraryError, match="larger than 10 MB"):
        library.check_media(big_photo, "big.jpg")


def test_an_exercise_needs_its_name_and_instructions_in_every_patient_language() -> None:
    with pytest.raises(LibraryError, match=r"name\.de: is required"):
        library.check_exercise(exercise_form(name={"en": "Only English"}))
    with pytest.raises(LibraryError, match=r"instructions\.de: is empty"):
        library.check_exercise(exercise_form(instructions={"en": "Do it.", "de": "   "}))
    with pytest.raises(LibraryError, match="reps"):
        library.check_exercise(exercise_form(reps=0))
    with pytest.raises(LibraryError, match="sets"):
        library.check_exercise(exercise_form(sets=library.MAX_SETS + 1))
    with pytest.raises(LibraryError, match="colour"):
        library.check_exercise(exercise_form(colour="red"))


async def test_the_library_holds_content_and_clinic_exercises_and_only_the_clinics_are_edited(
    db: Database, clock: FakeClock, content: Content, tmp_path: Path
) -> None:
    doc = await make_staff(db)
    async with db.session() as session:
        row = await library.create(session, doc, exercise_form(), clock.now())
        await session.commit()
        exercise_id = library.clinic_id(row)
    async with db.session() as session:
        entries = await library.entries(session, content, "de")
        by_id = {e.exercise.id: e for e in entries}
        assert "walking" in by_id and not by_id["walking"].editable
        assert by_id[exercise_id].editable and by_id[exercise_id].name("de") == "Wandgleiten"
        assert [e.name("de") for e in entries] == sorted((e.name("de") for e in entries), key=str.casefold)

        await library.update(session, doc, exercise_id, exercise_form(reps=12, hold_seconds=3), clock.now())
        with pytest.raises(LibraryError, match="Only the clinic's own"):
            await library.update(session, doc, "walking", exercise_form(), clock.now())
        await session.commit()
    async with db.session() as session:
        catalogue = await library.catalogue(session, content, [exercise_id])
        edited = catalogue[exercise_id]
        assert (edited.sets, edited.reps, edited.hold_seconds) == (2, 12, 3)
        assert edited.safety_notes == {}
        actions = (await session.exec(select(AuditLog.action, AuditLog.detail))).all()
    assert [tuple(a) for a in actions] == [
        ("library.create", f"exercise={exercise_id}"),
        ("library.edit", f"exercise={exercise_id}"),
    ]


async def test_an_uploaded_photo_is_stored_privately_and_becomes_the_exercises_media(
    db: Database, clock: FakeClock, content: Content, tmp_path: Path
) -> None:
    doc = await make_staff(db)
    media_dir = tmp_path / "data" / "media"
    async with db.session() as session:
        row = await library.create(session, doc, exercise_form(), clock.now())
        await session.flush()
        exercise_id = library.clinic_id(row)
        with pytest.raises(LibraryError):
            await library.attach_media(session, doc, exercise_id, b"not an image", "x.jpg", media_dir, clock.now())
        await library.attach_media(session, doc, exercise_id, PNG, "wall.png", media_dir, clock.now())
        await session.commit()
    async with db.session() as session:
        exercise = (await library.catalogue(session, content, [exercise_id]))[exercise_id]
    assert exercise.media_kind == "photo" and exercise.media is not None
    stored = Path(exercise.media)
    assert stored.parent == media_dir.resolve() and stored.suffix == ".png"
    assert "wall" not in stored.name  # the staff member's file name is not kept
    assert stored.read_bytes() == PNG
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(media_dir.stat().st_mode) == 0o700
    assert [p.name for p in media_dir.iterdir()] == [stored.name]  # the refused upload left nothing behind


async def test_an_uploaded_photo_loses_its_gps_position_and_a_fake_photo_is_refused(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    # The Mini App's exercise player serves the stored file to patients as it is.
    doc = await make_staff(db)
    media_dir = tmp_path / "media"
    upload = photo("JPEG", gps=True, size=(64, 48))
    assert has_exif(upload)
    async with db.session() as session:
        row = await library.create(session, doc, exercise_form(), clock.now())
        await session.flush()
        exercise_id = library.clinic_id(row)
        with pytest.raises(LibraryError, match="This photo could not be read"):
            fake = b"\xff\xd8\xff\xe0<html><script>alert(1)</script>"
            await library.attach_media(session, doc, exercise_id, fake, "x.jpg", media_dir, clock.now())
        row = await library.attach_media(session, doc, exercise_id, upload, "wall.jpg", media_dir, clock.now())
        await session.commit()
    stored = Path(row.media or "").read_bytes()
    assert not has_exif(stored) and b"PhoneMaker" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert (image.format, image.size) == ("JPEG", (64, 48))
    assert len(list(media_dir.iterdir())) == 1


async def test_an_uploaded_gif_or_video_loses_where_it_was_taken_and_a_fake_one_is_refused(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    doc = await make_staff(db)
    media_dir = tmp_path / "media"
    gif, video = animated(comment=b"taken at " + WHERE), phone_video()
    async with db.session() as session:
        row = await library.create(session, doc, exercise_form(), clock.now())
        await session.flush()
        exercise_id = library.clinic_id(row)
        for fake, name, problem in (
            (b"GIF89a<html><script>alert(1)</script>", "x.gif", "This GIF could not be read"),
            (b"\x00\x00\x00\x18ftypmp42<html><script>", "x.mp4", "This video could not be read"),
        ):
            with pytest.raises(LibraryError, match=problem):
                await library.attach_media(session, doc, exercise_id, fake, name, media_dir, clock.now())
        row = await library.attach_media(session, doc, exercise_id, gif, "walk.gif", media_dir, clock.now())
        stored_gif = Path(row.media or "").read_bytes()
        row = await library.attach_media(session, doc, exercise_id, video, "walk.mp4", media_dir, clock.now())
        stored_video = Path(row.media or "").read_bytes()
        await session.commit()
    assert row.media_kind == "video"
    assert WHERE not in stored_gif and stored_gif.startswith(b"GIF8")
    assert WHERE not in stored_video and b"PhoneMaker" not in stored_video and len(stored_video) == len(video)
    assert len(list(media_dir.iterdir())) == 2, "the refused uploads left nothing behind"


def test_the_media_folder_must_be_writable_or_creatable(tmp_path: Path) -> None:
    from factories import TEST_TOKEN

    from rehab_bot.config import ConfigError, load_config

    env = {"REHAB_BOT_TELEGRAM_TOKEN": TEST_TOKEN, "REHAB_BOT_LIBRARY_MEDIA_DIR": str(tmp_path / "new" / "media")}
    assert load_config(None, env=env).library.media_dir == tmp_path / "new" / "media"
    (tmp_path / "a-file").write_text("x")
    env["REHAB_BOT_LIBRARY_MEDIA_DIR"] = str(tmp_path / "a-file" / "media")
    with pytest.raises(ConfigError, match=r"library\.media_dir.*is not a folder"):
        load_config(None, env=env)


PYDANTIC_WORDS = ("Input should", "String should", "List should", "Extra inputs", "Field required")


@pytest.mark.parametrize(
    ("change", "where", "en", "de"),
    [
        ({"sets": library.MAX_SETS + 1}, "sets", "must be at most 20", "darf höchstens 20 sein"),
        ({"reps": 0}, "reps", "must be at least 1", "muss mindestens 1 sein"),
        ({"hold_seconds": 601}, "hold_seconds", "must be at most 600", "darf höchstens 600 sein"),
        ({"name": {"en": "x" * 81, "de": "x"}}, "name.en", "is too long (at most 80 characters)", "ist zu lang"),
        ({"name": {"en": "Wall slides"}}, "name.de", "is required", "fehlt"),
        ({"instructions": {"en": "Do it.", "de": " "}}, "instructions.de", "is empty", "ist leer"),
        ({"sets": "3"}, "sets", "is not a whole number", "ist keine ganze Zahl"),
        ({"colour": "red"}, "colour", "is not a field of this form", "ist kein Feld dieses Formulars"),
    ],
)
def test_a_refused_exercise_says_what_is_wrong_in_our_own_words_in_english_and_german(
    change: dict[str, object], where: str, en: str, de: str
) -> None:
    with pytest.raises(LibraryError) as refused:
        library.check_exercise(exercise_form(**change))
    [found] = refused.value.fields
    assert found.where == where
    assert found.said("en") == en and found.said("de").startswith(de)
    assert str(found) == f"{where}: {en}" and f"{where}: {en}" in str(refused.value)
    assert not any(words in found.text(lang) for words in PYDANTIC_WORDS for lang in ("en", "de"))


async def test_the_same_file_uploaded_again_stores_nothing_new(db: Database, clock: FakeClock, tmp_path: Path) -> None:
    """An exercise's form posted twice with its upload (a double click, a reload): one file on disk."""
    doc = await make_staff(db)
    media_dir = tmp_path / "media"
    upload = photo("JPEG", gps=True, size=(64, 48))
    async with db.session() as session:
        row = await library.create(session, doc, exercise_form(), clock.now())
        await session.flush()
        exercise_id = library.clinic_id(row)
        first = (
            await library.attach_media(session, doc, exercise_id, upload, "wall.jpg", media_dir, clock.now())
        ).media
        await session.commit()
    clock.advance(timedelta(seconds=2))
    async with db.session() as session:
        again = await library.attach_media(session, doc, exercise_id, upload, "wall.jpg", media_dir, clock.now())
        await session.commit()
        assert (again.media, again.updated_at) == (first, row.updated_at)
        logged = (await session.exec(select(AuditLog).where(AuditLog.action == "library.media"))).all()
    assert len(logged) == 1
    assert [p.name for p in media_dir.iterdir()] == [Path(first).name]
    async with db.session() as session:  # another file is new: it is stored and becomes the media
        other = await library.attach_media(session, doc, exercise_id, PNG, "wall.png", media_dir, clock.now())
        await session.commit()
    assert other.media != first and len(list(media_dir.iterdir())) == 2


def test_a_stored_file_of_a_save_not_committed_is_removed(tmp_path: Path) -> None:
    stored = library.store_media(PNG, tmp_path / "media", library.check_media(PNG, "wall.png"))
    library.remove_media(stored)
    library.remove_media(stored)  # gone already: fine
    assert list((tmp_path / "media").iterdir()) == []

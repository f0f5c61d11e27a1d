"""Uploaded GIFs and MP4 videos lose where and when they were taken, and stay playable."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image, ImageSequence

from rehab_bot import media

WHERE = b"+52.5200+013.4050/"  # a GPS position as phones write it into a video (QuickTime ©xyz)


def box(kind: bytes, body: bytes, *, large: bool = False) -> bytes:
    if large:  # size 1: the 64-bit size follows the type
        return struct.pack(">I4sQ", 1, kind, 16 + len(body)) + body
    return struct.pack(">I4s", 8 + len(body), kind) + body


def header(kind: bytes, version: int, created: int, rest: bytes = b"\x00" * 20) -> bytes:
    width = ">QQ" if version == 1 else ">II"
    return box(kind, bytes([version, 0, 0, 0]) + struct.pack(width, created, created + 1) + rest)


def phone_video(*, version: int = 0, large_mdat: bool = False) -> bytes:
    """An MP4 as a phone writes it: the movie with a track, the position and the device in user data,
    Apple's location keys in `meta`, XMP in a top-level `uuid`, then the media data."""
    location = box(b"udta", box(b"\xa9xyz", struct.pack(">HH", len(WHERE), 0) + WHERE) + box(b"\xa9mak", b"PhoneMaker"))
    keys = box(b"meta", b"\x00" * 4 + box(b"keys", b"com.apple.quicktime.location.ISO6709" + WHERE))
    track = box(
        b"trak",
        header(b"tkhd", version, 3_700_000_000)
        + box(b"mdia", header(b"mdhd", version, 3_700_000_000) + box(b"hdlr", b"\x00" * 24))
        + box(b"udta", box(b"\xa9xyz", WHERE)),
    )
    movie = box(b"moov", header(b"mvhd", version, 3_700_000_000, b"\x00" * 80) + track + location + keys)
    return (
        box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")
        + box(b"uuid", bytes.fromhex("be7acfcb97a942e89c71999491e3afac") + b"<x:xmpmeta>" + WHERE)
        + movie
        + box(b"mdat", b"frames" * 50, large=large_mdat)
    )


def kinds(data: bytes, start: int = 0, end: int | None = None) -> list[bytes]:
    """The box types at one level."""
    end = len(data) if end is None else end
    found, at = [], start
    while at < end:
        size, kind = struct.unpack_from(">I4s", data, at)
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, at + 8)
        found.append(kind)
        at += size
    return found


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("large_mdat", [False, True])
def test_a_videos_position_device_and_times_are_blanked_and_nothing_moves(version: int, large_mdat: bool) -> None:
    video = phone_video(version=version, large_mdat=large_mdat)
    assert WHERE in video and b"PhoneMaker" in video and struct.pack(">I", 3_700_000_000)[:3] in video
    cleaned = media.mp4(video)
    assert cleaned is not None
    assert len(cleaned) == len(video), "same size: the sample offsets stay right"
    assert WHERE not in cleaned and b"PhoneMaker" not in cleaned and b"com.apple" not in cleaned
    assert b"xmpmeta" not in cleaned
    assert kinds(cleaned) == [b"ftyp", b"free", b"moov", b"mdat"]
    assert cleaned.endswith(video[-300:]), "the media data is untouched"
    mvhd = cleaned.index(b"mvhd") + 4
    width = 8 if version == 1 else 4
    assert cleaned[mvhd] == version and cleaned[mvhd + 4 : mvhd + 4 + 2 * width] == bytes(2 * width)
    for kind in (b"tkhd", b"mdhd"):
        at = cleaned.index(kind) + 4
        assert cleaned[at + 4 : at + 4 + 2 * width] == bytes(2 * width), kind
    assert media.mp4(cleaned) == cleaned, "cleaning again changes nothing"


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00\x18ftypmp42" + b"<html>" * 3,  # a box that runs past the end
        box(b"ftyp", b"isom") + b"\x00\x00\x00\x04free",  # a box smaller than its header
        box(b"ftyp", b"isom") + b"\x00\x00",  # cut short
        box(b"moov", b"") + box(b"ftyp", b"isom"),  # not an MP4: ftyp first
        box(b"ftyp", b"isom") + box(b"moov", b"\x00\x00\x00\x30trak"),  # a track that says it is longer than the movie
    ],
)
def test_a_file_that_only_starts_like_a_video_is_not_read(data: bytes) -> None:
    assert media.mp4(data) is None


def animated(comment: bytes | None = None) -> bytes:
    frames = [Image.new("P", (12, 8), i) for i in range(3)]
    for frame in frames:
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    out = io.BytesIO()
    options = {"comment": comment} if comment else {}
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=[100, 200, 300], loop=2, **options)
    return out.getvalue()


def test_a_gifs_comment_is_dropped_and_its_frames_timing_and_loop_kept() -> None:
    upload = animated(comment=b"taken at " + WHERE)
    assert WHERE in upload
    cleaned = media.gif(upload)
    assert cleaned is not None and WHERE not in cleaned and b"taken at" not in cleaned
    with Image.open(io.BytesIO(cleaned)) as image:
        assert (image.format, image.size, image.n_frames, image.info.get("loop")) == ("GIF", (12, 8), 3, 2)
        assert "comment" not in image.info
        durations = [frame.info["duration"] for frame in ImageSequence.Iterator(image)]
        colours = [frame.convert("RGB").getpixel((0, 0)) for frame in ImageSequence.Iterator(image)]
    assert durations == [100, 200, 300]
    assert colours == [(0, 0, 0), (255, 0, 0), (0, 255, 0)]


def test_a_file_that_only_starts_like_a_gif_is_not_read() -> None:
    assert media.gif(b"GIF89a<html><script>alert(1)</script>") is None
    assert media.gif(animated()[:40]) is None

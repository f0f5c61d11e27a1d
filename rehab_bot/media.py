"""Uploaded pictures and videos with what the camera wrote about them removed.

A phone's photo or video carries where and when it was taken (GPS position, often the patient's
home or the therapist's), and the device; the clinic needs none of it, and the exercise player
serves library media to patients as stored. Telegram strips this from photos sent in the chat; an
upload to the web app arrives as the phone wrote it. Every upload is therefore cleaned before it is
stored, by kind:

* photos (JPEG, PNG): re-encoded by Pillow with their pixels only, turned upright (:func:`photo`);
* GIFs: re-encoded by Pillow frame by frame, with each frame's duration and the loop count, and no
  comment or application extension but the loop (:func:`gif`);
* MP4 videos: every metadata box (``udta``, ``meta``, ``uuid``: GPS position, recording device, XMP)
  at the file, movie, track and media level is blanked in place into a ``free`` box of the same
  size, and the creation and modification times in the movie, track and media headers are set to
  zero (:func:`mp4`). Nothing moves, so the sample offsets stay right and no re-encoding (which
  would need ffmpeg) is needed.

Each returns None for a file it cannot read as its kind (a file that only starts like one): the
caller refuses it with a friendly message.
"""

from __future__ import annotations

import io
import struct

# A picture larger than this (in pixels, over all of a GIF's frames) is refused rather than decoded:
# a phone's 50 MP camera fits.
MAX_PHOTO_PIXELS = 60_000_000

# MP4 boxes that hold metadata, not media: blanked into `free` boxes (ISO/IEC 14496-12: a reader skips
# `free`). `udta` holds the QuickTime GPS position (©xyz) and the device; `meta` the iTunes-style tags
# and Apple's location keys; `uuid` at the top level Adobe's XMP.
_METADATA_BOXES = frozenset({b"udta", b"meta", b"uuid"})
# Boxes whose children are searched for metadata boxes and headers: the movie, its tracks, their media.
_CONTAINERS = frozenset({b"moov", b"trak", b"mdia"})
# Headers with a creation and a modification time right after their version and flags.
_TIMED_HEADERS = frozenset({b"mvhd", b"tkhd", b"mdhd"})


def photo_kind(data: bytes) -> str | None:
    """ "jpeg" or "png" when the bytes start like one; None for anything else (never trusted by name)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    return None


def photo(data: bytes) -> bytes | None:
    """A JPEG or PNG re-encoded with nothing but its pixels, turned upright; None when it is no JPEG or
    PNG Pillow can read (e.g. HTML after a JPEG header)."""
    from PIL import Image, ImageOps

    kind = photo_kind(data)
    if kind is None:
        return None
    try:
        with Image.open(io.BytesIO(data), formats=[kind.upper()]) as image:
            if image.width * image.height > MAX_PHOTO_PIXELS:
                return None
            upright = ImageOps.exif_transpose(image)  # a copy, pixels only: EXIF, XMP, comments stay behind
            if kind == "jpeg" and upright.mode not in ("L", "RGB", "CMYK"):
                upright = upright.convert("RGB")
            out = io.BytesIO()
            if kind == "jpeg":
                upright.save(out, "JPEG", quality=95)
            else:
                upright.save(out, "PNG")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return out.getvalue()


def gif(data: bytes) -> bytes | None:
    """A GIF re-encoded frame by frame with its frames' durations and its loop count, and nothing else
    (comments and XMP stay behind); None when Pillow cannot read it as a GIF."""
    from PIL import Image, ImageSequence

    try:
        with Image.open(io.BytesIO(data), formats=["GIF"]) as image:
            frames = getattr(image, "n_frames", 1)
            if image.width * image.height * frames > MAX_PHOTO_PIXELS:
                return None
            loop = image.info.get("loop")
            pictures, durations = [], []
            for frame in ImageSequence.Iterator(image):
                durations.append(int(frame.info.get("duration") or 0))
                picture = frame.copy()
                picture.info = {}  # the comment, the XMP, the extensions: Pillow writes back what info holds
                pictures.append(picture)
            out = io.BytesIO()
            options: dict[str, object] = {"save_all": True, "append_images": pictures[1:], "duration": durations}
            if loop is not None:
                options["loop"] = loop
            pictures[0].save(out, "GIF", **options)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None
    return out.getvalue()


def mp4(data: bytes) -> bytes | None:
    """An MP4 with its metadata boxes blanked and its recording times zeroed, the same size; None when
    its boxes do not add up (not an MP4, or cut short)."""
    out = bytearray(data)
    if not _clean_boxes(out, 0, len(out), top=True):
        return None
    return bytes(out)


def _clean_boxes(buf: bytearray, start: int, end: int, *, top: bool = False) -> bool:
    """Blank the metadata boxes among the boxes in buf[start:end] and below its containers; False when
    the boxes there do not fill it exactly."""
    at = start
    seen_ftyp = not top
    while at < end:
        if end - at < 8:
            return False
        size, kind = struct.unpack_from(">I4s", buf, at)
        header = 8
        if size == 1:  # a 64-bit size follows the type
            if end - at < 16:
                return False
            (size,) = struct.unpack_from(">Q", buf, at + 8)
            header = 16
        elif size == 0:  # to the end of the file (only the last box)
            size = end - at
        if size < header or at + size > end:
            return False
        if top and not seen_ftyp:
            if kind != b"ftyp":
                return False
            seen_ftyp = True
        if kind in _METADATA_BOXES:
            buf[at + 4 : at + 8] = b"free"
            buf[at + header : at + size] = bytes(size - header)
        elif kind in _CONTAINERS:
            if not _clean_boxes(buf, at + header, at + size):
                return False
        elif kind in _TIMED_HEADERS:
            _zero_times(buf, at + header, at + size)
        at += size
    return True


def _zero_times(buf: bytearray, start: int, end: int) -> None:
    """Zero the creation and modification times of an mvhd, tkhd or mdhd (version 0: 32-bit, 1: 64-bit)."""
    if end - start < 4:
        return
    width = 8 if buf[start] == 1 else 4
    if end - start >= 4 + 2 * width:
        buf[start + 4 : start + 4 + 2 * width] = bytes(2 * width)

"""WTForms with CSRF bound to the session (SessionCSRF): every form, and the check on every POST.

A page renders ``{{ csrf_field }}`` in its forms (or sends the token in the
``X-CSRF-Token`` header: the base template sets it for htmx requests and
scripts read it from ``<meta name="csrf-token">``). :func:`csrf_middleware`
refuses any POST, PUT, PATCH or DELETE whose token is missing, forged, expired
or from another session, before a handler runs (:class:`CsrfRefused`: a 403 that
app.error_middleware shows as "the form had expired", not as a permission
refusal); handlers then parse their fields with their own :class:`Form` subclass.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp_session import get_session
from multidict import MultiMapping
from wtforms import Form as _Form
from wtforms import IntegerField
from wtforms.csrf.session import SessionCSRF

from rehab_bot.i18n import N_, Problem
from rehab_bot.typed import number
from rehab_bot.web.context import context

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_TITLE = N_("The form has expired")
# Said beside a number field (every one is a WholeNumberField) for "abc", "-3" or "2,5", as the other
# problems are ("must be at most 20"): what to type, not WTForms' "Not a valid integer value." (-3 is one).
NOT_A_WHOLE_NUMBER = N_("must be a number in digits (0-9)")
BEYOND_EVERY_LIMIT = 10**9  # more than nine digits: past every limit a form has
# Said above a GET form of dates (a report's range, the audit log's filter) for one that is not a date.
NOT_DATES = N_("Enter the dates as YYYY-MM-DD.")
CSRF_EXPIRED = N_(
    "The form had expired or was not sent from this site, so nothing was done. "
    "Please open the page again and repeat what you did."
)


class CsrfRefused(web.HTTPForbidden):
    """A state-changing request without a valid CSRF token: still 403, but not a permission refusal."""

    def __init__(self) -> None:
        super().__init__(text=CSRF_EXPIRED)


class FormData:
    """aiohttp's MultiDict as WTForms reads form data (getlist)."""

    def __init__(self, data: MultiMapping[Any] | dict[str, str], *, header_token: str = "") -> None:
        self._data = data
        # A token sent in the X-CSRF-Token header (htmx, fetch) stands for the form field.
        self._token = header_token

    def __iter__(self) -> Any:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data or (key == CSRF_FIELD and bool(self._token))

    def getlist(self, key: str) -> list[Any]:
        if key == CSRF_FIELD and key not in self._data and self._token:
            return [self._token]
        if isinstance(self._data, dict):
            return [self._data[key]] if key in self._data else []
        return list(self._data.getall(key, []))


def line_breaks(value: Any) -> Any:
    """A text field's line breaks as one character each (browsers send CR LF, and count it as one in maxlength)."""
    return value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else value


class WholeNumberField(IntegerField):
    """A whole number typed in a form, read as typed.number reads it: ASCII digits only, spaces around
    allowed. IntegerField reads with int(), which also takes "١٠" (Arabic-Indic ten), "1_0" and "+3"."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        raw = valuelist[0]
        text = raw.strip() if isinstance(raw, str) else ""
        self.data = number(text, 9)
        if self.data is None and text.isascii() and text.isdigit():
            # Digits, more than any limit ("99999999999"): read as a number past every limit, so the field's
            # or the core's "must be at most 200" says what is wrong, not "must be a number in digits".
            self.data = BEYOND_EVERY_LIMIT
        if self.data is None and text:
            raise ValueError(NOT_A_WHOLE_NUMBER)

    def shown(self) -> str:
        """What the form's input shows: the text as typed when the form was posted (a refused "abc",
        "-3" or "999" comes back as it was, beside its problem), else the number, else nothing."""
        return str(self._value())


def form_problems(form: _Form) -> list[Problem]:
    """What WTForms found wrong with a form's fields, each with its dotted path
    ("sets", "phases.0.sessions.0.items.0.reps"): said like the core's problems (library.Problem)."""
    found: list[Problem] = []

    def walk(errors: Any, where: str) -> None:
        if isinstance(errors, dict):
            for key, value in errors.items():
                walk(value, f"{where}.{key}" if where else str(key))
        elif isinstance(errors, list | tuple):
            for n, value in enumerate(errors):
                if isinstance(value, str):
                    found.append(Problem(value, where=where))
                else:
                    walk(value, f"{where}.{n}")

    walk(form.errors, "")
    return found


class Form(_Form):
    """Every web form: CSRF-protected with a token bound to the visitor's session."""

    class Meta:
        csrf = True
        csrf_class = SessionCSRF
        csrf_field_name = CSRF_FIELD
        csrf_time_limit = timedelta(hours=12)


async def bind(form_class: type[Form], request: web.Request, data: Any = None) -> Any:
    """A form bound to the request's session; data is the posted fields (None for an empty form)."""
    session = await get_session(request)
    meta = {"csrf_secret": context(request).key("csrf"), "csrf_context": session}
    formdata = FormData(data, header_token=request.headers.get(CSRF_HEADER, "")) if data is not None else None
    return form_class(formdata=formdata, meta=meta)


async def csrf_token(request: web.Request) -> str:
    """A CSRF token for this session (made on first use)."""
    form = await bind(Form, request)
    return str(form.csrf_token.current_token)


class _CsrfOnly(Form):
    pass


async def csrf_ok(request: web.Request) -> bool:
    """The request carries a valid token for its session, in the header or the posted form."""
    session = await get_session(request)
    if "csrf" not in session:  # no token was ever issued to this session
        return False
    token = request.headers.get(CSRF_HEADER, "")
    if not token and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        posted = await request.post()
        value = posted.get(CSRF_FIELD, "")
        token = value if isinstance(value, str) else ""
    form = await bind(_CsrfOnly, request, {CSRF_FIELD: token})
    return bool(form.validate())


@web.middleware
async def csrf_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Refuse a state-changing request without a valid CSRF token (403), whoever sends it."""
    if request.method in UNSAFE and not await csrf_ok(request):
        raise CsrfRefused()
    response: web.StreamResponse = await handler(request)
    return response

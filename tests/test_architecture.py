"""The layers hold, read from the import graph of every module (function-level imports included).

- Only the Telegram layer (rehab_bot/bot/) and the two transport modules import telegram:
  the domain core is plain Python, so a web app or Mini App can be a second front end.
- rehab_bot/bot/app.py is the composition root: no bot/ module imports it.
- rehab_bot/bot/services.py is a leaf: it imports no other bot/ module.
- The core does not reach up into the Telegram layer; only the CLI (and the demo's runner,
  which `rehab-bot demo` starts) starts the bot.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "rehab_bot"
TRANSPORT = {"rehab_bot.transport", "rehab_bot.aiohttp_request"}
# Entry points that start the bot (they import rehab_bot.bot.app, inside a function).
STARTERS = {"rehab_bot.cli", "rehab_bot.demo.runner"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (``from a import b`` counts as a and a.b)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@cache  # the sources do not change during a run: parsed once per process, not once per test
def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_graph_sees_function_level_and_relative_imports() -> None:
    source = PACKAGE / "bot" / "common.py"
    assert "rehab_bot.bot.services" in imports_of(source)
    # cli.py imports the application inside a function; the graph must see it.
    assert "rehab_bot.bot.app" in graph()["rehab_bot.cli"]


def test_only_the_telegram_layer_and_the_transport_import_telegram() -> None:
    offenders = {
        module: sorted(i for i in imported if within(i, "telegram"))
        for module, imported in graph().items()
        if not within(module, "rehab_bot.bot") and module not in TRANSPORT
    }
    assert {m: i for m, i in offenders.items() if i} == {}


def test_no_bot_module_imports_the_composition_root() -> None:
    offenders = sorted(
        module
        for module, imported in graph().items()
        if within(module, "rehab_bot.bot") and module != "rehab_bot.bot.app" and "rehab_bot.bot.app" in imported
    )
    assert offenders == []


def test_services_is_a_leaf_of_the_telegram_layer() -> None:
    imported = graph()["rehab_bot.bot.services"]
    assert sorted(i for i in imported if within(i, "rehab_bot.bot")) == []


def test_the_core_does_not_reach_up_into_the_telegram_layer() -> None:
    offenders = {
        module: sorted(i for i in imported if within(i, "rehab_bot.bot"))
        for module, imported in graph().items()
        if not within(module, "rehab_bot.bot") and module not in STARTERS
    }
    assert {m: i for m, i in offenders.items() if i} == {}


WRITES = {"commit", "flush", "add", "open_sessions", "open_for_deliveries", "sync_phase", "execute"}


def test_session_renderers_only_turn_rows_into_messages() -> None:
    """The session reminders are opened by the core (session.open_for_deliveries) before the send."""
    path = PACKAGE / "bot" / "session.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    renderers = [
        node
        for node in tree.body
        if isinstance(node, ast.AsyncFunctionDef)
        and node.name in {"render_reminders", "_render_snoozed", "render_nudge"}
    ]
    assert len(renderers) == 3
    writes = {
        (fn.name, call.func.attr)
        for fn in renderers
        for call in ast.walk(fn)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in WRITES
    }
    assert writes == set()


def test_the_web_front_end_is_thin_and_writes_no_queries() -> None:
    """rehab_bot/web/ parses, calls the core and renders: no SQL of its own, no telegram."""
    offenders = {
        module: sorted(
            i
            for i in imported
            if within(i, "telegram")
            or i
            in {"sqlmodel.select", "sqlalchemy.select", "sqlalchemy.update", "sqlalchemy.delete", "sqlalchemy.insert"}
        )
        for module, imported in graph().items()
        if within(module, "rehab_bot.web")
    }
    assert {m: i for m, i in offenders.items() if i} == {}
    assert "rehab_bot.web" not in {m for m, imported in graph().items() if "rehab_bot.bot" in imported}


# Core calls that write: a renderer must not make them (the entry points below call the core's
# open/choose-for-delivery function once, before rendering).
CORE_WRITES = WRITES | {"start", "next_step", "choose", "record_sent", "delete"}
PURE_RENDERERS = {
    "checkin.py": {"checkin_message", "motivation_message", "step_message"},
    "education.py": {"lesson_delivery", "lesson_message"},
}
ENTRIES = {
    "checkin.py": {"render_checkin": "open_for_delivery", "render_motivation": "choose_for_delivery"},
    "education.py": {"render_lesson": "due_for_delivery"},
}


def _functions(name: str) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    tree = ast.parse((PACKAGE / "bot" / name).read_text(encoding="utf-8"))
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def _called(fn: ast.AST) -> set[str]:
    return {
        call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        for call in ast.walk(fn)
        if isinstance(call, ast.Call)
    }


def test_checkin_motivation_and_lesson_renderers_write_nothing() -> None:
    """Check-ins, motivation and lessons are opened or chosen by the core before rendering; rendering only reads."""
    for name, pure in PURE_RENDERERS.items():
        functions = _functions(name)
        assert pure <= functions.keys(), name
        for fn in pure:
            assert _called(functions[fn]) & CORE_WRITES == set(), (name, fn)
            assert not isinstance(functions[fn], ast.AsyncFunctionDef), f"{fn} reads nothing: it is not async"
    for name, entries in ENTRIES.items():
        functions = _functions(name)
        for fn, core_call in entries.items():
            called = _called(functions[fn])
            assert core_call in called, (name, fn)
            assert called & CORE_WRITES == set(), (name, fn, called & CORE_WRITES)


# Where the clinician side of the core lives since staff.py was split (issue #13): each name has
# this one home, and no other core module defines it again.
CLINIC_HOMES = {
    "caseload": {"patient_page", "patient_row", "patient_detail", "answer_text", "risk_for", "pain_means", "discharge"},
    "alert": {"raise_alert", "route", "acknowledge", "open_alerts", "escalate_overdue", "escalation_due"},
    "digest": {"digest_text", "digest_due", "digest_key", "queue_digests"},
    "staff": {"add_staff", "remove_staff", "active_staff", "staff_message", "queue_staff_messages"},
    "access": {"access", "require", "is_admin"},
}


def test_each_clinic_rule_has_one_home_in_the_core() -> None:
    defined: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
        defined[path.stem] = names
    for home, names in CLINIC_HOMES.items():
        assert names <= defined[home], (home, names - defined[home])
        elsewhere = {(m, n) for m, found in defined.items() if m != home for n in names & found}
        assert elsewhere == set(), elsewhere


def test_the_staff_bot_is_a_package_of_features() -> None:
    features = {p.stem for p in (PACKAGE / "bot" / "staff").glob("*.py")}
    assert features == {"__init__", "press", "patients", "care", "exports", "alerts", "invites"}
    assert not (PACKAGE / "bot" / "staff.py").exists()

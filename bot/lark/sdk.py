"""Only the part of `lark_oapi` the bot uses: the long-connection client and the SDK core.

`import lark_oapi` runs the package's `__init__`, which imports every generated API module
(about 140 MB and 3 s). The bot's REST calls go through its own pooled client (`bot.lark.api`);
of the SDK it needs `lark_oapi.ws.client` alone, whose one heavy import, the event dispatcher
(which imports every API's event processors), it uses only as a type annotation: the bot hands
it its own handler (`_do_without_validation`, see `bot.lark.connection`).

`ws_client()` imports `lark_oapi.ws.client` with the package's `__init__` and the dispatcher
module stood in for by empty modules for the duration of the import, then takes the stand-ins
away, so that a later `import lark_oapi` anywhere in the process gets the whole real SDK.
Nothing installed is changed. `check_layout` says what no longer fits if an SDK upgrade moves
things; the unit tests run it, and a failure here falls back to the full import.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import types
from pathlib import Path
from typing import Any

from bot.logs import get_logger

log = get_logger(__name__)

PACKAGE = "lark_oapi"
DISPATCHER = "lark_oapi.event.dispatcher_handler"
CLIENT = "lark_oapi.ws.client"
# the long-connection client's parameters the bot passes (`bot.lark.connection`)
CLIENT_PARAMETERS = (
    "app_id",
    "app_secret",
    "event_handler",
    "domain",
    "log_level",
    "auto_reconnect",
)


class _Dispatcher:
    """Stands in for `EventDispatcherHandler` while the client module is imported."""


def ws_client() -> types.ModuleType:
    """`lark_oapi.ws.client`, loaded without the SDK's API modules when the layout allows."""
    loaded = sys.modules.get(CLIENT)
    if loaded is not None:
        return loaded
    if PACKAGE in sys.modules:  # the whole SDK is there already: nothing to save
        return importlib.import_module(CLIENT)
    problem = check_layout()
    if problem is not None:
        log.warning("lark.sdk_layout_changed", problem=problem, fallback="full import")
        return importlib.import_module(CLIENT)
    stand_ins = _stand_ins()
    try:
        return importlib.import_module(CLIENT)
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


def log_level(client_module: types.ModuleType) -> Any:
    """The SDK's `LogLevel` enumeration (from the core, as the client module imports it)."""
    return client_module.LogLevel


def check_layout() -> str | None:
    """What of the SDK's layout the light import relies on is missing (None: all there). Reads
    the installed files only: importing anything here would run the package's `__init__`."""
    root = _root()
    if root is None:
        return f"{PACKAGE} is not an installed package"
    for part in (("ws", "client.py"), ("event", "dispatcher_handler.py"), ("event", "__init__.py")):
        if not root.joinpath(*part).is_file():
            return f"{PACKAGE}/{'/'.join(part)} is missing"
    source = root.joinpath("ws", "client.py").read_text(encoding="utf-8")
    if "_do_without_validation" not in source:
        return "the client no longer calls the event handler's _do_without_validation"
    if source.count("EventDispatcherHandler") > 3:  # an import and annotations, nothing more
        return "the client uses EventDispatcherHandler beyond its annotations"
    return None


def client_problem(client_module: types.ModuleType) -> str | None:
    """What of the client's signature the connection relies on is missing (None: fits)."""
    client = getattr(client_module, "Client", None)
    if client is None:
        return f"{CLIENT} has no Client"
    names = set(inspect.signature(client).parameters)
    missing = [name for name in CLIENT_PARAMETERS if name not in names]
    if missing:
        return f"Client no longer takes {', '.join(missing)}"
    if not hasattr(client_module, "LogLevel"):
        return f"{CLIENT} no longer imports LogLevel"
    return None


def _root() -> Path | None:
    spec = importlib.util.find_spec(PACKAGE)  # a top-level package: not imported by this
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _stand_ins() -> dict[str, types.ModuleType]:
    """Empty modules for the package and the dispatcher, in `sys.modules` until removed."""
    root = _root()
    assert root is not None
    package = types.ModuleType(PACKAGE)
    package.__path__ = [str(root)]
    event = types.ModuleType("lark_oapi.event")
    event.__path__ = [str(root / "event")]
    dispatcher = types.ModuleType(DISPATCHER)
    dispatcher.EventDispatcherHandler = _Dispatcher  # type: ignore[attr-defined]
    stand_ins = {PACKAGE: package, "lark_oapi.event": event, DISPATCHER: dispatcher}
    sys.modules.update(stand_ins)
    return stand_ins

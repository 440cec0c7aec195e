"""Pure cores stay pure: logtui's core and shadow's diff engine pull in no UI, no event
loop, no proxy and no network client when imported."""

import pkgutil
import subprocess
import sys

import logtui.core

# (geoip2 imports the socket module for its web client; no socket is opened by the core)
FORBIDDEN = ("textual", "asyncio", "mitmproxy", "httpx", "watchfiles")


def imported(modules: list[str]) -> list[str]:
    """The forbidden top-level packages that importing `modules` brings in (fresh process)."""
    program = "\n".join([
        "import sys",
        *(f"import {name}" for name in modules),
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})",
        "print(','.join(bad))",
    ])
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            check=True, timeout=60)
    return [name for name in result.stdout.strip().split(",") if name]


def test_logtui_core_imports_no_ui_event_loop_or_network_client() -> None:
    modules = [m.name for m in pkgutil.walk_packages(logtui.core.__path__, "logtui.core.")]
    assert "logtui.core.stats" in modules and "logtui.core.formats.nginx" in modules
    assert imported(modules) == []


def test_shadow_diff_imports_no_proxy_network_client_or_event_loop() -> None:
    assert imported(["shadow.diff"]) == []

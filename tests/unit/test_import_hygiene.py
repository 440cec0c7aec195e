"""The core stays pure: importing all of it pulls in no UI, no event loop, no network client."""

import pkgutil
import subprocess
import sys

import logtui.core

# (geoip2 imports the socket module for its web client; no socket is opened by the core)
FORBIDDEN = ("textual", "asyncio", "mitmproxy", "httpx", "watchfiles")


def test_core_imports_no_ui_event_loop_or_network_client() -> None:
    modules = [m.name for m in pkgutil.walk_packages(logtui.core.__path__, "logtui.core.")]
    assert "logtui.core.stats" in modules and "logtui.core.formats.nginx" in modules
    program = "\n".join([
        "import sys",
        *(f"import {name}" for name in modules),
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})",
        "print(','.join(bad))",
    ])
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == ""

"""The diff engine stays pure: importing it pulls in no proxy, no HTTP client, no event loop."""

import subprocess
import sys

FORBIDDEN = ("mitmproxy", "httpx", "asyncio", "textual")


def test_diff_imports_no_proxy_network_client_or_event_loop() -> None:
    program = "\n".join([
        "import sys",
        "import shadow.diff",
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})",
        "print(','.join(bad))",
    ])
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == ""

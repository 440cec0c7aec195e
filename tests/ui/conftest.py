"""UI tests run on a frozen clock in UTC, so every time the panels show is the same."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

# the harness's assertions explain themselves like the tests' own
pytest.register_assert_rewrite("harness")


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

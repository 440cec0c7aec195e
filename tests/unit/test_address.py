import pytest

from logtui.core.address import AddressError, is_loopback, parse_endpoint


def test_endpoints() -> None:
    assert parse_endpoint("24224", "0.0.0.0") == ("0.0.0.0", 24224)
    assert parse_endpoint("127.0.0.1:0", "x") == ("127.0.0.1", 0)
    assert parse_endpoint("[::1]:24225", "x") == ("::1", 24225)
    assert parse_endpoint("logs.example:24224", "x") == ("logs.example", 24224)
    assert parse_endpoint(":8080", "") == ("", 8080)      # every interface, as Go writes it
    assert parse_endpoint("127.0.0.1:0", None) == ("127.0.0.1", 0)


@pytest.mark.parametrize("text", ["", "port", "1:2:3", "host:99999", "host:-1", "host:",
                                  "host:http"])
def test_bad_endpoints_say_why(text: str) -> None:
    with pytest.raises(AddressError, match=repr(text).replace("[", r"\[")):
        parse_endpoint(text, "0.0.0.0")


@pytest.mark.parametrize("text", ["24224", ":24224"])
def test_a_required_host(text: str) -> None:
    with pytest.raises(AddressError, match="expected HOST:PORT"):
        parse_endpoint(text, None)


def test_loopback() -> None:
    assert is_loopback("127.0.0.5") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
    assert not is_loopback("example.com")

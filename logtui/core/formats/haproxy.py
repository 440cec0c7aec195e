"""HAProxy's default HTTP log (`option httplog`), with or without the syslog header,
parsed a column at a time as a RegexFormat.
"""

from __future__ import annotations

import polars as pl

from logtui.core.formats.regex import RegexFormat, Target, as_float, as_int
from logtui.core.timestamps import naive_local_expr

# The fields in the order of the HAProxy configuration manual, section 8.2.3:
#   client_ip:port [accept_date] frontend backend/server TR/Tw/Tc/Tr/Ta status bytes_read
#   request_cookie response_cookie termination_state actconn/feconn/beconn/srv_conn/retries
#   srv_queue/backend_queue {request headers} {response headers} "request"
# Whatever comes before the client (a syslog header, "haproxy[pid]: ", nothing when HAProxy
# logs to stdout) is skipped: the rest of the line is specific enough to anchor on.
PREFIX = r"(?:.*? )?"
CLIENT = r"(?P<client_ip>\S+):(?P<client_port>\d+) "
ACCEPT_DATE = r"\[(?P<accept_date>\d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2}\.\d{3})\] "
# '~' after the frontend marks a TLS listener; the name is what the configuration says.
ROUTE = r"(?P<frontend>[^\s~]+)~? (?P<backend>[^\s/]+)/(?P<server>\S+) "


def _timer(name: str) -> str:
    # -1 means the phase never happened (aborted, or no server reached): no value at all.
    return rf"(?:-1|(?P<{name}>\d+))"


# With `option logasap` the total time and the byte count are written with a leading '+'.
TIMERS = "/".join([_timer("TR"), _timer("Tw"), _timer("Tc"), _timer("Tr"), r"\+?" + _timer("Ta")])
STATUS = r"(?:-1|(?P<status>\d{3})) \+?(?P<bytes_read>\d+) "
STATE = r"(?P<request_cookie>\S+) (?P<response_cookie>\S+) (?P<termination_state>\S{4}) "
COUNTERS = (r"(?P<actconn>\d+)/(?P<feconn>\d+)/(?P<beconn>\d+)/(?P<srv_conn>\d+)/"
            r"\+?(?P<retries>\d+) (?P<srv_queue>\d+)/(?P<backend_queue>\d+) ")
# Captured headers are '|'-separated; HAProxy escapes '{', '|', '}' and '"' inside them as
# #XX, so a block never contains a brace. One block alone is read as the request's: the log
# line cannot tell which side it came from.
HEADERS = r"(?:\{(?P<request_headers>[^}]*)\} )?(?:\{(?P<response_headers>[^}]*)\} )?"
# A request line longer than the log line limit is cut, closing quote included.
REQUEST = r'"(?P<request>[^"]*)"?\s*$'

PATTERN = (PREFIX + CLIENT + ACCEPT_DATE + ROUTE + TIMERS + " " + STATUS + STATE + COUNTERS
           + HEADERS + REQUEST)


def accept_date_expr(column: pl.Expr) -> pl.Expr:
    """25/Feb/2019:16:19:48.143 has no zone: HAProxy writes the local time of its host."""
    naive = column.str.strptime(pl.Datetime("us"), "%d/%b/%Y:%H:%M:%S%.f", strict=False)
    return naive_local_expr(naive)


def milliseconds(column: pl.Expr) -> pl.Expr:
    return as_float(column) / 1000


HAPROXY = RegexFormat(
    name="haproxy",
    pattern=PATTERN,
    targets={
        "client_ip": Target("ip"),
        "accept_date": Target("time", accept_date_expr),
        "Ta": Target("latency", milliseconds),     # Ta: accept to last byte, the whole request
        "status": Target("status", as_int),
        "bytes_read": Target("bytes", as_int),      # bytes sent to the client, headers included
        "request": Target("request"),
    },
    extra_groups=("client_port", "frontend", "backend", "server", "TR", "Tw", "Tc", "Tr",
                  "termination_state", "actconn", "feconn", "beconn", "srv_conn", "retries",
                  "srv_queue", "backend_queue", "request_cookie", "response_cookie",
                  "request_headers", "response_headers"),
)

"""Connection-level timeouts BentoML's uvicorn does not offer: a deadline for the request line
and headers (slowloris), and the keep-alive period from configs/platform.yaml.

uvicorn (under `bentoml serve`) starts no timer when a connection opens, and its keep-alive
timer stops at the first byte of the next request: a client that opens a connection and sends
its headers one byte at a time, or nothing at all, holds the connection (and a file descriptor)
forever. ASGI middleware cannot help, as the app is called only once the headers are complete.

`install` swaps the protocol class uvicorn picks for `http="auto"` (the one BentoML's worker
asks for) for a subclass that arms a timer when a connection opens and after each response;
if no new request has arrived (its headers complete) when it fires, the client gets a 408 in
the product's `{"error": ...}` shape and the connection is closed. Bodies have their own
deadlines (serving/guard.py BodyLimit).

The same protocol closes a connection whose request body is still arriving (a 413 for a body
over its limit, a 429, a 500) the way RFC 9112 section 9.6 asks, a "lingering close": the
answer, then a half-close (FIN), then the rest of the body read and thrown away until the
client closes its side, for at most serving.linger_s seconds and serving.linger_mb MB, then
the close (either at 0: uvicorn's own immediate close). uvicorn alone closes such a connection
at once, with the client's unread bytes in the socket, so the kernel answers with a reset
(RST): over a real network that can destroy the 413 before the client has read it, and a
client still sending sees "connection reset" instead of the product's message.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from uvicorn import config as uvicorn_config
from uvicorn.protocols.http.auto import AutoHTTPProtocol

log = logging.getLogger("kyodo.connections")
PROTOCOL = "serving.connections:HeaderDeadlineProtocol"
_settings = {"header_timeout_s": 10.0, "keep_alive_s": 5, "linger_s": 2.0, "linger_mb": 64}
# bytes asyncio reads from a socket per event-loop turn (its default: 256 KiB). A large body
# arrives in as many turns as it has reads, and each turn waits for the other requests the
# worker is serving: at 256 KiB a 16 MB body took 63 turns and up to 1.5 s to refuse while
# another tenant scored claims on the same worker; at 1 MiB it needs a quarter of them.
READ_SIZE = 1 << 20
# bytes per read while a refused body's rest is read away (lingering close): its client sees
# the answer only once it has sent its whole body, so fewer event-loop turns, sooner
LINGER_READ_SIZE = 4 << 20


def install(header_timeout_s: float, keep_alive_s: int, linger_s: float = 2.0,
            linger_mb: int = 64) -> None:
    """Make uvicorn's `http="auto"` protocol the header-deadline one, in this process (the
    worker imports the service, then builds uvicorn's config)."""
    _settings.update(header_timeout_s=header_timeout_s, keep_alive_s=keep_alive_s,
                     linger_s=linger_s, linger_mb=linger_mb)
    uvicorn_config.HTTP_PROTOCOLS["auto"] = PROTOCOL


def timeout_response(seconds: float) -> bytes:
    """The raw HTTP/1.1 408 sent to a client whose headers did not arrive in time."""
    body = json.dumps({"error": f"request headers not received within {seconds:g} s "
                                "(serving.header_timeout_s); connection closed"}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n"
            + body)


class LingeringClose:
    """The transport as uvicorn sees it: `close()` while the request body is still arriving
    starts the protocol's lingering close instead, and the connection counts as closing from
    then on (uvicorn then arms no keep-alive timer and writes nothing more)."""

    def __init__(self, transport: asyncio.Transport, protocol: HeaderDeadlineProtocol):
        self._transport = transport
        self._protocol = protocol

    def close(self) -> None:
        if not self._protocol.linger():
            self._transport.close()

    def is_closing(self) -> bool:
        return self._protocol.lingering or self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # write, pause_reading, get_extra_info, ...
        return getattr(self._transport, name)


class HeaderDeadlineProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP protocol (h11, or httptools where installed) with a header deadline and
    a lingering close.

    A request has arrived once uvicorn has made its request cycle (`self.cycle`, new for every
    request): the timer remembers the cycle it was armed under and closes the connection only
    if that is still the current one. A request's body is still arriving while its cycle's
    `more_body` is true (both of uvicorn's protocols keep it).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = _settings["keep_alive_s"]
        self._header_deadline: asyncio.TimerHandle | None = None
        self._raw: asyncio.Transport | None = None
        self.lingering = False
        self._linger_left = 0
        self._linger_end: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if hasattr(transport, "max_size"):  # asyncio's socket transport: bytes per read
            transport.max_size = READ_SIZE
        self._raw = transport
        super().connection_made(LingeringClose(transport, self))
        self._arm_header_deadline()

    def linger(self) -> bool:
        """Start a lingering close if the client is still sending its request body (True), or
        say that the connection can be closed at once (False). Already lingering: True (the
        linger's own end closes it)."""
        raw = self._raw
        if self.lingering:
            return True
        if (raw is None or raw.is_closing() or not getattr(self.cycle, "more_body", False)
                or not raw.can_write_eof() or _settings["linger_s"] <= 0
                or _settings["linger_mb"] <= 0):
            return False
        self.lingering = True
        self._linger_left = int(_settings["linger_mb"] * 1_000_000)
        self._cancel_header_deadline()
        raw.write_eof()  # FIN once the answer is flushed: the client reads it, then EOF
        if hasattr(raw, "max_size"):
            raw.max_size = LINGER_READ_SIZE
        raw.resume_reading()
        self._linger_end = self.loop.call_later(_settings["linger_s"], self._stop_lingering)
        return True

    def data_received(self, data: bytes) -> None:
        if not self.lingering:
            super().data_received(data)
            return
        self._linger_left -= len(data)  # the rest of a refused body: read and thrown away
        if self._linger_left <= 0:
            self._stop_lingering()

    def _stop_lingering(self) -> None:
        """The end of a lingering close: the client closed, or linger_s or linger_mb ran out
        (then the kernel resets the connection on the client's next bytes, as before)."""
        if self._linger_end is not None:
            self._linger_end.cancel()
            self._linger_end = None
        if self._raw is not None:
            self._raw.close()

    def on_response_complete(self) -> None:
        done = self.cycle  # super() may already start a pipelined request's new cycle
        super().on_response_complete()
        self._arm_header_deadline(done)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        if self._linger_end is not None:
            self._linger_end.cancel()
            self._linger_end = None
        super().connection_lost(exc)

    def _arm_header_deadline(self, cycle: Any = None) -> None:
        """Close the connection unless a request newer than `cycle` (None: any) arrives."""
        self._cancel_header_deadline()
        if self.transport is None or self.transport.is_closing():
            return
        self._header_deadline = self.loop.call_later(
            _settings["header_timeout_s"], self._headers_expired, cycle)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_expired(self, cycle: Any) -> None:
        self._header_deadline = None
        if self.cycle is not cycle or self.transport.is_closing():
            return  # a request arrived in time (its own body deadline applies now)
        client = "{}:{}".format(*self.client) if self.client else "?"
        log.info("closing %s: no complete request headers within %g s", client,
                 _settings["header_timeout_s"])
        self.transport.write(timeout_response(_settings["header_timeout_s"]))
        self.transport.close()

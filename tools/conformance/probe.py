#!/usr/bin/python3
"""Run a catalog of AMQP 0-9-1 edge-case scenarios against a broker and record
exactly what comes back (frames, reply codes/texts, class/method ids, typed
header fields, socket closes and the bytes seen before them).

    tools/conformance/probe.py --host 127.0.0.1 --port 5673 [--json out.json]
    tools/conformance/probe.py --start-rabbitmq --json rabbit.json   # private RabbitMQ node
    tools/conformance/probe.py ... --only exchanges,queue.redeclare  # areas or name substrings
    tools/conformance/probe.py ... --list                            # list scenarios
    tools/conformance/probe.py ... --markdown out.md                 # tables for the docs
    tools/conformance/probe.py --diff a.json b.json                  # compare two runs

Every scenario uses its own connection(s) (user guest/guest, vhost "/"), and
every read has a timeout, so nothing hangs.  Transcripts contain the frames we
sent ("->") and received ("<-"), "socket closed" (with any unparsed bytes
received before the close) and "(quiet Ns, socket open)" when nothing more came.

The broker must be configured with ``max_message_size = 1000`` (or pass
--max-message-size) for the max-message-size scenario to mean anything;
--start-rabbitmq does this.  Resource names are fixed ("probe-..."), and every
scenario deletes the ones it uses first, so runs are repeatable and diffable;
variable parts (server-generated names, timestamps) are normalized in the text
output (raw values stay in the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import struct
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import amqp_wire as W  # noqa: E402

CLIENT_PROPS = {
    "product": "warren-probe",
    "capabilities": {
        "authentication_failure_close": True,
        "basic.nack": True,
        "connection.blocked": True,
        "consumer_cancel_notify": True,
        "exchange_exchange_bindings": True,
        "publisher_confirms": True,
        "per_consumer_qos": True,
    },
}


class Closed(Exception):
    pass


class SetupError(Exception):
    pass


class Conn:
    """One raw AMQP connection whose traffic is appended to a shared transcript."""

    def __init__(self, sc: "Scenario", label: str = ""):
        self.sc = sc
        self.label = label
        self.buf = b""
        self.closed = False
        self.recording = True
        self.frame_max = 131072
        self.last_send = time.monotonic()
        self.sock = socket.create_connection((sc.host, sc.port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- transcript --------------------------------------------------------
    def _log(self, ev: dict, force: bool = False):
        if self.recording or force:
            if self.label:
                ev["conn"] = self.label
            self.sc.events.append(ev)

    def note(self, text: str):
        self._log({"dir": "--", "kind": "note", "text": text}, force=True)

    # -- sending -----------------------------------------------------------
    def send_raw(self, data: bytes, what: str | None = None):
        self._log({"dir": "->", "kind": "raw", "text": what or f"raw {data[:64].hex()}"
                   + ("..." if len(data) > 64 else "") + f" ({len(data)} bytes)"})
        self._sendall(data)

    def send(self, ch: int, name: str, **fields):
        payload = W.method_payload(name, **fields)
        ev = W.decode_method(payload)
        ev.update({"dir": "->", "channel": ch})
        ev.get("fields", {}).pop("ticket", None)
        self._log(ev)
        self._sendall(W.frame(W.FRAME_METHOD, ch, payload))

    def _sendall(self, data: bytes):
        self.last_send = time.monotonic()
        try:
            self.sock.sendall(data)
        except OSError as e:
            self._log({"dir": "--", "kind": "send-failed", "error": type(e).__name__})

    def publish(self, ch: int, exchange: str, routing_key: str, body: bytes | str = b"",
                props: dict | None = None, mandatory=False, immediate=False, frame_size=None):
        body = body.encode() if isinstance(body, str) else body
        self._log({"dir": "->", "kind": "publish", "channel": ch,
                   "text": f"basic.publish exchange={exchange!r} routing_key={routing_key!r}"
                           f" mandatory={mandatory} immediate={immediate} props={props or {}}"
                           f" body={len(body)} bytes"})
        data = W.method_frame(ch, "basic.publish", exchange=exchange, routing_key=routing_key,
                              mandatory=mandatory, immediate=immediate)
        data += W.header_frame(ch, len(body), props)
        step = (frame_size or self.frame_max) - 8
        for i in range(0, len(body), step):
            data += W.frame(W.FRAME_BODY, ch, body[i:i + step])
        self._sendall(data)

    # -- receiving ---------------------------------------------------------
    def recv(self, timeout: float):
        """Next frame as an event dict, None on timeout; raises Closed when the peer closed."""
        if self.closed:
            raise Closed()
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 7:
                ftype, ch, size = struct.unpack(">BHI", self.buf[:7])
                if ftype in (1, 2, 3, 8) and len(self.buf) >= size + 8:
                    payload, end = self.buf[7:7 + size], self.buf[7 + size]
                    self.buf = self.buf[size + 8:]
                    ev = W.decode_frame(ftype, ch, payload)
                    if end != W.FRAME_END:
                        ev["bad_frame_end"] = end
                    ev["dir"] = "<-"
                    self._log(ev)
                    return ev
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except ConnectionResetError:
                data = None
            if not data:
                self.closed = True
                ev = {"dir": "<-", "kind": "socket-closed",
                      "after_s": round(time.monotonic() - self.last_send, 1)}
                if data is None:
                    ev["reset"] = True
                if self.buf:
                    ev["unparsed_bytes"] = self.buf.hex()
                    ev["unparsed_text"] = self.buf.decode("latin-1")
                self._log(ev, force=True)
                raise Closed()
            self.buf += data

    def expect(self, ch: int, name: str, timeout: float = 3.0) -> dict:
        """Wait for method ``name`` on ``ch`` (other frames are recorded); SetupError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            ev = self.recv(max(0.0, deadline - time.monotonic()))
            if ev is None:
                self._log({"dir": "--", "kind": "timeout", "waiting_for": name}, force=True)
                raise SetupError(f"timeout waiting for {name}")
            if ev["kind"] == "method" and ev["channel"] == ch:
                if ev["method"] != name:
                    if not self.recording:
                        self._log(ev, force=True)
                    self._auto_reply(ev)
                    raise SetupError(f"expected {name}, got {ev['method']}")
                return ev

    def rpc(self, ch: int, name: str, reply: str | None = None, **fields) -> dict:
        self.send(ch, name, **fields)
        return self.expect(ch, reply or name + "-ok")

    def _auto_reply(self, ev: dict):
        if ev.get("kind") != "method":
            return
        if ev["method"] == "connection.close":
            self.send(0, "connection.close-ok")
        elif ev["method"] == "channel.close":
            self.send(ev["channel"], "channel.close-ok")

    def drain(self, quiet: float = 0.5, limit: float = 6.0, reply_close: bool = True) -> list:
        """Record everything until the socket closes or nothing arrives for ``quiet`` seconds.
        Answers connection.close / channel.close with close-ok (recorded) unless reply_close=False."""
        got = []
        deadline = time.monotonic() + limit
        try:
            while time.monotonic() < deadline:
                ev = self.recv(quiet)
                if ev is None:
                    self._log({"dir": "--", "kind": "quiet", "seconds": quiet,
                               "socket": "open"}, force=True)
                    break
                got.append(ev)
                if reply_close:
                    self._auto_reply(ev)
            else:
                self._log({"dir": "--", "kind": "limit", "seconds": limit, "socket": "open"}, force=True)
        except Closed:
            pass
        return got

    # -- handshake ---------------------------------------------------------
    def handshake(self, vhost="/", user="guest", password="guest", channel_max=None,
                  frame_max=None, heartbeat=0, client_props=None, open_channel: int | None = 1):
        self.send_raw(W.PROTOCOL_HEADER, "protocol header AMQP 0-9-1")
        self.expect(0, "connection.start")
        self.send(0, "connection.start-ok", client_properties=client_props or CLIENT_PROPS,
                  mechanism="PLAIN", response=f"\0{user}\0{password}", locale="en_US")
        tune = self.expect(0, "connection.tune")["fields"]
        cm = tune["channel_max"] if channel_max is None else channel_max
        fm = tune["frame_max"] if frame_max is None else frame_max
        self.frame_max = fm or 131072
        self.send(0, "connection.tune-ok", channel_max=cm, frame_max=fm, heartbeat=heartbeat)
        self.rpc(0, "connection.open", virtual_host=vhost)
        if open_channel:
            self.rpc(open_channel, "channel.open")
        return tune

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Scenario:
    def __init__(self, area, name, fn, doc, slow=False):
        self.area, self.name, self.fn, self.doc, self.slow = area, name, fn, doc, slow
        self.events: list = []
        self.conns: list[Conn] = []
        self.host = self.port = None
        self.opts = None

    @property
    def id(self):
        return f"{self.area}.{self.name}"

    def conn(self, label="", handshake=True, record_handshake=False, **kw) -> Conn:
        """A new connection; by default handshaken and with channel 1 open, not recorded."""
        c = Conn(self, label)
        self.conns.append(c)
        if handshake:
            c.recording = record_handshake
            c.handshake(**kw)
            c.recording = True
        return c

    def clean(self, queues=(), exchanges=()):
        """Delete leftovers from earlier runs (own connection, not recorded)."""
        c = Conn(self, "cleanup")
        c.recording = False
        try:
            c.handshake(open_channel=None)
            ch = 1
            for q in queues:
                c.rpc(ch, "channel.open")
                c.send(ch, "queue.delete", queue=q)
                c.recv(2)
                ch += 1
            for x in exchanges:
                c.rpc(ch, "channel.open")
                c.send(ch, "exchange.delete", exchange=x)
                c.recv(2)
                ch += 1
            c.send(0, "connection.close", reply_code=200, reply_text="bye")
            c.recv(2)
        except (Closed, SetupError, OSError):
            pass
        finally:
            c.close()
            # cleanup problems are not part of the transcript
            self.events = [e for e in self.events if e.get("conn") != "cleanup"]

    def run(self, host, port, opts):
        self.host, self.port, self.opts = host, port, opts
        self.events = []
        t0 = time.monotonic()
        try:
            self.fn(self)
        except SetupError as e:
            self.events.append({"dir": "--", "kind": "setup-failed", "error": str(e)})
        except Closed:
            pass
        except Exception as e:  # noqa: BLE001
            self.events.append({"dir": "--", "kind": "probe-error",
                                "error": f"{type(e).__name__}: {e}",
                                "trace": traceback.format_exc(limit=3)})
        finally:
            for c in self.conns:
                c.close()
            self.conns = []
        self.elapsed = time.monotonic() - t0
        return self.events


SCENARIOS: list[Scenario] = []


def scenario(area: str, name: str, slow: bool = False):
    """Register a scenario.  slow=True: it waits long (server timeouts) and uses no named
    resources, so it is run concurrently with the others."""
    def deco(fn):
        SCENARIOS.append(Scenario(area, name, fn, (fn.__doc__ or "").strip(), slow))
        return fn
    return deco


# ======================================================================
# rendering & normalization

NORMALIZE = [
    (re.compile(r"amq\.gen-[A-Za-z0-9_\-]{22}"), "amq.gen-<22>"),
    (re.compile(r"amq\.ctag-[A-Za-z0-9_\-]{22}"), "amq.ctag-<22>"),
    (re.compile(r"amq\.rabbitmq\.reply-to\.[A-Za-z0-9+/=._\-]+"), "amq.rabbitmq.reply-to.<token>"),
    (re.compile(r"(time=T:)\d+"), r"\1<now>"),
    (re.compile(r"('time': \('T', )\d+"), r"\1<now>"),
    (re.compile(r'(cluster_name=S)"[^"]*"'), r'\1"<node>"'),
    (re.compile(r"(timestamp_in_ms=l:)\d+"), r"\1<now>"),
    (re.compile(r"(x-opt-[a-z-]*time[a-z-]*=\w:)\d+"), r"\1<now>"),
]


def normalize(s: str) -> str:
    for rx, rep in NORMALIZE:
        s = rx.sub(rep, s)
    return s


def render(ev: dict) -> str:
    d = ev.get("dir", "")
    lab = f"[{ev['conn']}] " if ev.get("conn") else ""
    k = ev["kind"]
    if k in ("raw", "publish"):
        return f"{lab}-> {ev['text']}"
    if k == "note":
        return f"{lab}-- {ev['text']}"
    if k == "socket-closed":
        s = f"{lab}<- socket closed" + (" (reset)" if ev.get("reset") else "")
        if ev.get("after_s", 0) >= 1.5:
            s += f" ~{ev['after_s']:.0f}s after our last frame"
        if ev.get("unparsed_bytes"):
            s += f"; bytes before close: {ev['unparsed_text']!r} (hex {ev['unparsed_bytes']})"
        return s
    if k == "quiet":
        return f"{lab}-- (quiet {ev['seconds']}s, socket open)"
    if k == "limit":
        return f"{lab}-- (stopped listening after {ev['seconds']}s, socket open)"
    if k in ("timeout", "setup-failed", "probe-error", "send-failed"):
        return f"{lab}!! {k}: " + ", ".join(f"{a}={b}" for a, b in ev.items()
                                            if a not in ("dir", "kind", "conn", "trace"))
    s = f"{lab}{d} " + W.fmt_event(ev)
    if ev.get("bad_frame_end") is not None:
        s += f" BAD-FRAME-END=0x{ev['bad_frame_end']:02x}"
    return s


def transcript(events, norm=True, received_only=False) -> list[str]:
    out = []
    for ev in events:
        if received_only and ev.get("dir") == "->":
            continue
        line = render(ev)
        out.append(normalize(line) if norm else line)
    return out


# ======================================================================
# The catalog.  Conventions: s.conn() gives a handshaken connection with channel 1
# open; everything after that is recorded; c.drain() records the outcome.

def _close_pair(c: Conn):
    """Politely close (used where the interesting part is over)."""
    if not c.closed:
        c.send(0, "connection.close", reply_code=200, reply_text="bye")
        c.drain(quiet=0.5)


# ---------------------------------------------------------------- handshake
# RabbitMQ closes silently 3 s after most handshake errors and after 10 s
# (handshake_timeout) when the client stalls, so these wait up to HS_QUIET s.
HS_QUIET = 13.0

def _header_scenario(name, data, doc, quiet=2.0):
    def _(s):
        c = s.conn(handshake=False)
        c.send_raw(data, f"{doc}: {data!r}")
        c.drain(quiet=quiet, limit=quiet + 2)
    _.__doc__ = doc
    scenario("handshake", name, slow=quiet > 2)(_)


_header_scenario("header-0-9-2", b"AMQP\x00\x00\x09\x02", "protocol header AMQP 0.0.9.2")
_header_scenario("header-0-10", b"AMQP\x01\x01\x00\x0a", "protocol header AMQP 1.1.0.10 (0-10)")
_header_scenario("header-0-8", b"AMQP\x01\x01\x08\x00", "protocol header AMQP 1.1.8.0 (0-8)", quiet=13)
_header_scenario("header-1-0", b"AMQP\x00\x01\x00\x00", "protocol header AMQP 1.0 (needs plugin)")
_header_scenario("header-0-9-1-classic", b"AMQP\x01\x01\x00\x09", "protocol header AMQP 1.1.0.9 (old 0-9)", quiet=13)
_header_scenario("header-http", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "an HTTP request")
_header_scenario("header-garbage", b"\x01\x02\x03\x04\x05\x06\x07\x08", "8 garbage bytes")
_header_scenario("header-short", b"AMQP", "only 4 bytes of header (then silence)", quiet=13)
_header_scenario("header-correct-then-silence", W.PROTOCOL_HEADER,
                 "correct header, then no start-ok (handshake timeout)", quiet=13)


@scenario("handshake", "connection-start", slow=True)
def _(s):
    """the connection.start sent after a correct header"""
    c = s.conn(handshake=False)
    c.send_raw(W.PROTOCOL_HEADER, "protocol header AMQP 0-9-1")
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


def _start_ok(s, mechanism="PLAIN", response="\0guest\0guest", props=None, quiet=2.0):
    c = s.conn(handshake=False)
    c.recording = False
    c.send_raw(W.PROTOCOL_HEADER)
    c.expect(0, "connection.start")
    c.recording = True
    c.send(0, "connection.start-ok", client_properties=CLIENT_PROPS if props is None else props,
           mechanism=mechanism, response=response, locale="en_US")
    return c


@scenario("handshake", "bad-password-with-auth-failure-close", slow=True)
def _(s):
    """PLAIN guest/wrong with capabilities.authentication_failure_close=true"""
    c = _start_ok(s, response="\0guest\0wrong")
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


@scenario("handshake", "bad-password-without-capability", slow=True)
def _(s):
    """PLAIN guest/wrong, client_properties without capabilities"""
    c = _start_ok(s, response="\0guest\0wrong", props={"product": "warren-probe"})
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


@scenario("handshake", "unknown-user", slow=True)
def _(s):
    """PLAIN nobody/x with authentication_failure_close"""
    c = _start_ok(s, response="\0nobody\0x")
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


@scenario("handshake", "unknown-mechanism", slow=True)
def _(s):
    """start-ok mechanism FOO"""
    c = _start_ok(s, mechanism="FOO")
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


@scenario("handshake", "plain-malformed-response", slow=True)
def _(s):
    """PLAIN response without NUL separators"""
    c = _start_ok(s, response="guestguest")
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


@scenario("handshake", "amqplain-login", slow=True)
def _(s):
    """AMQPLAIN with LOGIN/PASSWORD table (no length prefix) -> tune?"""
    resp = W.enc_table({"LOGIN": "guest", "PASSWORD": "guest"})[4:]
    c = _start_ok(s, mechanism="AMQPLAIN", response=resp)
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


@scenario("handshake", "amqplain-bad-password", slow=True)
def _(s):
    """AMQPLAIN with a wrong password"""
    resp = W.enc_table({"LOGIN": "guest", "PASSWORD": "nope"})[4:]
    c = _start_ok(s, mechanism="AMQPLAIN", response=resp)
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


@scenario("handshake", "tune", slow=True)
def _(s):
    """connection.tune contents after a good start-ok"""
    c = _start_ok(s)
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


def _tune_ok(s, channel_max=2047, frame_max=131072, heartbeat=0, open_vhost="/"):
    c = _start_ok(s)
    c.recording = False
    c.expect(0, "connection.tune")
    c.recording = True
    c.send(0, "connection.tune-ok", channel_max=channel_max, frame_max=frame_max, heartbeat=heartbeat)
    if open_vhost is not None:
        c.send(0, "connection.open", virtual_host=open_vhost)
    return c


for _n, _kw, _d in [
    ("tune-ok-frame-max-1000", dict(frame_max=1000), "tune-ok frame_max=1000 (< 4096), then open"),
    ("tune-ok-frame-max-4095", dict(frame_max=4095), "tune-ok frame_max=4095, then open"),
    ("tune-ok-frame-max-4096", dict(frame_max=4096), "tune-ok frame_max=4096, then open"),
    ("tune-ok-frame-max-too-big", dict(frame_max=131073), "tune-ok frame_max=131073 (> server's), then open"),
    ("tune-ok-frame-max-0", dict(frame_max=0), "tune-ok frame_max=0 (no limit), then open"),
    ("tune-ok-channel-max-0", dict(channel_max=0), "tune-ok channel_max=0, then open"),
    ("tune-ok-channel-max-3000", dict(channel_max=3000), "tune-ok channel_max=3000 (> 2047), then open"),
    ("tune-ok-channel-max-65535", dict(channel_max=65535), "tune-ok channel_max=65535, then open"),
    ("tune-ok-heartbeat-0", dict(heartbeat=0), "tune-ok heartbeat=0, then open"),
    ("tune-ok-heartbeat-too-big", dict(heartbeat=1000), "tune-ok heartbeat=1000 (> server's 60), then open"),
    ("open-unknown-vhost", dict(open_vhost="nope"), "connection.open virtual_host=nope"),
    ("open-empty-vhost", dict(open_vhost=""), "connection.open virtual_host='' "),
]:
    def _mk(kw, d):
        def _(s):
            c = _tune_ok(s, **kw)
            c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)
        _.__doc__ = d
        return _
    scenario("handshake", _n, slow=True)(_mk(_kw, _d))


@scenario("handshake", "tune-ok-channel-max-2-then-3-channels")
def _(s):
    """tune-ok channel_max=2; open channels 1, 2, then 3 (number limit)"""
    c = s.conn(channel_max=2, open_channel=None)
    for ch in (1, 2):
        c.send(ch, "channel.open")
    c.drain(quiet=0.5)
    c.send(3, "channel.open")
    c.drain(quiet=0.5)


@scenario("handshake", "heartbeat-1s-silent-client", slow=True)
def _(s):
    """tune-ok heartbeat=1, client then sends nothing for up to 6s"""
    c = _tune_ok(s, heartbeat=1)
    c.drain(quiet=4.0, limit=6.0)


@scenario("handshake", "channel-open-before-start-ok", slow=True)
def _(s):
    """channel.open (ch 1) sent instead of connection.start-ok"""
    c = s.conn(handshake=False)
    c.recording = False
    c.send_raw(W.PROTOCOL_HEADER)
    c.expect(0, "connection.start")
    c.recording = True
    c.send(1, "channel.open")
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


@scenario("handshake", "method-instead-of-start-ok-ch0", slow=True)
def _(s):
    """connection.open (ch 0) sent instead of connection.start-ok"""
    c = s.conn(handshake=False)
    c.recording = False
    c.send_raw(W.PROTOCOL_HEADER)
    c.expect(0, "connection.start")
    c.recording = True
    c.send(0, "connection.open", virtual_host="/")
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


@scenario("handshake", "channel-open-before-connection-open", slow=True)
def _(s):
    """after tune-ok, channel.open on ch 1 before connection.open"""
    c = _tune_ok(s, open_vhost=None)
    c.send(1, "channel.open")
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


@scenario("handshake", "queue-declare-before-connection-open-ch0", slow=True)
def _(s):
    """after tune-ok, queue.declare on ch 0 before connection.open"""
    c = _tune_ok(s, open_vhost=None)
    c.send(0, "queue.declare", queue="probe-q")
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


@scenario("handshake", "heartbeat-before-tune-ok", slow=True)
def _(s):
    """a heartbeat frame sent between start-ok and tune-ok"""
    c = _start_ok(s)
    c.recording = False
    c.expect(0, "connection.tune")
    c.recording = True
    c.send_raw(W.frame(W.FRAME_HEARTBEAT, 0, b""), "heartbeat ch0")
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


@scenario("handshake", "frame-on-channel-1-before-open", slow=True)
def _(s):
    """after connection.open-ok, basic.qos on channel 1 that was never opened"""
    c = s.conn(open_channel=None)
    c.send(1, "basic.qos", prefetch_count=1)
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


@scenario("handshake", "second-connection-open", slow=True)
def _(s):
    """connection.open sent again after open-ok"""
    c = s.conn(open_channel=None)
    c.send(0, "connection.open", virtual_host="/")
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


@scenario("handshake", "second-start-ok", slow=True)
def _(s):
    """connection.start-ok sent again after open-ok"""
    c = s.conn(open_channel=None)
    c.send(0, "connection.start-ok", client_properties={}, mechanism="PLAIN",
           response="\0guest\0guest", locale="en_US")
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


@scenario("handshake", "client-close-during-handshake", slow=True)
def _(s):
    """connection.close sent instead of start-ok"""
    c = s.conn(handshake=False)
    c.recording = False
    c.send_raw(W.PROTOCOL_HEADER)
    c.expect(0, "connection.start")
    c.recording = True
    c.send(0, "connection.close", reply_code=200, reply_text="bye", class_id=0, method_id=0)
    c.drain(quiet=HS_QUIET, limit=HS_QUIET + 3)


# ---------------------------------------------------------------- frames
CLOSE_QUIET = 35.0  # RabbitMQ's CLOSING_TIMEOUT is 30 s


@scenario("frames", "frame-larger-than-frame-max", slow=True)
def _(s):
    """frame_max negotiated 4096; publish with a 5000-byte body frame (then wait for the socket)"""
    c = s.conn(frame_max=4096)
    c.publish(1, "", "probe-none", b"x" * 5000, frame_size=6000)
    c.drain(quiet=CLOSE_QUIET, limit=CLOSE_QUIET + 5)


@scenario("frames", "frame-larger-than-frame-max-heartbeat-3", slow=True)
def _(s):
    """as above with heartbeat=3 negotiated (client sends no heartbeats)"""
    c = s.conn(frame_max=4096, heartbeat=3)
    c.publish(1, "", "probe-none", b"x" * 5000, frame_size=6000)
    c.drain(quiet=CLOSE_QUIET, limit=CLOSE_QUIET + 5)


@scenario("frames", "frame-larger-than-frame-max-small-payload")
def _(s):
    """frame_max 4096; a method frame of 4097 bytes total: header says 4089 payload bytes"""
    c = s.conn(frame_max=4096)
    payload = W.method_payload("basic.qos", prefetch_count=1)
    c.send_raw(W.frame(1, 1, payload + b"\0" * (4089 - len(payload))), "method frame, payload 4089 bytes")
    c.drain(quiet=1.0)


def _padded_header_publish(s, payload_size):
    c = s.conn(frame_max=4096)
    q = _new_q(c, s)
    base = len(W.header_payload(3, {"headers": {"pad": ""}}))
    props = {"headers": {"pad": "p" * (payload_size - base)}}
    hdr = W.header_payload(3, props)
    assert len(hdr) == payload_size
    c.send_raw(W.method_frame(1, "basic.publish", exchange="", routing_key=q)
               + W.frame(2, 1, hdr) + W.frame(3, 1, b"abc"),
               f"publish + content header with {payload_size}-byte payload ({payload_size + 8}-byte frame) + body")
    c.send(1, "basic.get", queue=q, no_ack=True)
    c.drain(quiet=1.0)
    return c


@scenario("frames", "frame-max-plus-8-accepted")
def _(s):
    """frame_max 4096: content header frame of 4104 bytes (payload 4096 = frame_max) -> accepted?"""
    _padded_header_publish(s, 4096)


@scenario("frames", "frame-max-plus-9-rejected")
def _(s):
    """frame_max 4096: content header frame of 4105 bytes (payload 4097) -> frame_too_large?"""
    _padded_header_publish(s, 4097)


@scenario("frames", "frame-larger-than-default-frame-max", slow=True)
def _(s):
    """frame_max 131072; a method frame with a 131073-byte payload (queue.declare + junk args)"""
    c = s.conn()
    payload = W.method_payload("queue.declare", queue="x")
    payload += b"\0" * (131073 - len(payload))
    c.send_raw(W.frame(1, 1, payload), "method frame, payload 131073 bytes")
    c.drain(quiet=CLOSE_QUIET, limit=CLOSE_QUIET + 5)


@scenario("frames", "frame-exactly-frame-max")
def _(s):
    """frame_max 4096; publish whose content header frame is exactly 4096 bytes (padded headers)"""
    c = s.conn(frame_max=4096)
    base = len(W.header_payload(3, {"headers": {"pad": ""}}))
    props = {"headers": {"pad": "p" * (4088 - base)}}
    assert len(W.header_frame(1, 3, props)) == 4096
    c.send_raw(W.method_frame(1, "basic.publish", exchange="", routing_key="nowhere")
               + W.header_frame(1, 3, props) + W.frame(3, 1, b"abc"),
               "publish + header frame of exactly 4096 bytes + body")
    c.send(1, "basic.qos", prefetch_count=1)
    c.drain(quiet=1.0)


@scenario("frames", "bad-frame-end", slow=True)
def _(s):
    """a basic.qos frame whose end octet is 0x00 (then wait for the socket)"""
    c = s.conn()
    c.send_raw(W.frame(1, 1, W.method_payload("basic.qos", prefetch_count=1), end=0), "basic.qos with frame-end 0x00")
    c.drain(quiet=CLOSE_QUIET, limit=CLOSE_QUIET + 5)


@scenario("frames", "unknown-frame-type-9")
def _(s):
    """frame type 9 on channel 0"""
    c = s.conn()
    c.send_raw(W.frame(9, 0, b"abc"), "frame type 9 ch0 payload 'abc'")
    c.drain(quiet=1.0)


@scenario("frames", "unknown-frame-type-9-ch1")
def _(s):
    """frame type 9 on channel 1"""
    c = s.conn()
    c.send_raw(W.frame(9, 1, b"abc"), "frame type 9 ch1 payload 'abc'")
    c.drain(quiet=1.0)


@scenario("frames", "frame-type-4-oob")
def _(s):
    """frame type 4 (old oob-method) on channel 1"""
    c = s.conn()
    c.send_raw(W.frame(4, 1, b"abc"), "frame type 4 ch1")
    c.drain(quiet=1.0)


@scenario("frames", "truncated-method-args")
def _(s):
    """queue.declare whose arguments stop inside the queue name"""
    c = s.conn()
    p = W.method_payload("queue.declare", queue="probe-trunc")
    c.send_raw(W.frame(1, 1, p[:10]), "queue.declare payload truncated to 10 bytes")
    c.drain(quiet=1.0)


@scenario("frames", "truncated-method-no-args")
def _(s):
    """method frame with only 2 payload bytes (class id, no method id)"""
    c = s.conn()
    c.send_raw(W.frame(1, 1, b"\x00\x32"), "method frame payload 0032")
    c.drain(quiet=1.0)


@scenario("frames", "extra-bytes-after-args")
def _(s):
    """basic.qos followed by 4 junk bytes inside the same method frame"""
    c = s.conn()
    p = W.method_payload("basic.qos", prefetch_count=1) + b"\xde\xad\xbe\xef"
    c.send_raw(W.frame(1, 1, p), "basic.qos + 4 trailing bytes")
    c.drain(quiet=1.0)


@scenario("frames", "extra-bytes-after-args-declare")
def _(s):
    """queue.declare (exclusive, server-named) followed by 3 junk bytes"""
    c = s.conn()
    p = W.method_payload("queue.declare", queue="", exclusive=True) + b"\x01\x02\x03"
    c.send_raw(W.frame(1, 1, p), "queue.declare + 3 trailing bytes")
    c.drain(quiet=1.0)


@scenario("frames", "unknown-method-id")
def _(s):
    """class 60 (basic) method 999 on channel 1"""
    c = s.conn()
    c.send_raw(W.frame(1, 1, struct.pack(">HH", 60, 999)), "method 60/999 ch1")
    c.drain(quiet=1.0)


@scenario("frames", "unknown-class-id")
def _(s):
    """class 99 method 10 on channel 1"""
    c = s.conn()
    c.send_raw(W.frame(1, 1, struct.pack(">HH", 99, 10)), "method 99/10 ch1")
    c.drain(quiet=1.0)


@scenario("frames", "unknown-method-ch0")
def _(s):
    """class 10 (connection) method 99 on channel 0"""
    c = s.conn()
    c.send_raw(W.frame(1, 0, struct.pack(">HH", 10, 99)), "method 10/99 ch0")
    c.drain(quiet=1.0)


@scenario("frames", "access-request")
def _(s):
    """access.request (class 30, removed in 0-9-1) on channel 1"""
    c = s.conn()
    c.send(1, "access.request", realm="/data", active=True, read=True)
    c.drain(quiet=1.0)


@scenario("frames", "client-sends-server-method")
def _(s):
    """basic.deliver sent by the client on channel 1"""
    c = s.conn()
    c.send(1, "basic.deliver", consumer_tag="x", delivery_tag=1, exchange="", routing_key="q")
    c.send(1, "basic.qos", prefetch_count=1)
    c.drain(quiet=1.0)


@scenario("frames", "header-without-publish")
def _(s):
    """a content header on channel 1 with no preceding basic.publish"""
    c = s.conn()
    c.send_raw(W.header_frame(1, 3), "content header body_size=3")
    c.drain(quiet=1.0)


@scenario("frames", "body-without-publish")
def _(s):
    """a content body frame on channel 1 with no preceding publish/header"""
    c = s.conn()
    c.send_raw(W.frame(3, 1, b"abc"), "content body 'abc'")
    c.drain(quiet=1.0)


@scenario("frames", "body-larger-than-declared")
def _(s):
    """publish to a queue: header body_size=5, body frame of 10 bytes; then basic.get it"""
    c = s.conn()
    q = _new_q(c, s)
    c.send_raw(W.method_frame(1, "basic.publish", exchange="", routing_key=q)
               + W.header_frame(1, 5) + W.frame(3, 1, b"0123456789"),
               "basic.publish + header(body_size=5) + body(10 bytes)")
    c.send(1, "basic.get", queue=q, no_ack=True)
    c.drain(quiet=1.0)


@scenario("frames", "body-split-exceeds-declared")
def _(s):
    """publish to a queue: header body_size=5, body frames of 3 + 3 bytes; then basic.get it"""
    c = s.conn()
    q = _new_q(c, s)
    c.send_raw(W.method_frame(1, "basic.publish", exchange="", routing_key=q)
               + W.header_frame(1, 5) + W.frame(3, 1, b"012") + W.frame(3, 1, b"345"),
               "basic.publish + header(body_size=5) + body(3) + body(3)")
    c.send(1, "basic.get", queue=q, no_ack=True)
    c.drain(quiet=1.0)


@scenario("frames", "method-when-body-expected")
def _(s):
    """publish, header body_size=10, then basic.qos instead of a body"""
    c = s.conn()
    c.send_raw(W.method_frame(1, "basic.publish", exchange="", routing_key="probe-none")
               + W.header_frame(1, 10), "basic.publish + header(body_size=10)")
    c.send(1, "basic.qos", prefetch_count=1)
    c.drain(quiet=1.0)


@scenario("frames", "method-when-header-expected")
def _(s):
    """publish, then basic.qos instead of a content header"""
    c = s.conn()
    c.send_raw(W.method_frame(1, "basic.publish", exchange="", routing_key="probe-none"), "basic.publish")
    c.send(1, "basic.qos", prefetch_count=1)
    c.drain(quiet=1.0)


@scenario("frames", "body-when-header-expected")
def _(s):
    """publish, then a body frame instead of a content header"""
    c = s.conn()
    c.send_raw(W.method_frame(1, "basic.publish", exchange="", routing_key="probe-none")
               + W.frame(3, 1, b"abc"), "basic.publish + body('abc')")
    c.drain(quiet=1.0)


@scenario("frames", "heartbeat-on-channel-1")
def _(s):
    """a heartbeat frame on channel 1"""
    c = s.conn()
    c.send_raw(W.frame(8, 1, b""), "heartbeat on ch1")
    c.drain(quiet=1.0)


@scenario("frames", "heartbeat-with-payload")
def _(s):
    """a heartbeat frame on channel 0 with a 3-byte payload"""
    c = s.conn()
    c.send_raw(W.frame(8, 0, b"abc"), "heartbeat ch0 with payload 'abc'")
    c.drain(quiet=1.0)


@scenario("frames", "header-class-not-basic")
def _(s):
    """publish, then a content header with class id 50 (queue)"""
    c = s.conn()
    c.send_raw(W.method_frame(1, "basic.publish", exchange="", routing_key="probe-none")
               + W.header_frame(1, 3, class_id=50), "basic.publish + header(class=50, body_size=3)")
    c.drain(quiet=1.0)


@scenario("frames", "header-weight-nonzero")
def _(s):
    """publish, then a content header with weight=7 (should be 0), body 'abc', then basic.qos"""
    c = s.conn()
    h = bytearray(W.header_payload(3))
    h[2:4] = b"\x00\x07"
    c.send_raw(W.method_frame(1, "basic.publish", exchange="", routing_key="probe-none")
               + W.frame(2, 1, bytes(h)) + W.frame(3, 1, b"abc"), "publish + header(weight=7) + body")
    c.send(1, "basic.qos", prefetch_count=1)
    c.drain(quiet=1.0)


@scenario("frames", "header-on-channel-0")
def _(s):
    """a content header on channel 0"""
    c = s.conn()
    c.send_raw(W.header_frame(0, 3), "content header ch0")
    c.drain(quiet=1.0)


@scenario("frames", "zero-size-body-then-body-frame")
def _(s):
    """publish, header body_size=0, then a 5-byte body frame"""
    c = s.conn()
    c.send_raw(W.method_frame(1, "basic.publish", exchange="", routing_key="probe-none")
               + W.header_frame(1, 0) + W.frame(3, 1, b"hello"), "publish + header(size 0) + body(5)")
    c.drain(quiet=1.0)


@scenario("frames", "zero-size-body-then-empty-body-frame")
def _(s):
    """publish, header body_size=0, then an empty body frame"""
    c = s.conn()
    c.send_raw(W.method_frame(1, "basic.publish", exchange="", routing_key="probe-none")
               + W.header_frame(1, 0) + W.frame(3, 1, b""), "publish + header(size 0) + body(0)")
    c.drain(quiet=1.0)


@scenario("frames", "empty-body-frames-in-content")
def _(s):
    """publish to a queue, header body_size=3, body frames '' 'abc'; then get it"""
    c = s.conn()
    c.rpc(1, "queue.declare", queue="", exclusive=True)
    q = s.events[-1]["fields"]["queue"]
    c.send_raw(W.method_frame(1, "basic.publish", exchange="", routing_key=q)
               + W.header_frame(1, 3) + W.frame(3, 1, b"") + W.frame(3, 1, b"abc"),
               "publish + header(size 3) + body(0) + body('abc')")
    c.send(1, "basic.get", queue=q, no_ack=True)
    c.drain(quiet=1.0)


@scenario("frames", "client-connection-close", slow=True)
def _(s):
    """client connection.close 200 -> close-ok; who closes the socket, when?"""
    c = s.conn()
    c.send(0, "connection.close", reply_code=200, reply_text="Goodbye", class_id=0, method_id=0)
    c.drain(quiet=CLOSE_QUIET, limit=CLOSE_QUIET + 5, reply_close=False)


@scenario("frames", "client-connection-close-heartbeat-3", slow=True)
def _(s):
    """heartbeat=3 negotiated; client connection.close -> close-ok; when does the socket close?"""
    c = s.conn(heartbeat=3)
    c.send(0, "connection.close", reply_code=200, reply_text="Goodbye", class_id=0, method_id=0)
    c.drain(quiet=CLOSE_QUIET, limit=CLOSE_QUIET + 5, reply_close=False)


@scenario("frames", "client-connection-close-then-method")
def _(s):
    """client connection.close, then immediately basic.qos on ch1 (before close-ok)"""
    c = s.conn()
    c.send(0, "connection.close", reply_code=200, reply_text="Goodbye", class_id=0, method_id=0)
    c.send(1, "basic.qos", prefetch_count=1)
    c.drain(quiet=2.0, reply_close=False)


@scenario("frames", "server-close-ignored-frames")
def _(s):
    """after the server sends connection.close, client sends basic.qos (not close-ok)"""
    c = s.conn()
    c.send_raw(W.frame(9, 0, b""), "frame type 9 (provokes connection.close)")
    c.recv(2)
    c.send(1, "basic.qos", prefetch_count=1)
    c.drain(quiet=1.0, limit=3)
    if not c.closed:
        c.send(0, "connection.close-ok")
        c.drain(quiet=1.0)


@scenario("frames", "channel-open-twice")
def _(s):
    """channel.open on channel 1 which is already open"""
    c = s.conn()
    c.send(1, "channel.open")
    c.drain(quiet=1.0)


@scenario("frames", "channel-open-ch0")
def _(s):
    """channel.open on channel 0"""
    c = s.conn()
    c.send(0, "channel.open")
    c.drain(quiet=1.0)


@scenario("frames", "method-on-unopened-channel")
def _(s):
    """queue.declare on channel 5 which was never opened"""
    c = s.conn()
    c.send(5, "queue.declare", queue="", exclusive=True)
    c.drain(quiet=1.0)


@scenario("frames", "channel-close-on-unopened-channel")
def _(s):
    """channel.close on channel 5 which was never opened"""
    c = s.conn()
    c.send(5, "channel.close", reply_code=200, reply_text="bye")
    c.drain(quiet=1.0)


@scenario("frames", "channel-close-ok-on-unopened-channel")
def _(s):
    """channel.close-ok on channel 5 which was never opened"""
    c = s.conn()
    c.send(5, "channel.close-ok")
    c.drain(quiet=1.0)


@scenario("frames", "channel-id-above-channel-max")
def _(s):
    """channel_max negotiated 10; channel.open on 11"""
    c = s.conn(channel_max=10)
    c.send(11, "channel.open")
    c.drain(quiet=1.0)


@scenario("frames", "channel-id-above-2047")
def _(s):
    """channel_max as offered (2047); channel.open on 2048"""
    c = s.conn()
    c.send(2048, "channel.open")
    c.drain(quiet=1.0)


@scenario("frames", "channel-method-on-ch0")
def _(s):
    """queue.declare on channel 0"""
    c = s.conn()
    c.send(0, "queue.declare", queue="", exclusive=True)
    c.drain(quiet=1.0)


@scenario("frames", "connection-method-on-ch1")
def _(s):
    """connection.tune-ok... no: connection.close on channel 1"""
    c = s.conn()
    c.send(1, "connection.close", reply_code=200, reply_text="x")
    c.drain(quiet=1.0)


@scenario("frames", "channel-close-then-more-frames")
def _(s):
    """client channel.close, then basic.qos on the same channel before close-ok arrives, then reopen"""
    c = s.conn()
    c.send(1, "channel.close", reply_code=200, reply_text="bye")
    c.send(1, "basic.qos", prefetch_count=1)
    c.drain(quiet=1.0)
    if not c.closed:
        c.send(1, "channel.open")
        c.drain(quiet=1.0)


@scenario("frames", "server-channel-close-then-more-frames")
def _(s):
    """server closes channel 1 (404); client sends basic.qos on ch1 before close-ok, then close-ok, then reopen"""
    c = s.conn()
    c.send(1, "queue.declare", queue="probe-missing", passive=True)
    c.drain(quiet=0.5, reply_close=False)
    c.send(1, "basic.qos", prefetch_count=1)
    c.send(1, "queue.declare", queue="", exclusive=True)
    c.drain(quiet=0.5, reply_close=False)
    c.send(1, "channel.close-ok")
    c.drain(quiet=0.5)
    c.send(1, "channel.open")
    c.drain(quiet=0.5)


@scenario("frames", "server-channel-close-reopen-without-close-ok")
def _(s):
    """server closes channel 1 (404); client sends channel.open on ch1 without close-ok"""
    c = s.conn()
    c.send(1, "queue.declare", queue="probe-missing", passive=True)
    c.drain(quiet=0.5, reply_close=False)
    c.send(1, "channel.open")
    c.drain(quiet=1.0)


@scenario("frames", "channel-flow-false")
def _(s):
    """client channel.flow active=false"""
    c = s.conn()
    c.send(1, "channel.flow", active=False)
    c.drain(quiet=1.0)


@scenario("frames", "channel-flow-true")
def _(s):
    """client channel.flow active=true"""
    c = s.conn()
    c.send(1, "channel.flow", active=True)
    c.drain(quiet=1.0)


@scenario("frames", "channel-flow-ok")
def _(s):
    """client channel.flow-ok (unsolicited)"""
    c = s.conn()
    c.send(1, "channel.flow-ok", active=True)
    c.drain(quiet=1.0)


@scenario("frames", "channel-close-with-error-code")
def _(s):
    """client channel.close 406 'client text' class 50 method 10 -> close-ok?"""
    c = s.conn()
    c.send(1, "channel.close", reply_code=406, reply_text="client text", class_id=50, method_id=10)
    c.drain(quiet=1.0)


@scenario("frames", "connection-close-with-error-code")
def _(s):
    """client connection.close 541 -> close-ok?"""
    c = s.conn()
    c.send(0, "connection.close", reply_code=541, reply_text="client error", class_id=0, method_id=0)
    c.drain(quiet=2.0, reply_close=False)


@scenario("frames", "update-secret")
def _(s):
    """connection.update-secret with the same password"""
    c = s.conn()
    c.send(0, "connection.update-secret", new_secret="guest", reason="refresh")
    c.drain(quiet=1.0)


@scenario("frames", "open-many-channels")
def _(s):
    """channel_max 3; open channels 2, 3 (1 already open)"""
    c = s.conn(channel_max=3)
    for ch in (2, 3):
        c.send(ch, "channel.open")
    c.drain(quiet=1.0)


# ---------------------------------------------------------------- exchanges
def _declare_x(c, ch=1, name="probe-x", type="direct", **kw):
    c.send(ch, "exchange.declare", exchange=name, type=type, **kw)


@scenario("exchanges", "declare-unknown-type")
def _(s):
    """exchange.declare type=foo"""
    s.clean(exchanges=["probe-x-unknown"])
    c = s.conn()
    _declare_x(c, name="probe-x-unknown", type="foo")
    c.drain()


@scenario("exchanges", "declare-empty-type")
def _(s):
    """exchange.declare type='' (non-passive)"""
    s.clean(exchanges=["probe-x-emptytype"])
    c = s.conn()
    _declare_x(c, name="probe-x-emptytype", type="")
    c.drain()


@scenario("exchanges", "declare-amq-prefix")
def _(s):
    """exchange.declare amq.foo type=direct"""
    c = s.conn()
    _declare_x(c, name="amq.foo")
    c.drain()


@scenario("exchanges", "declare-amq-direct-same")
def _(s):
    """exchange.declare amq.direct type=direct durable=true (equivalent)"""
    c = s.conn()
    _declare_x(c, name="amq.direct", durable=True)
    c.drain()


@scenario("exchanges", "declare-amq-direct-passive")
def _(s):
    """exchange.declare amq.direct passive"""
    c = s.conn()
    _declare_x(c, name="amq.direct", passive=True)
    c.drain()


@scenario("exchanges", "declare-default-exchange")
def _(s):
    """exchange.declare '' type=direct (non-passive), then passive"""
    c = s.conn()
    _declare_x(c, name="", durable=True)
    c.drain()
    c.send(2, "channel.open")
    c.drain()
    _declare_x(c, 2, name="", passive=True)
    c.drain()


for _n, _first, _second in [
    ("redeclare-different-type", {}, {"type": "fanout"}),
    ("redeclare-different-durable", {}, {"durable": True}),
    ("redeclare-different-auto-delete", {}, {"auto_delete": True}),
    ("redeclare-different-internal", {}, {"internal": True}),
    ("redeclare-different-arguments", {}, {"arguments": {"alternate-exchange": "amq.direct"}}),
    ("redeclare-different-arguments-custom", {"arguments": {"x-foo": "a"}}, {"arguments": {"x-foo": "b"}}),
    ("redeclare-same", {"arguments": {"x-foo": "a"}}, {"arguments": {"x-foo": "a"}}),
    ("redeclare-passive-different-type", {}, {"type": "fanout", "passive": True}),
]:
    def _mk(first, second):
        def _(s):
            s.clean(exchanges=["probe-x-redecl"])
            c = s.conn()
            c.rpc(1, "exchange.declare", exchange="probe-x-redecl", **{"type": "direct", **first})
            c.send(1, "exchange.declare", exchange="probe-x-redecl", **{"type": "direct", **second})
            c.drain()
            s.clean(exchanges=["probe-x-redecl"])
        _.__doc__ = f"declare probe-x-redecl direct {first}, then {second}"
        return _
    scenario("exchanges", _n)(_mk(_first, _second))


@scenario("exchanges", "passive-declare-missing")
def _(s):
    """exchange.declare passive probe-x-missing"""
    s.clean(exchanges=["probe-x-missing"])
    c = s.conn()
    _declare_x(c, name="probe-x-missing", passive=True)
    c.drain()


@scenario("exchanges", "delete-missing")
def _(s):
    """exchange.delete probe-x-missing"""
    s.clean(exchanges=["probe-x-missing"])
    c = s.conn()
    c.send(1, "exchange.delete", exchange="probe-x-missing")
    c.drain()


@scenario("exchanges", "delete-if-unused-bound")
def _(s):
    """exchange with a queue binding; delete if_unused"""
    s.clean(exchanges=["probe-x-used"])
    c = s.conn()
    c.rpc(1, "exchange.declare", exchange="probe-x-used", type="direct")
    c.rpc(1, "queue.declare", queue="", exclusive=True)
    q = s.events[-1]["fields"]["queue"]
    c.rpc(1, "queue.bind", queue=q, exchange="probe-x-used", routing_key="k")
    c.send(1, "exchange.delete", exchange="probe-x-used", if_unused=True)
    c.drain()
    s.clean(exchanges=["probe-x-used"])


@scenario("exchanges", "delete-if-unused-source-of-e2e")
def _(s):
    """exchange that is only the source of an exchange-to-exchange binding; delete if_unused"""
    s.clean(exchanges=["probe-x-src", "probe-x-dst"])
    c = s.conn()
    c.rpc(1, "exchange.declare", exchange="probe-x-src", type="direct")
    c.rpc(1, "exchange.declare", exchange="probe-x-dst", type="direct")
    c.rpc(1, "exchange.bind", destination="probe-x-dst", source="probe-x-src", routing_key="k")
    c.send(1, "exchange.delete", exchange="probe-x-src", if_unused=True)
    c.drain()
    c.rpc(2, "channel.open")
    c.send(2, "exchange.delete", exchange="probe-x-dst", if_unused=True)
    c.drain()
    s.clean(exchanges=["probe-x-src", "probe-x-dst"])


@scenario("exchanges", "delete-if-unused-unbound")
def _(s):
    """unbound exchange; delete if_unused"""
    s.clean(exchanges=["probe-x-unused"])
    c = s.conn()
    c.rpc(1, "exchange.declare", exchange="probe-x-unused", type="direct")
    c.send(1, "exchange.delete", exchange="probe-x-unused", if_unused=True)
    c.drain()


@scenario("exchanges", "queue-bind-to-default")
def _(s):
    """queue.bind of a queue to the default exchange ''"""
    c = s.conn()
    c.rpc(1, "queue.declare", queue="", exclusive=True)
    q = s.events[-1]["fields"]["queue"]
    c.send(1, "queue.bind", queue=q, exchange="", routing_key="k")
    c.drain()


@scenario("exchanges", "queue-unbind-from-default")
def _(s):
    """queue.unbind of a queue from the default exchange ''"""
    c = s.conn()
    c.rpc(1, "queue.declare", queue="", exclusive=True)
    q = s.events[-1]["fields"]["queue"]
    c.send(1, "queue.unbind", queue=q, exchange="", routing_key=q)
    c.drain()


@scenario("exchanges", "exchange-bind-from-default")
def _(s):
    """exchange.bind destination=amq.fanout source=''"""
    c = s.conn()
    c.send(1, "exchange.bind", destination="amq.fanout", source="", routing_key="k")
    c.drain()


@scenario("exchanges", "exchange-bind-to-default")
def _(s):
    """exchange.bind destination='' source=amq.fanout"""
    c = s.conn()
    c.send(1, "exchange.bind", destination="", source="amq.fanout", routing_key="k")
    c.drain()


@scenario("exchanges", "delete-default")
def _(s):
    """exchange.delete ''"""
    c = s.conn()
    c.send(1, "exchange.delete", exchange="")
    c.drain()


@scenario("exchanges", "delete-amq-direct")
def _(s):
    """exchange.delete amq.direct"""
    c = s.conn()
    c.send(1, "exchange.delete", exchange="amq.direct")
    c.drain()


@scenario("exchanges", "publish-missing-exchange")
def _(s):
    """basic.publish to probe-x-missing"""
    s.clean(exchanges=["probe-x-missing"])
    c = s.conn()
    c.publish(1, "probe-x-missing", "k", "hello")
    c.drain()


@scenario("exchanges", "publish-missing-exchange-confirm")
def _(s):
    """confirm.select, then basic.publish to probe-x-missing"""
    s.clean(exchanges=["probe-x-missing"])
    c = s.conn()
    c.rpc(1, "confirm.select")
    c.publish(1, "probe-x-missing", "k", "hello")
    c.drain()


@scenario("exchanges", "publish-internal-exchange")
def _(s):
    """basic.publish to an internal exchange"""
    s.clean(exchanges=["probe-x-internal"])
    c = s.conn()
    c.rpc(1, "exchange.declare", exchange="probe-x-internal", type="fanout", internal=True)
    c.publish(1, "probe-x-internal", "k", "hello")
    c.drain()
    s.clean(exchanges=["probe-x-internal"])


@scenario("exchanges", "publish-amq-default-name")
def _(s):
    """basic.publish to exchange 'amq.default' (alias of '') with mandatory to a missing queue"""
    c = s.conn()
    c.publish(1, "amq.default", "probe-none", "hello", mandatory=True)
    c.drain()


@scenario("exchanges", "exchange-bind-missing-source")
def _(s):
    """exchange.bind destination=amq.fanout source=probe-x-missing"""
    s.clean(exchanges=["probe-x-missing"])
    c = s.conn()
    c.send(1, "exchange.bind", destination="amq.fanout", source="probe-x-missing", routing_key="k")
    c.drain()


@scenario("exchanges", "exchange-bind-missing-destination")
def _(s):
    """exchange.bind destination=probe-x-missing source=amq.fanout"""
    s.clean(exchanges=["probe-x-missing"])
    c = s.conn()
    c.send(1, "exchange.bind", destination="probe-x-missing", source="amq.fanout", routing_key="k")
    c.drain()


@scenario("exchanges", "exchange-bind-both-missing")
def _(s):
    """exchange.bind destination=probe-x-missing2 source=probe-x-missing"""
    s.clean(exchanges=["probe-x-missing", "probe-x-missing2"])
    c = s.conn()
    c.send(1, "exchange.bind", destination="probe-x-missing2", source="probe-x-missing", routing_key="k")
    c.drain()


@scenario("exchanges", "exchange-unbind-missing")
def _(s):
    """exchange.unbind of a binding that does not exist (both exchanges exist)"""
    c = s.conn()
    c.send(1, "exchange.unbind", destination="amq.fanout", source="amq.direct", routing_key="nope")
    c.drain()


@scenario("exchanges", "headers-bind-invalid-x-match")
def _(s):
    """queue.bind to amq.headers with x-match=foo"""
    c = s.conn()
    c.rpc(1, "queue.declare", queue="", exclusive=True)
    q = s.events[-1]["fields"]["queue"]
    c.send(1, "queue.bind", queue=q, exchange="amq.headers", arguments={"x-match": "foo", "a": "1"})
    c.drain()


@scenario("exchanges", "headers-bind-x-match-non-string")
def _(s):
    """queue.bind to amq.headers with x-match=I:1"""
    c = s.conn()
    c.rpc(1, "queue.declare", queue="", exclusive=True)
    q = s.events[-1]["fields"]["queue"]
    c.send(1, "queue.bind", queue=q, exchange="amq.headers", arguments={"x-match": 1})
    c.drain()


@scenario("exchanges", "headers-bind-any-with")
def _(s):
    """queue.bind to amq.headers with x-match=any-with (3.10+?)"""
    c = s.conn()
    c.rpc(1, "queue.declare", queue="", exclusive=True)
    q = s.events[-1]["fields"]["queue"]
    c.send(1, "queue.bind", queue=q, exchange="amq.headers", arguments={"x-match": "any-with", "a": "1"})
    c.drain()


@scenario("exchanges", "declare-alternate-exchange-missing")
def _(s):
    """declare with alternate-exchange=probe-x-missing, publish mandatory -> return?"""
    s.clean(exchanges=["probe-x-ae", "probe-x-missing"])
    c = s.conn()
    c.rpc(1, "exchange.declare", exchange="probe-x-ae", type="direct",
          arguments={"alternate-exchange": "probe-x-missing"})
    c.publish(1, "probe-x-ae", "k", "hello", mandatory=True)
    c.drain()
    s.clean(exchanges=["probe-x-ae"])


@scenario("exchanges", "declare-name-invalid-chars")
def _(s):
    """exchange.declare with name 'probe x/#*' (spaces and punctuation)"""
    s.clean(exchanges=["probe x/#*"])
    c = s.conn()
    _declare_x(c, name="probe x/#*")
    c.drain()
    s.clean(exchanges=["probe x/#*"])


@scenario("exchanges", "declare-nowait-error")
def _(s):
    """exchange.declare nowait=true with unknown type -> error still sent?"""
    c = s.conn()
    _declare_x(c, name="probe-x-nowait", type="foo", nowait=True)
    c.drain()


# ---------------------------------------------------------------- queues
def _new_q(c: Conn, s: Scenario, **kw) -> str:
    c.rpc(1, "queue.declare", queue="", exclusive=True, **kw)
    return s.events[-1]["fields"]["queue"]


@scenario("queues", "passive-declare-missing")
def _(s):
    """queue.declare passive probe-q-missing"""
    s.clean(queues=["probe-q-missing"])
    c = s.conn()
    c.send(1, "queue.declare", queue="probe-q-missing", passive=True)
    c.drain()


@scenario("queues", "passive-declare-empty-name")
def _(s):
    """queue.declare passive '' on a fresh channel (no last queue)"""
    c = s.conn()
    c.send(1, "queue.declare", queue="", passive=True)
    c.drain()


@scenario("queues", "server-named-declare-ok")
def _(s):
    """queue.declare '' exclusive -> declare-ok fields, then passive '' (last queue)"""
    c = s.conn()
    c.send(1, "queue.declare", queue="", exclusive=True)
    c.drain()
    c.send(1, "queue.declare", queue="", passive=True)
    c.drain()


@scenario("queues", "declare-ok-counts")
def _(s):
    """declare, publish 3, consume on another channel, redeclare -> counts"""
    s.clean(queues=["probe-q-counts"])
    c = s.conn()
    c.rpc(1, "queue.declare", queue="probe-q-counts", auto_delete=False)
    for i in range(3):
        c.publish(1, "", "probe-q-counts", f"m{i}")
    c.rpc(1, "basic.qos", prefetch_count=1)
    c.send(1, "basic.consume", queue="probe-q-counts", consumer_tag="probe-ctag")
    c.drain(quiet=0.5)
    c.send(1, "queue.declare", queue="probe-q-counts", passive=True)
    c.drain()
    s.clean(queues=["probe-q-counts"])


for _n, _first, _second in [
    ("redeclare-different-durable", {}, {"durable": True}),
    ("redeclare-different-auto-delete", {}, {"auto_delete": True}),
    ("redeclare-different-exclusive", {}, {"exclusive": True}),
    ("redeclare-add-argument", {}, {"arguments": {"x-message-ttl": 1000}}),
    ("redeclare-different-argument-value", {"arguments": {"x-message-ttl": 1000}},
     {"arguments": {"x-message-ttl": 2000}}),
    ("redeclare-different-argument-type", {"arguments": {"x-message-ttl": 1000}},
     {"arguments": {"x-message-ttl": ("l", 1000)}}),
    ("redeclare-remove-argument", {"arguments": {"x-max-length": 10}}, {}),
    ("redeclare-different-dlx", {"arguments": {"x-dead-letter-exchange": "a"}},
     {"arguments": {"x-dead-letter-exchange": "b"}}),
    ("redeclare-custom-argument", {"arguments": {"x-foo": "a"}}, {"arguments": {"x-foo": "b"}}),
    ("redeclare-passive-different", {}, {"durable": True, "passive": True}),
    ("redeclare-different-queue-type", {}, {"arguments": {"x-queue-type": "quorum"}, "durable": True}),
    ("redeclare-explicit-classic-type", {}, {"arguments": {"x-queue-type": "classic"}}),
]:
    def _mk(first, second):
        def _(s):
            s.clean(queues=["probe-q-redecl"])
            c = s.conn()
            c.rpc(1, "queue.declare", queue="probe-q-redecl", **first)
            c.send(1, "queue.declare", queue="probe-q-redecl", **second)
            c.drain()
            s.clean(queues=["probe-q-redecl"])
        _.__doc__ = f"declare probe-q-redecl {first or '(defaults)'}, then {second}"
        return _
    scenario("queues", _n)(_mk(_first, _second))


for _n, _args in [
    ("arg-message-ttl-string", {"x-message-ttl": "1000"}),
    ("arg-message-ttl-negative", {"x-message-ttl": -1}),
    ("arg-message-ttl-signed-short", {"x-message-ttl": ("s", 1000)}),
    ("arg-message-ttl-float", {"x-message-ttl": 1.5}),
    ("arg-message-ttl-huge", {"x-message-ttl": ("l", 2**40)}),
    ("arg-expires-string", {"x-expires": "1000"}),
    ("arg-expires-zero", {"x-expires": 0}),
    ("arg-expires-negative", {"x-expires": -5}),
    ("arg-max-length-string", {"x-max-length": "10"}),
    ("arg-max-length-negative", {"x-max-length": -1}),
    ("arg-max-length-bool", {"x-max-length": True}),
    ("arg-max-length-bytes-string", {"x-max-length-bytes": "10"}),
    ("arg-max-length-bytes-negative", {"x-max-length-bytes": -1}),
    ("arg-overflow-invalid", {"x-overflow": "foo"}),
    ("arg-overflow-int", {"x-overflow": 1}),
    ("arg-overflow-reject-publish-dlx", {"x-overflow": "reject-publish-dlx"}),
    ("arg-dlx-int", {"x-dead-letter-exchange": 5}),
    ("arg-dlx-missing-exchange", {"x-dead-letter-exchange": "probe-x-missing"}),
    ("arg-dlrk-without-dlx", {"x-dead-letter-routing-key": "rk"}),
    ("arg-dlrk-int", {"x-dead-letter-exchange": "amq.direct", "x-dead-letter-routing-key": 5}),
    ("arg-max-priority-0", {"x-max-priority": 0}),
    ("arg-max-priority-255", {"x-max-priority": 255}),
    ("arg-max-priority-256", {"x-max-priority": 256}),
    ("arg-max-priority-negative", {"x-max-priority": -1}),
    ("arg-max-priority-string", {"x-max-priority": "5"}),
    ("arg-queue-type-invalid", {"x-queue-type": "foo"}),
    ("arg-queue-type-int", {"x-queue-type": 1}),
    ("arg-single-active-consumer-int", {"x-single-active-consumer": 1}),
    ("arg-single-active-consumer-string", {"x-single-active-consumer": "true"}),
    ("arg-delivery-limit-classic", {"x-delivery-limit": 5}),
    ("arg-queue-mode-invalid", {"x-queue-mode": "foo"}),
    ("arg-queue-master-locator-invalid", {"x-queue-master-locator": "foo"}),
    ("arg-unknown-x-arg", {"x-foo-bar": "baz"}),
    ("arg-ha-policy", {"x-ha-policy": "all"}),
]:
    def _mk(args):
        def _(s):
            s.clean(queues=["probe-q-args"])
            c = s.conn()
            c.send(1, "queue.declare", queue="probe-q-args", arguments=args)
            c.drain(quiet=1.5)
            s.clean(queues=["probe-q-args"])
        _.__doc__ = f"queue.declare probe-q-args arguments={args}"
        return _
    scenario("queues", _n)(_mk(_args))


@scenario("queues", "declare-amq-prefix")
def _(s):
    """queue.declare amq.foo"""
    c = s.conn()
    c.send(1, "queue.declare", queue="amq.foo")
    c.drain()


@scenario("queues", "declare-amq-prefix-passive")
def _(s):
    """queue.declare passive amq.foo"""
    c = s.conn()
    c.send(1, "queue.declare", queue="amq.foo", passive=True)
    c.drain()


@scenario("queues", "declare-max-name-255")
def _(s):
    """queue.declare with a 255-char name (max shortstr)"""
    name = "probe-" + "q" * 249
    s.clean(queues=[name])
    c = s.conn()
    c.send(1, "queue.declare", queue=name, exclusive=True)
    c.drain()


@scenario("queues", "declare-non-utf8-name")
def _(s):
    """queue.declare with name bytes ff fe"""
    c = s.conn()
    c.send(1, "queue.declare", queue=b"\xff\xfe", exclusive=True)
    c.drain()


def _exclusive_other(s, op):
    s.clean(queues=["probe-q-excl"])
    a = s.conn("A")
    a.rpc(1, "queue.declare", queue="probe-q-excl", exclusive=True)
    b = s.conn("B")
    op(b)
    b.drain()


for _n, _op, _d in [
    ("exclusive-other-conn-declare", lambda b: b.send(1, "queue.declare", queue="probe-q-excl"),
     "conn B: queue.declare probe-q-excl (same flags minus exclusive)"),
    ("exclusive-other-conn-declare-exclusive",
     lambda b: b.send(1, "queue.declare", queue="probe-q-excl", exclusive=True),
     "conn B: queue.declare probe-q-excl exclusive"),
    ("exclusive-other-conn-passive", lambda b: b.send(1, "queue.declare", queue="probe-q-excl", passive=True),
     "conn B: queue.declare passive probe-q-excl"),
    ("exclusive-other-conn-consume", lambda b: b.send(1, "basic.consume", queue="probe-q-excl"),
     "conn B: basic.consume probe-q-excl"),
    ("exclusive-other-conn-bind",
     lambda b: b.send(1, "queue.bind", queue="probe-q-excl", exchange="amq.direct", routing_key="k"),
     "conn B: queue.bind probe-q-excl amq.direct"),
    ("exclusive-other-conn-unbind",
     lambda b: b.send(1, "queue.unbind", queue="probe-q-excl", exchange="amq.direct", routing_key="k"),
     "conn B: queue.unbind probe-q-excl amq.direct"),
    ("exclusive-other-conn-delete", lambda b: b.send(1, "queue.delete", queue="probe-q-excl"),
     "conn B: queue.delete probe-q-excl"),
    ("exclusive-other-conn-purge", lambda b: b.send(1, "queue.purge", queue="probe-q-excl"),
     "conn B: queue.purge probe-q-excl"),
    ("exclusive-other-conn-get", lambda b: b.send(1, "basic.get", queue="probe-q-excl"),
     "conn B: basic.get probe-q-excl"),
    ("exclusive-other-conn-publish", lambda b: b.publish(1, "", "probe-q-excl", "hi"),
     "conn B: basic.publish to probe-q-excl via '' (allowed?)"),
]:
    def _mk(op, d):
        def _(s):
            _exclusive_other(s, op)
        _.__doc__ = d
        return _
    scenario("queues", _n)(_mk(_op, _d))


@scenario("queues", "exclusive-other-channel-same-conn")
def _(s):
    """same connection, channel 2: consume the exclusive queue (allowed)"""
    c = s.conn()
    q = _new_q(c, s)
    c.rpc(2, "channel.open")
    c.send(2, "basic.consume", queue=q, consumer_tag="c2")
    c.drain()


@scenario("queues", "delete-if-unused-with-consumer")
def _(s):
    """queue.delete if_unused while a consumer exists"""
    c = s.conn()
    q = _new_q(c, s)
    c.rpc(1, "basic.consume", queue=q, consumer_tag="c1")
    c.send(1, "queue.delete", queue=q, if_unused=True)
    c.drain()


@scenario("queues", "delete-if-empty-with-messages")
def _(s):
    """queue.delete if_empty with 2 messages"""
    c = s.conn()
    q = _new_q(c, s)
    c.publish(1, "", q, "a")
    c.publish(1, "", q, "b")
    c.send(1, "queue.delete", queue=q, if_empty=True)
    c.drain()


@scenario("queues", "delete-counts")
def _(s):
    """queue.delete of a queue with 2 ready + 1 unacked message"""
    c = s.conn()
    q = _new_q(c, s)
    for m in "abc":
        c.publish(1, "", q, m)
    c.send(1, "basic.get", queue=q)
    c.drain(quiet=0.3)
    c.send(1, "queue.delete", queue=q)
    c.drain()


@scenario("queues", "delete-missing")
def _(s):
    """queue.delete probe-q-missing"""
    s.clean(queues=["probe-q-missing"])
    c = s.conn()
    c.send(1, "queue.delete", queue="probe-q-missing")
    c.drain()


@scenario("queues", "delete-missing-if-empty")
def _(s):
    """queue.delete probe-q-missing if_empty if_unused"""
    s.clean(queues=["probe-q-missing"])
    c = s.conn()
    c.send(1, "queue.delete", queue="probe-q-missing", if_empty=True, if_unused=True)
    c.drain()


@scenario("queues", "purge-counts")
def _(s):
    """queue.purge with 3 ready + 1 unacked"""
    c = s.conn()
    q = _new_q(c, s)
    for m in "abcd":
        c.publish(1, "", q, m)
    c.send(1, "basic.get", queue=q)
    c.drain(quiet=0.3)
    c.send(1, "queue.purge", queue=q)
    c.drain()


@scenario("queues", "purge-missing")
def _(s):
    """queue.purge probe-q-missing"""
    s.clean(queues=["probe-q-missing"])
    c = s.conn()
    c.send(1, "queue.purge", queue="probe-q-missing")
    c.drain()


@scenario("queues", "bind-missing-queue")
def _(s):
    """queue.bind probe-q-missing to amq.direct"""
    s.clean(queues=["probe-q-missing"])
    c = s.conn()
    c.send(1, "queue.bind", queue="probe-q-missing", exchange="amq.direct", routing_key="k")
    c.drain()


@scenario("queues", "bind-missing-exchange")
def _(s):
    """queue.bind of an existing queue to probe-x-missing"""
    s.clean(exchanges=["probe-x-missing"])
    c = s.conn()
    q = _new_q(c, s)
    c.send(1, "queue.bind", queue=q, exchange="probe-x-missing", routing_key="k")
    c.drain()


@scenario("queues", "bind-both-missing")
def _(s):
    """queue.bind probe-q-missing to probe-x-missing"""
    s.clean(queues=["probe-q-missing"], exchanges=["probe-x-missing"])
    c = s.conn()
    c.send(1, "queue.bind", queue="probe-q-missing", exchange="probe-x-missing", routing_key="k")
    c.drain()


@scenario("queues", "bind-empty-queue-name-no-last")
def _(s):
    """queue.bind queue='' on a channel that never declared a queue"""
    c = s.conn()
    c.send(1, "queue.bind", queue="", exchange="amq.direct", routing_key="k")
    c.drain()


@scenario("queues", "bind-empty-queue-name-last")
def _(s):
    """declare server-named queue, then queue.bind queue='' routing_key='' (uses last queue & its name)"""
    c = s.conn()
    _new_q(c, s)
    q = s.events[-1]["fields"]["queue"]
    c.send(1, "queue.bind", queue="", exchange="amq.direct", routing_key="")
    c.drain()
    c.publish(1, "amq.direct", "", "to-empty-key")
    c.publish(1, "amq.direct", q, "to-queue-name-key")
    c.send(1, "basic.get", queue="", no_ack=True)
    c.send(1, "basic.get", queue="", no_ack=True)
    c.drain()


@scenario("queues", "unbind-missing-binding")
def _(s):
    """queue.unbind of a non-existent binding (queue and exchange exist)"""
    c = s.conn()
    q = _new_q(c, s)
    c.send(1, "queue.unbind", queue=q, exchange="amq.direct", routing_key="nope")
    c.drain()


@scenario("queues", "unbind-missing-queue")
def _(s):
    """queue.unbind probe-q-missing from amq.direct"""
    s.clean(queues=["probe-q-missing"])
    c = s.conn()
    c.send(1, "queue.unbind", queue="probe-q-missing", exchange="amq.direct", routing_key="k")
    c.drain()


@scenario("queues", "quorum-declare")
def _(s):
    """declare a durable quorum queue (single node), then non-durable quorum and exclusive quorum"""
    s.clean(queues=["probe-qq", "probe-qq2", "probe-qq3"])
    c = s.conn()
    c.send(1, "queue.declare", queue="probe-qq", durable=True, arguments={"x-queue-type": "quorum"})
    c.drain()
    c.send(1, "queue.declare", queue="probe-qq2", durable=False, arguments={"x-queue-type": "quorum"})
    c.drain()
    if not c.closed:
        c.send(2, "channel.open")
        c.drain()
        c.send(2, "queue.declare", queue="probe-qq3", durable=True, exclusive=True,
               arguments={"x-queue-type": "quorum"})
        c.drain()
    s.clean(queues=["probe-qq", "probe-qq2", "probe-qq3"])


@scenario("queues", "quorum-invalid-args")
def _(s):
    """quorum queue with x-max-priority, then with x-overflow=reject-publish-dlx, then x-delivery-limit string"""
    s.clean(queues=["probe-qq-a"])
    c = s.conn()
    for ch, args in [(1, {"x-max-priority": 5}), (2, {"x-overflow": "reject-publish-dlx"}),
                     (3, {"x-delivery-limit": "5"}), (4, {"x-message-ttl": 1000})]:
        if ch > 1:
            c.send(ch, "channel.open")
            c.drain(quiet=0.2)
        c.send(ch, "queue.declare", queue="probe-qq-a", durable=True,
               arguments={"x-queue-type": "quorum", **args})
        c.drain()
        s.clean(queues=["probe-qq-a"])


@scenario("queues", "stream-declare")
def _(s):
    """declare x-queue-type=stream (durable), then basic.get on it"""
    s.clean(queues=["probe-stream"])
    c = s.conn()
    c.send(1, "queue.declare", queue="probe-stream", durable=True, arguments={"x-queue-type": "stream"})
    c.drain()
    c.send(1, "basic.get", queue="probe-stream")
    c.drain()
    s.clean(queues=["probe-stream"])


# ---------------------------------------------------------------- basic
@scenario("basic", "mandatory-no-route")
def _(s):
    """publish mandatory to amq.direct with an unbound routing key (with properties)"""
    c = s.conn()
    c.publish(1, "amq.direct", "probe-unrouted", "hello", mandatory=True,
              props={"content_type": "text/plain", "headers": {"h": "v"}, "delivery_mode": 2})
    c.drain()


@scenario("basic", "mandatory-no-route-default-exchange")
def _(s):
    """publish mandatory via '' to a missing queue"""
    c = s.conn()
    c.publish(1, "", "probe-q-missing", "hello", mandatory=True)
    c.drain()


@scenario("basic", "mandatory-no-route-confirm")
def _(s):
    """confirm.select, publish mandatory unroutable -> return then ack?"""
    c = s.conn()
    c.rpc(1, "confirm.select")
    c.publish(1, "amq.direct", "probe-unrouted", "hello", mandatory=True)
    c.publish(1, "amq.direct", "probe-unrouted", "hello2")
    c.drain()


@scenario("basic", "immediate-true")
def _(s):
    """publish immediate=true to an existing queue"""
    c = s.conn()
    q = _new_q(c, s)
    c.publish(1, "", q, "hello", immediate=True)
    c.drain()


@scenario("basic", "max-message-size-exceeded")
def _(s):
    """publish body of max_message_size+1 bytes (broker configured with max_message_size)"""
    n = s.opts.max_message_size
    c = s.conn()
    q = _new_q(c, s)
    c.publish(1, "", q, b"x" * n)
    c.send(1, "basic.get", queue=q, no_ack=True)
    c.drain(quiet=0.5)
    c.publish(1, "", q, b"x" * (n + 1))
    c.drain()


@scenario("basic", "get-empty")
def _(s):
    """basic.get on an empty queue"""
    c = s.conn()
    q = _new_q(c, s)
    c.send(1, "basic.get", queue=q)
    c.drain()


@scenario("basic", "get-ok-fields")
def _(s):
    """publish 2 (with properties) then basic.get -> get-ok fields, message_count"""
    c = s.conn()
    q = _new_q(c, s)
    props = {"content_type": "text/plain", "content_encoding": "utf-8",
             "headers": {"s": "str", "i": 5, "l": ("l", 7), "t": True, "a": [1, "x"], "f": {"n": 1},
                         "d": 1.5, "T": ("T", 1700000000), "V": None, "b": ("b", -1), "x": b"\x00\x01",
                         "D": ("D", (2, 12345)), "u": ("u", 5), "sh": ("s", -3)},
             "delivery_mode": 2, "priority": 3, "correlation_id": "cid", "reply_to": "rt",
             "expiration": "60000", "message_id": "mid", "timestamp": 1700000000, "type": "ty",
             "user_id": "guest", "app_id": "app", "cluster_id": "cl"}
    c.publish(1, "", q, "first", props=props)
    c.publish(1, "", q, "second")
    c.send(1, "basic.get", queue=q)
    c.drain()


@scenario("basic", "get-missing-queue")
def _(s):
    """basic.get on probe-q-missing"""
    s.clean(queues=["probe-q-missing"])
    c = s.conn()
    c.send(1, "basic.get", queue="probe-q-missing")
    c.drain()


@scenario("basic", "user-id-mismatch")
def _(s):
    """publish with user_id=someoneelse (validated user id)"""
    c = s.conn()
    q = _new_q(c, s)
    c.publish(1, "", q, "x", props={"user_id": "someoneelse"})
    c.drain()


@scenario("basic", "consume-missing-queue")
def _(s):
    """basic.consume on probe-q-missing"""
    s.clean(queues=["probe-q-missing"])
    c = s.conn()
    c.send(1, "basic.consume", queue="probe-q-missing")
    c.drain()


@scenario("basic", "consume-ok-generated-tag")
def _(s):
    """basic.consume with empty consumer_tag -> generated tag format"""
    c = s.conn()
    q = _new_q(c, s)
    c.send(1, "basic.consume", queue=q)
    c.drain()


@scenario("basic", "consume-duplicate-tag")
def _(s):
    """two basic.consume with the same consumer_tag on one channel"""
    c = s.conn()
    q = _new_q(c, s)
    c.rpc(1, "basic.consume", queue=q, consumer_tag="dup")
    c.send(1, "basic.consume", queue=q, consumer_tag="dup")
    c.drain()


@scenario("basic", "consume-same-tag-other-channel")
def _(s):
    """same consumer_tag on two channels of one connection (allowed?)"""
    c = s.conn()
    q = _new_q(c, s)
    c.rpc(1, "basic.consume", queue=q, consumer_tag="dup")
    c.rpc(2, "channel.open")
    c.send(2, "basic.consume", queue=q, consumer_tag="dup")
    c.drain()


@scenario("basic", "exclusive-consume-when-consumers-exist")
def _(s):
    """basic.consume exclusive while another consumer exists"""
    c = s.conn()
    q = _new_q(c, s)
    c.rpc(1, "basic.consume", queue=q, consumer_tag="c1")
    c.send(1, "basic.consume", queue=q, consumer_tag="c2", exclusive=True)
    c.drain()


@scenario("basic", "consume-when-exclusive-consumer-exists")
def _(s):
    """basic.consume while an exclusive consumer exists"""
    c = s.conn()
    q = _new_q(c, s)
    c.rpc(1, "basic.consume", queue=q, consumer_tag="c1", exclusive=True)
    c.send(1, "basic.consume", queue=q, consumer_tag="c2")
    c.drain()


@scenario("basic", "get-when-exclusive-consumer-exists")
def _(s):
    """basic.get while an exclusive consumer exists"""
    c = s.conn()
    q = _new_q(c, s)
    c.rpc(1, "basic.consume", queue=q, consumer_tag="c1", exclusive=True)
    c.send(1, "basic.get", queue=q)
    c.drain()


@scenario("basic", "consume-invalid-priority-arg")
def _(s):
    """basic.consume with arguments x-priority='high'"""
    c = s.conn()
    q = _new_q(c, s)
    c.send(1, "basic.consume", queue=q, arguments={"x-priority": "high"})
    c.drain()


@scenario("basic", "ack-unknown-tag")
def _(s):
    """basic.ack delivery_tag=99 (never delivered)"""
    c = s.conn()
    c.send(1, "basic.ack", delivery_tag=99)
    c.drain()


@scenario("basic", "ack-twice")
def _(s):
    """get one message, ack it twice"""
    c = s.conn()
    q = _new_q(c, s)
    c.publish(1, "", q, "x")
    c.send(1, "basic.get", queue=q)
    c.drain(quiet=0.3)
    c.send(1, "basic.ack", delivery_tag=1)
    c.send(1, "basic.ack", delivery_tag=1)
    c.drain()


@scenario("basic", "ack-multiple-zero")
def _(s):
    """get two messages, basic.ack multiple=true delivery_tag=0 (ack all), then ack 1"""
    c = s.conn()
    q = _new_q(c, s)
    c.publish(1, "", q, "a")
    c.publish(1, "", q, "b")
    c.send(1, "basic.get", queue=q)
    c.send(1, "basic.get", queue=q)
    c.drain(quiet=0.3)
    c.send(1, "basic.ack", delivery_tag=0, multiple=True)
    c.send(1, "queue.declare", queue=q, passive=True)
    c.drain(quiet=0.3)
    c.send(1, "basic.ack", delivery_tag=1)
    c.drain()


@scenario("basic", "ack-multiple-zero-nothing-outstanding")
def _(s):
    """basic.ack multiple=true delivery_tag=0 with nothing outstanding"""
    c = s.conn()
    c.send(1, "basic.ack", delivery_tag=0, multiple=True)
    c.send(1, "basic.qos", prefetch_count=1)
    c.drain()


@scenario("basic", "ack-zero-not-multiple")
def _(s):
    """basic.ack delivery_tag=0 multiple=false"""
    c = s.conn()
    c.send(1, "basic.ack", delivery_tag=0)
    c.drain()


@scenario("basic", "ack-on-no-ack-delivery")
def _(s):
    """basic.get no_ack=true, then basic.ack of its tag"""
    c = s.conn()
    q = _new_q(c, s)
    c.publish(1, "", q, "x")
    c.send(1, "basic.get", queue=q, no_ack=True)
    c.drain(quiet=0.3)
    c.send(1, "basic.ack", delivery_tag=1)
    c.drain()


@scenario("basic", "reject-unknown-tag")
def _(s):
    """basic.reject delivery_tag=42"""
    c = s.conn()
    c.send(1, "basic.reject", delivery_tag=42, requeue=True)
    c.drain()


@scenario("basic", "nack-unknown-tag")
def _(s):
    """basic.nack delivery_tag=42"""
    c = s.conn()
    c.send(1, "basic.nack", delivery_tag=42, requeue=True)
    c.drain()


@scenario("basic", "nack-multiple-unknown-tag")
def _(s):
    """basic.nack multiple delivery_tag=42 with nothing outstanding"""
    c = s.conn()
    c.send(1, "basic.nack", delivery_tag=42, multiple=True)
    c.drain()


@scenario("basic", "reject-requeue-redelivered")
def _(s):
    """get, reject requeue=true, get again -> redelivered flag"""
    c = s.conn()
    q = _new_q(c, s)
    c.publish(1, "", q, "x")
    c.send(1, "basic.get", queue=q)
    c.drain(quiet=0.3)
    c.send(1, "basic.reject", delivery_tag=1, requeue=True)
    c.send(1, "basic.get", queue=q)
    c.drain()


@scenario("basic", "recover-requeue-false")
def _(s):
    """get (unacked), basic.recover requeue=false"""
    c = s.conn()
    q = _new_q(c, s)
    c.publish(1, "", q, "x")
    c.send(1, "basic.get", queue=q)
    c.drain(quiet=0.3)
    c.send(1, "basic.recover", requeue=False)
    c.drain()


@scenario("basic", "recover-requeue-true")
def _(s):
    """consume (unacked delivery), basic.recover requeue=true -> redelivery"""
    c = s.conn()
    q = _new_q(c, s)
    c.publish(1, "", q, "x")
    c.send(1, "basic.consume", queue=q, consumer_tag="c1")
    c.drain(quiet=0.3)
    c.send(1, "basic.recover", requeue=True)
    c.drain()


@scenario("basic", "recover-async")
def _(s):
    """basic.recover-async requeue=true (deprecated)"""
    c = s.conn()
    c.send(1, "basic.recover-async", requeue=True)
    c.drain()


@scenario("basic", "qos-prefetch-size")
def _(s):
    """basic.qos prefetch_size=1000"""
    c = s.conn()
    c.send(1, "basic.qos", prefetch_size=1000, prefetch_count=1)
    c.drain()


@scenario("basic", "qos-global")
def _(s):
    """basic.qos prefetch_count=5 global=true"""
    c = s.conn()
    c.send(1, "basic.qos", prefetch_count=5, **{"global": True})
    c.drain()


@scenario("basic", "cancel-unknown-tag")
def _(s):
    """basic.cancel consumer_tag=nope"""
    c = s.conn()
    c.send(1, "basic.cancel", consumer_tag="nope")
    c.drain()


@scenario("basic", "cancel-unknown-tag-nowait")
def _(s):
    """basic.cancel consumer_tag=nope nowait=true"""
    c = s.conn()
    c.send(1, "basic.cancel", consumer_tag="nope", nowait=True)
    c.send(1, "basic.qos", prefetch_count=1)
    c.drain()


@scenario("basic", "confirm-then-tx")
def _(s):
    """confirm.select then tx.select"""
    c = s.conn()
    c.rpc(1, "confirm.select")
    c.send(1, "tx.select")
    c.drain()


@scenario("basic", "tx-then-confirm")
def _(s):
    """tx.select then confirm.select"""
    c = s.conn()
    c.rpc(1, "tx.select")
    c.send(1, "confirm.select")
    c.drain()


@scenario("basic", "confirm-select-twice")
def _(s):
    """confirm.select twice, then nowait"""
    c = s.conn()
    c.rpc(1, "confirm.select")
    c.send(1, "confirm.select")
    c.send(1, "confirm.select", nowait=True)
    c.send(1, "basic.qos", prefetch_count=1)
    c.drain()


@scenario("basic", "confirm-delivery-tags")
def _(s):
    """confirm.select; publish 3 (routable, unroutable, routable+mandatory to a queue)"""
    c = s.conn()
    q = _new_q(c, s)
    c.rpc(1, "confirm.select")
    c.publish(1, "", q, "a")
    c.publish(1, "amq.direct", "nowhere", "b")
    c.publish(1, "", q, "c", mandatory=True)
    c.drain()


@scenario("basic", "tx-commit-without-select")
def _(s):
    """tx.commit without tx.select"""
    c = s.conn()
    c.send(1, "tx.commit")
    c.drain()


@scenario("basic", "tx-rollback-without-select")
def _(s):
    """tx.rollback without tx.select"""
    c = s.conn()
    c.send(1, "tx.rollback")
    c.drain()


@scenario("basic", "tx-select-twice")
def _(s):
    """tx.select twice"""
    c = s.conn()
    c.rpc(1, "tx.select")
    c.send(1, "tx.select")
    c.drain()


@scenario("basic", "tx-publish-mandatory-rollback")
def _(s):
    """tx.select, publish mandatory unroutable, commit -> return before commit-ok?"""
    c = s.conn()
    c.rpc(1, "tx.select")
    c.publish(1, "amq.direct", "nowhere", "a", mandatory=True)
    c.send(1, "tx.commit")
    c.drain()


def _tx_setup(s, c, q_args=None):
    """probe-tx-q (with q_args), probe-tx-q2, fanout probe-tx-x bound to probe-tx-q2."""
    s.clean(queues=["probe-tx-q", "probe-tx-q2", "probe-tx-late"], exchanges=["probe-tx-x"])
    c.recording = False
    c.rpc(1, "queue.declare", queue="probe-tx-q", arguments=q_args or {})
    c.rpc(1, "queue.declare", queue="probe-tx-q2")
    c.rpc(1, "exchange.declare", exchange="probe-tx-x", type="fanout")
    c.rpc(1, "queue.bind", queue="probe-tx-q2", exchange="probe-tx-x")
    c.rpc(2, "channel.open")
    c.recording = True


def _tx_counts(c, *queues):
    for q in queues:
        c.rpc(1, "queue.declare", queue=q, passive=True)


@scenario("basic", "tx-commit-after-exchange-deleted")
def _(s):
    """get a job unacked; tx.select; publish to fanout x (bound to q2); reject the job requeue=true; delete x on channel 2; tx.commit -> queue counts"""
    c = s.conn()
    _tx_setup(s, c)
    c.publish(1, "", "probe-tx-q", "job")
    c.rpc(1, "basic.get", queue="probe-tx-q", reply="basic.get-ok")
    c.drain(quiet=0.3)
    c.rpc(1, "tx.select")
    c.publish(1, "probe-tx-x", "", "out")
    c.send(1, "basic.reject", delivery_tag=1, requeue=True)
    c.rpc(2, "exchange.delete", exchange="probe-tx-x")
    c.send(1, "tx.commit")
    c.drain(quiet=0.5)
    _tx_counts(c, "probe-tx-q", "probe-tx-q2")
    c.drain()


@scenario("basic", "tx-commit-after-queue-deleted")
def _(s):
    """tx.select; publish mandatory to '' key q2 and to fanout x (bound to q2); delete q2 on channel 2; tx.commit -> returns?"""
    c = s.conn()
    _tx_setup(s, c)
    c.rpc(1, "tx.select")
    c.publish(1, "", "probe-tx-q2", "direct", mandatory=True)
    c.publish(1, "probe-tx-x", "", "fanout", mandatory=True)
    c.rpc(2, "queue.delete", queue="probe-tx-q2")
    c.send(1, "tx.commit")
    c.drain()


@scenario("basic", "tx-commit-queue-declared-after-publish")
def _(s):
    """tx.select; publish mandatory to '' key probe-tx-late (no such queue yet); declare it; tx.commit -> returned or delivered?"""
    c = s.conn()
    _tx_setup(s, c)
    c.rpc(1, "tx.select")
    c.publish(1, "", "probe-tx-late", "late", mandatory=True)
    c.rpc(2, "queue.declare", queue="probe-tx-late")
    c.send(1, "tx.commit")
    c.drain(quiet=0.5)
    _tx_counts(c, "probe-tx-late")
    c.drain()


@scenario("basic", "tx-commit-binding-added-after-publish")
def _(s):
    """tx.select; publish to fanout x (bound to q2); bind q to x on channel 2; tx.commit -> which queues got it?"""
    c = s.conn()
    _tx_setup(s, c)
    c.rpc(1, "tx.select")
    c.publish(1, "probe-tx-x", "", "fanout")
    c.rpc(2, "queue.bind", queue="probe-tx-q", exchange="probe-tx-x")
    c.send(1, "tx.commit")
    c.drain(quiet=0.5)
    _tx_counts(c, "probe-tx-q", "probe-tx-q2")
    c.drain()


@scenario("basic", "tx-publish-internal-exchange")
def _(s):
    """tx.select; publish to an internal exchange -> refused at publish or at commit?"""
    s.clean(exchanges=["probe-tx-internal"])
    c = s.conn()
    c.recording = False
    c.rpc(1, "exchange.declare", exchange="probe-tx-internal", type="fanout", internal=True)
    c.recording = True
    c.rpc(1, "tx.select")
    c.publish(1, "probe-tx-internal", "", "internal")
    c.drain(quiet=0.5)
    c.send(1, "tx.commit")
    c.drain()


@scenario("basic", "tx-commit-order-publish-and-dead-letter")
def _(s):
    """q dead-letters to q2; get a job; tx.select; reject it requeue=false; publish to q2; tx.commit -> order in q2"""
    c = s.conn()
    _tx_setup(s, c, {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "probe-tx-q2"})
    c.publish(1, "", "probe-tx-q", "job")
    c.rpc(1, "basic.get", queue="probe-tx-q", reply="basic.get-ok")
    c.drain(quiet=0.3)
    c.rpc(1, "tx.select")
    c.send(1, "basic.reject", delivery_tag=1, requeue=False)
    c.publish(1, "", "probe-tx-q2", "pub")
    c.send(1, "tx.commit")
    c.drain(quiet=0.5)
    c.send(1, "basic.get", queue="probe-tx-q2", no_ack=True)
    c.drain(quiet=0.3)
    c.send(1, "basic.get", queue="probe-tx-q2", no_ack=True)
    c.drain()


@scenario("basic", "tx-ack-unknown-tag-commit")
def _(s):
    """tx.select, ack unknown tag 7, commit"""
    c = s.conn()
    c.rpc(1, "tx.select")
    c.send(1, "basic.ack", delivery_tag=7)
    c.send(1, "tx.commit")
    c.drain()


@scenario("basic", "cancel-notify-on-queue-delete")
def _(s):
    """consumer on a queue, queue deleted from another channel -> server basic.cancel"""
    c = s.conn()
    q = _new_q(c, s)
    c.rpc(1, "basic.consume", queue=q, consumer_tag="probe-ctag")
    c.rpc(2, "channel.open")
    c.send(2, "queue.delete", queue=q)
    c.drain()


@scenario("basic", "cancel-notify-without-capability")
def _(s):
    """client without consumer_cancel_notify capability; queue deleted under its consumer"""
    c = s.conn(client_props={"product": "warren-probe"})
    q = _new_q(c, s)
    c.rpc(1, "basic.consume", queue=q, consumer_tag="probe-ctag")
    c.rpc(2, "channel.open")
    c.send(2, "queue.delete", queue=q)
    c.drain()


@scenario("basic", "no-local-consume")
def _(s):
    """consume no_local=true, publish from the same connection -> delivered?"""
    c = s.conn()
    q = _new_q(c, s)
    c.rpc(1, "basic.consume", queue=q, consumer_tag="c1", no_local=True, no_ack=True)
    c.publish(1, "", q, "self")
    c.drain()


@scenario("basic", "priority-delivery-order")
def _(s):
    """x-max-priority=5 queue; publish p1,p5,p3,p9 then get x4"""
    c = s.conn()
    q = _new_q(c, s, arguments={"x-max-priority": 5})
    for p in (1, 5, 3, 9):
        c.publish(1, "", q, f"p{p}", props={"priority": p})
    for _i in range(4):
        c.send(1, "basic.get", queue=q, no_ack=True)
    c.drain()


@scenario("basic", "reply-to-consume-with-ack")
def _(s):
    """basic.consume on amq.rabbitmq.reply-to with no_ack=false"""
    c = s.conn()
    c.send(1, "basic.consume", queue="amq.rabbitmq.reply-to", no_ack=False)
    c.drain()


@scenario("basic", "reply-to-publish-before-consume")
def _(s):
    """publish with reply_to=amq.rabbitmq.reply-to without consuming it first"""
    c = s.conn()
    q = _new_q(c, s)
    c.publish(1, "", q, "req", props={"reply_to": "amq.rabbitmq.reply-to"})
    c.drain()


@scenario("basic", "reply-to-round-trip")
def _(s):
    """consume amq.rabbitmq.reply-to no_ack; publish request with reply_to; get it; reply to the generated address"""
    c = s.conn()
    q = _new_q(c, s)
    c.send(1, "basic.consume", queue="amq.rabbitmq.reply-to", no_ack=True, consumer_tag="rpc")
    c.drain(quiet=0.3)
    c.publish(1, "", q, "req", props={"reply_to": "amq.rabbitmq.reply-to"})
    c.send(1, "basic.get", queue=q, no_ack=True)
    evs = c.drain(quiet=0.5)
    rt = None
    for ev in evs:
        if ev["kind"] == "header":
            rt = ev["properties"].get("reply_to")
    if rt:
        c.rpc(2, "channel.open")
        c.publish(2, "", rt, "resp")
        c.drain()
        c.publish(2, "", "amq.rabbitmq.reply-to.bogus", "resp2", mandatory=True)
        c.drain()
        c.send(2, "queue.declare", queue=rt, passive=True)
        c.drain()


@scenario("basic", "reply-to-declare")
def _(s):
    """queue.declare passive amq.rabbitmq.reply-to"""
    c = s.conn()
    c.send(1, "queue.declare", queue="amq.rabbitmq.reply-to", passive=True)
    c.drain()


@scenario("basic", "publish-to-amq-rabbitmq-reply-to-bogus")
def _(s):
    """publish (not mandatory) to amq.rabbitmq.reply-to.garbage via ''"""
    c = s.conn()
    c.publish(1, "", "amq.rabbitmq.reply-to.garbage", "x")
    c.drain()


@scenario("basic", "expiration-invalid")
def _(s):
    """publish with expiration='abc'"""
    c = s.conn()
    q = _new_q(c, s)
    c.publish(1, "", q, "x", props={"expiration": "abc"})
    c.drain()


@scenario("basic", "expiration-negative")
def _(s):
    """publish with expiration='-1'"""
    c = s.conn()
    q = _new_q(c, s)
    c.publish(1, "", q, "x", props={"expiration": "-1"})
    c.drain()


@scenario("basic", "expiration-zero")
def _(s):
    """publish with expiration='0' to a queue with no consumer, then get"""
    c = s.conn()
    q = _new_q(c, s)
    c.publish(1, "", q, "x", props={"expiration": "0"})
    time.sleep(0.1)
    c.send(1, "basic.get", queue=q)
    c.drain()


@scenario("basic", "prefetch-enforced")
def _(s):
    """qos prefetch_count=2, 4 messages, consume -> how many delivered"""
    c = s.conn()
    q = _new_q(c, s)
    for i in range(4):
        c.publish(1, "", q, f"m{i}")
    c.rpc(1, "basic.qos", prefetch_count=2)
    c.send(1, "basic.consume", queue=q, consumer_tag="c1")
    c.drain()


@scenario("basic", "delivery-tag-after-channel-reopen")
def _(s):
    """get on ch1, close ch1, reopen, get -> delivery tag restarts at 1"""
    c = s.conn()
    q = _new_q(c, s)
    c.publish(1, "", q, "a")
    c.publish(1, "", q, "b")
    c.rpc(2, "channel.open")
    c.send(2, "basic.get", queue=q)
    c.drain(quiet=0.3)
    c.rpc(2, "channel.close", reply_code=200, reply_text="bye")
    c.rpc(2, "channel.open")
    c.send(2, "basic.get", queue=q)
    c.drain()


# ---------------------------------------------------------------- dead-lettering
def _dlx_setup(s, c, src_args, name="probe-dl-src"):
    """probe-dlx (fanout) -> probe-dl-target; source queue with given args"""
    s.clean(queues=[name, "probe-dl-target"], exchanges=["probe-dlx"])
    c.rpc(1, "exchange.declare", exchange="probe-dlx", type="fanout")
    c.rpc(1, "queue.declare", queue="probe-dl-target")
    c.rpc(1, "queue.bind", queue="probe-dl-target", exchange="probe-dlx")
    c.rpc(1, "queue.declare", queue=name, arguments={"x-dead-letter-exchange": "probe-dlx", **src_args})


def _dlx_cleanup(s, name="probe-dl-src"):
    s.clean(queues=[name, "probe-dl-target"], exchanges=["probe-dlx"])


DL_PROPS = {"content_type": "text/plain", "headers": {"app": "probe"}, "expiration": "60000",
            "message_id": "m1"}


@scenario("deadletter", "reject")
def _(s):
    """reject(requeue=false) from probe-dl-src -> probe-dlx -> get from probe-dl-target"""
    c = s.conn()
    c.recording = False
    _dlx_setup(s, c, {})
    c.recording = True
    c.publish(1, "", "probe-dl-src", "dead", props=DL_PROPS)
    c.send(1, "basic.get", queue="probe-dl-src")
    c.drain(quiet=0.3)
    c.send(1, "basic.reject", delivery_tag=1, requeue=False)
    time.sleep(0.2)
    c.send(1, "basic.get", queue="probe-dl-target", no_ack=True)
    c.drain()
    _dlx_cleanup(s)


@scenario("deadletter", "nack")
def _(s):
    """nack(requeue=false) -> dead-lettered, reason"""
    c = s.conn()
    c.recording = False
    _dlx_setup(s, c, {})
    c.recording = True
    c.publish(1, "", "probe-dl-src", "dead")
    c.send(1, "basic.get", queue="probe-dl-src")
    c.drain(quiet=0.3)
    c.send(1, "basic.nack", delivery_tag=1, requeue=False)
    time.sleep(0.2)
    c.send(1, "basic.get", queue="probe-dl-target", no_ack=True)
    c.drain()
    _dlx_cleanup(s)


@scenario("deadletter", "queue-ttl")
def _(s):
    """x-message-ttl=50 queue; message (with expiration 60000) expires -> dead-lettered"""
    c = s.conn()
    c.recording = False
    _dlx_setup(s, c, {"x-message-ttl": 50})
    c.recording = True
    c.publish(1, "", "probe-dl-src", "dead", props=DL_PROPS)
    time.sleep(0.5)
    c.send(1, "basic.get", queue="probe-dl-target", no_ack=True)
    c.drain()
    _dlx_cleanup(s)


@scenario("deadletter", "per-message-ttl")
def _(s):
    """per-message expiration=50 -> dead-lettered; expiration property removed? original-expiration?"""
    c = s.conn()
    c.recording = False
    _dlx_setup(s, c, {})
    c.recording = True
    c.publish(1, "", "probe-dl-src", "dead", props={**DL_PROPS, "expiration": "50"})
    time.sleep(0.5)
    c.send(1, "basic.get", queue="probe-dl-src", no_ack=True)  # triggers expiry at head if lazy
    time.sleep(0.2)
    c.send(1, "basic.get", queue="probe-dl-target", no_ack=True)
    c.drain()
    _dlx_cleanup(s)


@scenario("deadletter", "max-length-drop-head")
def _(s):
    """x-max-length=1: publish m1, m2 -> m1 dead-lettered (reason maxlen)"""
    c = s.conn()
    c.recording = False
    _dlx_setup(s, c, {"x-max-length": 1})
    c.recording = True
    c.publish(1, "", "probe-dl-src", "m1")
    c.publish(1, "", "probe-dl-src", "m2")
    time.sleep(0.2)
    c.send(1, "basic.get", queue="probe-dl-target", no_ack=True)
    c.drain()
    _dlx_cleanup(s)


@scenario("deadletter", "max-length-reject-publish")
def _(s):
    """x-max-length=1 x-overflow=reject-publish, confirm mode: publish m1, m2 -> nack?"""
    c = s.conn()
    c.recording = False
    _dlx_setup(s, c, {"x-max-length": 1, "x-overflow": "reject-publish"})
    c.recording = True
    c.rpc(1, "confirm.select")
    c.publish(1, "", "probe-dl-src", "m1")
    c.publish(1, "", "probe-dl-src", "m2")
    time.sleep(0.2)
    c.send(1, "basic.get", queue="probe-dl-target", no_ack=True)
    c.drain()
    _dlx_cleanup(s)


@scenario("deadletter", "dlx-routing-key")
def _(s):
    """x-dead-letter-routing-key=newkey: dead-lettered message routing key and x-death routing-keys"""
    s.clean(queues=["probe-dl-src", "probe-dl-target"])
    c = s.conn()
    c.recording = False
    c.rpc(1, "queue.declare", queue="probe-dl-target")
    c.rpc(1, "queue.bind", queue="probe-dl-target", exchange="amq.direct", routing_key="newkey")
    c.rpc(1, "queue.declare", queue="probe-dl-src", arguments={
        "x-dead-letter-exchange": "amq.direct", "x-dead-letter-routing-key": "newkey"})
    c.rpc(1, "queue.bind", queue="probe-dl-src", exchange="amq.topic", routing_key="orig.#")
    c.recording = True
    c.publish(1, "amq.topic", "orig.key", "dead", props={"headers": {"CC": ["cc.one"]}})
    c.send(1, "basic.get", queue="probe-dl-src")
    c.drain(quiet=0.3)
    c.send(1, "basic.reject", delivery_tag=1, requeue=False)
    time.sleep(0.2)
    c.send(1, "basic.get", queue="probe-dl-target", no_ack=True)
    c.drain()
    s.clean(queues=["probe-dl-src", "probe-dl-target"])


@scenario("deadletter", "twice-same-queue")
def _(s):
    """dead-letter the same message twice through the same queue (reject, move back, reject) -> count"""
    s.clean(queues=["probe-dl-src", "probe-dl-target"])
    c = s.conn()
    c.recording = False
    c.rpc(1, "queue.declare", queue="probe-dl-target")
    c.rpc(1, "queue.declare", queue="probe-dl-src", arguments={
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "probe-dl-target"})
    c.recording = True
    c.publish(1, "", "probe-dl-src", "dead")
    c.send(1, "basic.get", queue="probe-dl-src")
    c.drain(quiet=0.3)
    c.send(1, "basic.reject", delivery_tag=1, requeue=False)
    time.sleep(0.2)
    c.note("consume the dead-lettered message with a raw consumer and republish it, headers intact, to probe-dl-src")
    c.send(1, "basic.get", queue="probe-dl-target", no_ack=True)
    evs = c.drain(quiet=0.3)
    hdr = next((e for e in evs if e["kind"] == "header"), None)
    if hdr is None:
        return
    props = _retype_props(hdr["properties"])
    time.sleep(1.5)  # so that a changed x-death time would be visible (seconds resolution)
    c.publish(1, "", "probe-dl-src", "dead", props=props)
    c.send(1, "basic.get", queue="probe-dl-src")
    evs = c.drain(quiet=0.3)
    tag = next((e["fields"]["delivery_tag"] for e in evs if e.get("method") == "basic.get-ok"), 0)
    c.send(1, "basic.reject", delivery_tag=tag, requeue=False)
    time.sleep(0.2)
    c.send(1, "basic.get", queue="probe-dl-target", no_ack=True)
    c.drain()
    s.clean(queues=["probe-dl-src", "probe-dl-target"])


def _retype_props(props: dict) -> dict:
    """decoded properties -> encodable (tables keep their type letters)."""
    out = dict(props)
    if "headers" in out:
        out["headers"] = {k: _retype(v) for k, v in out["headers"].items()}
    return out


def _retype(tv):
    t, v = tv
    if t == "F":
        return ("F", {k: _retype(x) for k, x in v.items()})
    if t == "A":
        return ("A", [_retype(x) for x in v])
    if t == "D":
        return ("D", tuple(v))
    return (t, v)


@scenario("deadletter", "two-queues-chain")
def _(s):
    """dead-letter from probe-dl-a -> probe-dl-b (reject) -> probe-dl-target (ttl): x-death order"""
    s.clean(queues=["probe-dl-a", "probe-dl-b", "probe-dl-target"])
    c = s.conn()
    c.recording = False
    c.rpc(1, "queue.declare", queue="probe-dl-target")
    c.rpc(1, "queue.declare", queue="probe-dl-b", arguments={
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "probe-dl-target",
        "x-message-ttl": 50})
    c.rpc(1, "queue.declare", queue="probe-dl-a", arguments={
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "probe-dl-b"})
    c.recording = True
    c.publish(1, "", "probe-dl-a", "dead")
    c.send(1, "basic.get", queue="probe-dl-a")
    c.drain(quiet=0.3)
    c.send(1, "basic.reject", delivery_tag=1, requeue=False)
    time.sleep(0.5)
    c.send(1, "basic.get", queue="probe-dl-target", no_ack=True)
    c.drain()
    s.clean(queues=["probe-dl-a", "probe-dl-b", "probe-dl-target"])


@scenario("deadletter", "cycle-dropped")
def _(s):
    """queue dead-letters to itself via TTL (cycle, no reject) -> message dropped?"""
    s.clean(queues=["probe-dl-cycle"])
    c = s.conn()
    c.recording = False
    c.rpc(1, "queue.declare", queue="probe-dl-cycle", arguments={
        "x-dead-letter-exchange": "", "x-message-ttl": 50})
    c.recording = True
    c.publish(1, "", "probe-dl-cycle", "cyc")
    time.sleep(0.6)
    c.send(1, "queue.declare", queue="probe-dl-cycle", passive=True)
    c.drain()
    s.clean(queues=["probe-dl-cycle"])


@scenario("deadletter", "quorum-delivery-limit")
def _(s):
    """quorum queue x-delivery-limit=1: reject(requeue=true) twice -> dead-lettered (reason delivery_limit)"""
    s.clean(queues=["probe-dl-qq", "probe-dl-target"], exchanges=["probe-dlx"])
    c = s.conn()
    c.recording = False
    c.rpc(1, "exchange.declare", exchange="probe-dlx", type="fanout")
    c.rpc(1, "queue.declare", queue="probe-dl-target")
    c.rpc(1, "queue.bind", queue="probe-dl-target", exchange="probe-dlx")
    c.recording = True
    c.send(1, "queue.declare", queue="probe-dl-qq", durable=True, arguments={
        "x-queue-type": "quorum", "x-delivery-limit": 1, "x-dead-letter-exchange": "probe-dlx"})
    c.drain(quiet=1.0)
    c.publish(1, "", "probe-dl-qq", "dead", props=DL_PROPS)
    time.sleep(0.2)
    for tag in (1, 2):
        c.send(1, "basic.get", queue="probe-dl-qq")
        c.drain(quiet=0.5)
        c.send(1, "basic.reject", delivery_tag=tag, requeue=True)
        time.sleep(0.2)
    c.send(1, "basic.get", queue="probe-dl-qq")
    c.drain(quiet=0.5)
    time.sleep(0.3)
    c.send(1, "basic.get", queue="probe-dl-target", no_ack=True)
    c.drain()
    s.clean(queues=["probe-dl-qq", "probe-dl-target"], exchanges=["probe-dlx"])


@scenario("deadletter", "quorum-reject")
def _(s):
    """quorum queue with DLX: reject(requeue=false) -> headers of the dead-lettered message"""
    s.clean(queues=["probe-dl-qq", "probe-dl-target"], exchanges=["probe-dlx"])
    c = s.conn()
    c.recording = False
    c.rpc(1, "exchange.declare", exchange="probe-dlx", type="fanout")
    c.rpc(1, "queue.declare", queue="probe-dl-target")
    c.rpc(1, "queue.bind", queue="probe-dl-target", exchange="probe-dlx")
    c.rpc(1, "queue.declare", queue="probe-dl-qq", durable=True, arguments={
        "x-queue-type": "quorum", "x-dead-letter-exchange": "probe-dlx"})
    c.recording = True
    c.publish(1, "", "probe-dl-qq", "dead", props=DL_PROPS)
    time.sleep(0.2)
    c.send(1, "basic.get", queue="probe-dl-qq")
    c.drain(quiet=0.5)
    c.send(1, "basic.reject", delivery_tag=1, requeue=False)
    time.sleep(0.3)
    c.send(1, "basic.get", queue="probe-dl-target", no_ack=True)
    c.drain()
    s.clean(queues=["probe-dl-qq", "probe-dl-target"], exchanges=["probe-dlx"])


@scenario("deadletter", "quorum-requeue-delivery-count")
def _(s):
    """quorum queue: reject(requeue=true) then get -> x-delivery-count header?"""
    s.clean(queues=["probe-dl-qq"])
    c = s.conn()
    c.recording = False
    c.rpc(1, "queue.declare", queue="probe-dl-qq", durable=True, arguments={"x-queue-type": "quorum"})
    c.recording = True
    c.publish(1, "", "probe-dl-qq", "m")
    time.sleep(0.2)
    c.send(1, "basic.get", queue="probe-dl-qq")
    c.drain(quiet=0.5)
    c.send(1, "basic.reject", delivery_tag=1, requeue=True)
    time.sleep(0.2)
    c.send(1, "basic.get", queue="probe-dl-qq")
    c.drain()
    s.clean(queues=["probe-dl-qq"])


@scenario("deadletter", "dlx-missing-exchange")
def _(s):
    """x-dead-letter-exchange=probe-x-missing; reject(requeue=false) -> silently dropped?"""
    s.clean(queues=["probe-dl-src"], exchanges=["probe-x-missing"])
    c = s.conn()
    c.recording = False
    c.rpc(1, "queue.declare", queue="probe-dl-src", arguments={"x-dead-letter-exchange": "probe-x-missing"})
    c.recording = True
    c.publish(1, "", "probe-dl-src", "m")
    c.send(1, "basic.get", queue="probe-dl-src")
    c.drain(quiet=0.3)
    c.send(1, "basic.reject", delivery_tag=1, requeue=False)
    c.send(1, "queue.declare", queue="probe-dl-src", passive=True)
    c.drain()
    s.clean(queues=["probe-dl-src"])


# ---------------------------------------------------------------- alarm
# Needs a broker with a resource alarm in effect (RabbitMQ:
# vm_memory_high_watermark.absolute = 1).  Not run by default against --port.

@scenario("alarm", "connect-and-wait")
def _(s):
    """connect (with connection.blocked capability) during a memory alarm; do nothing"""
    c = s.conn()
    c.drain(quiet=1.0)


@scenario("alarm", "declare-before-publish")
def _(s):
    """during the alarm: queue.declare (no publish yet)"""
    c = s.conn()
    c.send(1, "queue.declare", queue="", exclusive=True)
    c.drain(quiet=1.0)


@scenario("alarm", "publish-with-capability")
def _(s):
    """during the alarm: publish, then queue.declare"""
    c = s.conn()
    c.publish(1, "amq.direct", "nowhere", "x")
    c.drain(quiet=1.0)
    c.send(1, "queue.declare", queue="", exclusive=True)
    c.drain(quiet=1.0)


@scenario("alarm", "publish-without-capability")
def _(s):
    """during the alarm, client without connection.blocked capability: publish, then queue.declare"""
    c = s.conn(client_props={"product": "warren-probe"})
    c.publish(1, "amq.direct", "nowhere", "x")
    c.drain(quiet=1.0)
    c.send(1, "queue.declare", queue="", exclusive=True)
    c.drain(quiet=1.0)


@scenario("alarm", "blocked-then-close")
def _(s):
    """during the alarm: publish (blocked), then connection.close"""
    c = s.conn()
    c.publish(1, "amq.direct", "nowhere", "x")
    c.drain(quiet=0.5)
    c.send(0, "connection.close", reply_code=200, reply_text="bye")
    c.drain(quiet=2.0, reply_close=False)


@scenario("alarm", "blocked-heartbeats", slow=True)
def _(s):
    """heartbeat=2, publish during the alarm (blocked), then stay silent: heartbeats? closed?"""
    c = s.conn(heartbeat=2)
    c.publish(1, "amq.direct", "nowhere", "x")
    c.drain(quiet=8.0, limit=10.0)


# ---------------------------------------------------------------- permissions
# Needs the users of tools/conformance/permissions.json (a RabbitMQ definitions file: RabbitMQ's
# `load_definitions`, Warren's `load_definitions` key). perm-none, perm-configure, perm-write and
# perm-read have ".*" for the one permission their name says and "" (nothing) for the others;
# each operation is tried by each of them. Resources are made by guest first.

PERM_USERS = ["perm-none", "perm-configure", "perm-write", "perm-read"]


def _perm_setup(s):
    s.clean(queues=["probe-perm-q", "probe-perm-new"],
            exchanges=["probe-perm-x", "probe-perm-y", "probe-perm-new", "probe-perm-t"])
    c = s.conn("setup")
    c.recording = False
    c.rpc(1, "exchange.declare", exchange="probe-perm-x", type="direct")
    c.rpc(1, "exchange.declare", exchange="probe-perm-y", type="fanout")
    c.rpc(1, "exchange.declare", exchange="probe-perm-t", type="topic")
    c.rpc(1, "queue.declare", queue="probe-perm-q")
    c.rpc(1, "queue.bind", queue="probe-perm-q", exchange="probe-perm-x", routing_key="k")
    c.rpc(1, "exchange.bind", destination="probe-perm-y", source="probe-perm-x", routing_key="k")
    c.publish(1, "", "probe-perm-q", b"m")
    c.close()
    s.events = [e for e in s.events if e.get("conn") != "setup"]


PERM_OPS = {
    "exchange-declare": ("exchange.declare of a new exchange",
                         lambda c: c.send(1, "exchange.declare", exchange="probe-perm-new", type="direct")),
    "exchange-declare-passive": ("exchange.declare passive",
                                 lambda c: c.send(1, "exchange.declare", exchange="probe-perm-x", passive=True)),
    "exchange-declare-amq": ("exchange.declare of amq.new",
                             lambda c: c.send(1, "exchange.declare", exchange="amq.new", type="direct")),
    "exchange-declare-ae": ("exchange.declare with alternate-exchange",
                            lambda c: c.send(1, "exchange.declare", exchange="probe-perm-new", type="direct",
                                             arguments={"alternate-exchange": "probe-perm-y"})),
    "exchange-delete": ("exchange.delete", lambda c: c.send(1, "exchange.delete", exchange="probe-perm-y")),
    "exchange-bind": ("exchange.bind y <- x",
                      lambda c: c.send(1, "exchange.bind", destination="probe-perm-y", source="probe-perm-x",
                                       routing_key="k2")),
    "exchange-unbind": ("exchange.unbind y <- x",
                        lambda c: c.send(1, "exchange.unbind", destination="probe-perm-y", source="probe-perm-x",
                                         routing_key="k")),
    "exchange-bind-default": ("exchange.bind to the default exchange",
                              lambda c: c.send(1, "exchange.bind", destination="", source="probe-perm-x")),
    "queue-declare": ("queue.declare of a new queue", lambda c: c.send(1, "queue.declare", queue="probe-perm-new")),
    "queue-declare-passive": ("queue.declare passive",
                              lambda c: c.send(1, "queue.declare", queue="probe-perm-q", passive=True)),
    "queue-declare-dlx": ("queue.declare with x-dead-letter-exchange",
                          lambda c: c.send(1, "queue.declare", queue="probe-perm-new",
                                           arguments={"x-dead-letter-exchange": "probe-perm-y"})),
    "queue-bind": ("queue.bind", lambda c: c.send(1, "queue.bind", queue="probe-perm-q", exchange="probe-perm-x",
                                                  routing_key="k2")),
    "queue-bind-default": ("queue.bind to the default exchange",
                           lambda c: c.send(1, "queue.bind", queue="probe-perm-q", exchange="", routing_key="k")),
    "queue-unbind": ("queue.unbind", lambda c: c.send(1, "queue.unbind", queue="probe-perm-q",
                                                      exchange="probe-perm-x", routing_key="k")),
    "queue-purge": ("queue.purge", lambda c: c.send(1, "queue.purge", queue="probe-perm-q")),
    "queue-delete": ("queue.delete", lambda c: c.send(1, "queue.delete", queue="probe-perm-q")),
    "publish": ("confirm.select, basic.publish to an exchange",
                lambda c: (c.rpc(1, "confirm.select"), c.publish(1, "probe-perm-x", "k", b"m"))),
    "publish-default": ("confirm.select, basic.publish to the default exchange",
                        lambda c: (c.rpc(1, "confirm.select"), c.publish(1, "", "probe-perm-q", b"m"))),
    "consume": ("basic.consume", lambda c: c.send(1, "basic.consume", queue="probe-perm-q", consumer_tag="t",
                                                  no_ack=True)),
    "get": ("basic.get", lambda c: c.send(1, "basic.get", queue="probe-perm-q", no_ack=True)),
}


def _perm_scenario(op, user):
    doc, fn = PERM_OPS[op]

    def run(s):
        _perm_setup(s)
        c = s.conn(user=user, password="probe")
        fn(c)
        c.drain()
    scenario("permissions", f"{op}-as-{user}")(run)
    SCENARIOS[-1].doc = f"as {user}: {doc}"


for _op in PERM_OPS:
    for _user in PERM_USERS:
        _perm_scenario(_op, _user)


@scenario("permissions", "vhost-without-permissions")
def _(s):
    """connection.open of '/' as perm-novhost, who has no permissions there"""
    c = s.conn(handshake=False)
    c.recording = False
    c.send_raw(W.PROTOCOL_HEADER, "protocol header AMQP 0-9-1")
    c.expect(0, "connection.start")
    c.send(0, "connection.start-ok", client_properties=CLIENT_PROPS, mechanism="PLAIN",
           response="\0perm-novhost\0probe", locale="en_US")
    tune = c.expect(0, "connection.tune")["fields"]
    c.send(0, "connection.tune-ok", channel_max=tune["channel_max"], frame_max=tune["frame_max"], heartbeat=0)
    c.recording = True
    c.send(0, "connection.open", virtual_host="/")
    c.drain()


@scenario("permissions", "topic-publish-allowed-and-refused")
def _(s):
    """as perm-topic (topic write ^a\\.): confirm.select, publish amq.topic 'a.b', then 'b.c'"""
    _perm_setup(s)
    c = s.conn(user="perm-topic", password="probe")
    c.rpc(1, "confirm.select")
    c.publish(1, "amq.topic", "a.b", b"m")
    c.publish(1, "amq.topic", "b.c", b"m")
    c.drain()


@scenario("permissions", "topic-publish-other-topic-exchange")
def _(s):
    """as perm-topic: publish to another topic exchange, with a key amq.topic's permission refuses"""
    _perm_setup(s)
    c = s.conn(user="perm-topic", password="probe")
    c.rpc(1, "confirm.select")
    c.publish(1, "probe-perm-t", "b.c", b"m")
    c.drain()


@scenario("permissions", "topic-bind-read-with-username-variable")
def _(s):
    """as perm-topic (topic read ^{username}\\.): queue.bind to amq.topic 'perm-topic.#', then 'x.#'"""
    _perm_setup(s)
    c = s.conn(user="perm-topic", password="probe")
    c.send(1, "queue.bind", queue="probe-perm-q", exchange="amq.topic", routing_key="perm-topic.#")
    c.drain()
    c.send(1, "queue.bind", queue="probe-perm-q", exchange="amq.topic", routing_key="x.#")
    c.drain()


# ======================================================================
# Areas that need a specially configured broker; run only when asked for by --only
# (or, with --start-rabbitmq, against a second private node configured for them).
PERMISSIONS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "permissions.json")
SPECIAL_AREAS = {"alarm": ["vm_memory_high_watermark.absolute = 1"],
                 "permissions": [f"load_definitions = {PERMISSIONS_FILE}"]}


def select(only: str | None, include_special: bool = False):
    if not only:
        return [s for s in SCENARIOS if include_special or s.area not in SPECIAL_AREAS]
    keys = [k.strip() for k in only.split(",") if k.strip()]
    return [s for s in SCENARIOS if any(k == s.area or k in s.id for k in keys)]


def run_all(host, port, scenarios, opts, out=sys.stdout):
    """Run scenarios (slow ones concurrently in threads, the rest one by one) and
    return results in catalog order; print transcripts to ``out`` as they complete in order."""
    from concurrent.futures import ThreadPoolExecutor
    slow = [sc for sc in scenarios if sc.slow]
    pool = ThreadPoolExecutor(max_workers=max(1, min(32, len(slow))))
    futures = {sc.id: pool.submit(sc.run, host, port, opts) for sc in slow}
    done = {}
    for sc in scenarios:
        if not sc.slow:
            done[sc.id] = sc.run(host, port, opts)
    for k, f in futures.items():
        done[k] = f.result()
    pool.shutdown()
    results = []
    for sc in scenarios:
        events = done[sc.id]
        res = {"id": sc.id, "area": sc.area, "name": sc.name, "doc": sc.doc,
               "seconds": round(sc.elapsed, 1), "events": events,
               "transcript": transcript(events, norm=not opts.raw)}
        results.append(res)
        if out:
            print(f"=== {sc.id}: {sc.doc}  [{sc.elapsed:.1f}s]", file=out)
            for line in res["transcript"]:
                print("    " + line, file=out)
            out.flush()
    return results


def markdown(results, received_only=False) -> str:
    """Per-area tables.  The transcript column omits the routine handshake lines
    (protocol header, start-ok); received_only=True keeps only what came back."""
    lines = []
    area = None
    for r in results:
        if r["area"] != area:
            area = r["area"]
            lines += ["", f"### {area}", "",
                      "| scenario | description | transcript (`->` sent, `<-` received) |", "|---|---|---|"]
        shown = []
        for ln in r["transcript"]:
            body = re.sub(r"^\[[A-Z]\] ", "", ln)
            if body.startswith("-> ch0 connection.start-ok") or body == "-> protocol header AMQP 0-9-1":
                continue
            if received_only and body.startswith("->"):
                continue
            shown.append(ln)
        cell = "<br>".join(_md_escape(_clip(x)) for x in shown) or "(nothing)"
        lines.append(f"| `{r['name']}` | {_md_escape(r['doc'])} | {cell} |")
    return "\n".join(lines) + "\n"


def _clip(s: str, n: int = 700) -> str:
    return s if len(s) <= n else s[:n] + f"…({len(s)} chars)"


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("`", "\\`")


# Scenarios whose transcript legitimately varies between runs of the same broker.
RACY = {
    "handshake.heartbeat-1s-silent-client": "number of heartbeats",
    "frames.frame-larger-than-frame-max-heartbeat-3": "number of heartbeats",
    "frames.client-connection-close-heartbeat-3": "number of heartbeats",
    "alarm.blocked-heartbeats": "number of heartbeats",
    "frames.channel-close-then-more-frames": "frame after channel.close: dropped or 504, depending on timing",
    "basic.cancel-notify-on-queue-delete": "basic.cancel vs queue.delete-ok order",
    "basic.confirm-delivery-tags": "confirms may be merged (multiple=true)",
    "basic.mandatory-no-route-confirm": "confirms may be merged (multiple=true)",
    "deadletter.max-length-reject-publish": "nack multiple flag",
}


def diff(a_path, b_path) -> int:
    a = {r["id"]: r for r in json.load(open(a_path))["results"]}
    b = {r["id"]: r for r in json.load(open(b_path))["results"]}
    bad = 0
    for k in list(a) + [k for k in b if k not in a]:
        ta = [ln for ln in a.get(k, {}).get("transcript", ["(missing)"])]
        tb = [ln for ln in b.get(k, {}).get("transcript", ["(missing)"])]
        if ta != tb:
            if k in RACY:
                print(f"=== {k}  (timing-dependent: {RACY[k]}; not counted)")
            else:
                bad += 1
                print(f"=== {k}")
            import difflib
            for ln in difflib.unified_diff(ta, tb, a_path, b_path, lineterm="", n=1):
                print("    " + ln)
    print(f"{bad} scenario(s) differ")
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int)
    ap.add_argument("--start-rabbitmq", action="store_true",
                    help="start a private RabbitMQ node (rabbitmq.py) with max_message_size and use it")
    ap.add_argument("--json", help="write results (raw events + transcripts) to this file")
    ap.add_argument("--markdown", help="write per-area markdown tables to this file")
    ap.add_argument("--only", help="comma-separated areas or substrings of scenario ids")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--raw", action="store_true", help="do not normalize variable values in transcripts")
    ap.add_argument("--quiet", action="store_true", help="do not print transcripts")
    ap.add_argument("--no-events", action="store_true",
                    help="--json keeps only the (normalized) transcripts, not the raw decoded events")
    ap.add_argument("--rabbitmq-conf", action="append", default=[],
                    help="extra rabbitmq.conf line for --start-rabbitmq (repeatable)")
    ap.add_argument("--max-message-size", type=int, default=1000,
                    help="the broker's configured max_message_size (default 1000)")
    ap.add_argument("--diff", nargs=2, metavar=("A.json", "B.json"), help="compare two --json outputs")
    opts = ap.parse_args(argv)

    if opts.diff:
        return diff(*opts.diff)
    scs = select(opts.only, include_special=opts.start_rabbitmq)
    if opts.list:
        for sc in scs:
            print(f"{sc.id:60s} {sc.doc}")
        return 0
    broker = {}
    out = None if opts.quiet else sys.stdout
    if opts.start_rabbitmq:
        from rabbitmq import RabbitNode
        base_conf = [f"max_message_size = {opts.max_message_size}"] + opts.rabbitmq_conf
        results = []
        groups = [(None, [s for s in scs if s.area not in SPECIAL_AREAS])]
        groups += [(a, [s for s in scs if s.area == a]) for a in SPECIAL_AREAS]
        for area, group in groups:
            if not group:
                continue
            conf = base_conf + (SPECIAL_AREAS[area] if area else [])
            with RabbitNode(extra_conf=conf) as node:
                opts.host, opts.port = node.host, node.port
                broker.setdefault("started", []).append({"node": node.nodename, "conf": conf})
                results += run_all(node.host, node.port, group, opts, out=out)
    elif not opts.port:
        ap.error("--port or --start-rabbitmq is required")
    else:
        results = run_all(opts.host, opts.port, scs, opts, out=out)
    broker.update(host=opts.host, port=opts.port)
    for r in results:
        if r["id"] == "handshake.connection-start":
            for ev in r["events"]:
                if ev.get("method") == "connection.start":
                    sp = ev["fields"]["server_properties"]
                    broker.update(product=sp.get("product", [None, None])[1],
                                  version=sp.get("version", [None, None])[1])
    if opts.json:
        with open(opts.json, "w") as f:
            if opts.no_events:
                results = [{k: v for k, v in r.items() if k != "events"} for r in results]
            json.dump({"broker": broker, "max_message_size": opts.max_message_size,
                       "results": results}, f, indent=1, default=str)
    if opts.markdown:
        with open(opts.markdown, "w") as f:
            f.write(markdown(results))
    print(f"{len(results)} scenarios run against {broker}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A tiny, self-contained AMQP 0-9-1 frame encoder/decoder (python struct only).

Used by probe.py.  Everything decoded keeps the wire types: field-table values
are ``(type_letter, value)`` pairs so that e.g. an ``l`` (int64) and an ``I``
(int32) stay distinguishable.

Encoding accepts plain python values (bool->t, int->I or l, str->S, bytes->x,
float->d, dict->F, list->A, None->V) or an explicit ``(letter, value)`` pair.
"""

from __future__ import annotations

import re
import struct

FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE
PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"

# class id -> (name, {method id: (name, [(field, type), ...])})
_SPEC = {
    10: ("connection", {
        10: ("start", [("version_major", "octet"), ("version_minor", "octet"),
                       ("server_properties", "table"), ("mechanisms", "longstr"),
                       ("locales", "longstr")]),
        11: ("start-ok", [("client_properties", "table"), ("mechanism", "shortstr"),
                          ("response", "longstr"), ("locale", "shortstr")]),
        20: ("secure", [("challenge", "longstr")]),
        21: ("secure-ok", [("response", "longstr")]),
        30: ("tune", [("channel_max", "short"), ("frame_max", "long"), ("heartbeat", "short")]),
        31: ("tune-ok", [("channel_max", "short"), ("frame_max", "long"), ("heartbeat", "short")]),
        40: ("open", [("virtual_host", "shortstr"), ("capabilities", "shortstr"), ("insist", "bit")]),
        41: ("open-ok", [("known_hosts", "shortstr")]),
        50: ("close", [("reply_code", "short"), ("reply_text", "shortstr"),
                       ("class_id", "short"), ("method_id", "short")]),
        51: ("close-ok", []),
        60: ("blocked", [("reason", "shortstr")]),
        61: ("unblocked", []),
        70: ("update-secret", [("new_secret", "longstr"), ("reason", "shortstr")]),
        71: ("update-secret-ok", []),
    }),
    20: ("channel", {
        10: ("open", [("out_of_band", "shortstr")]),
        11: ("open-ok", [("channel_id", "longstr")]),
        20: ("flow", [("active", "bit")]),
        21: ("flow-ok", [("active", "bit")]),
        40: ("close", [("reply_code", "short"), ("reply_text", "shortstr"),
                       ("class_id", "short"), ("method_id", "short")]),
        41: ("close-ok", []),
    }),
    30: ("access", {
        10: ("request", [("realm", "shortstr"), ("exclusive", "bit"), ("passive", "bit"),
                         ("active", "bit"), ("write", "bit"), ("read", "bit")]),
        11: ("request-ok", [("ticket", "short")]),
    }),
    40: ("exchange", {
        10: ("declare", [("ticket", "short"), ("exchange", "shortstr"), ("type", "shortstr"),
                         ("passive", "bit"), ("durable", "bit"), ("auto_delete", "bit"),
                         ("internal", "bit"), ("nowait", "bit"), ("arguments", "table")]),
        11: ("declare-ok", []),
        20: ("delete", [("ticket", "short"), ("exchange", "shortstr"), ("if_unused", "bit"),
                        ("nowait", "bit")]),
        21: ("delete-ok", []),
        30: ("bind", [("ticket", "short"), ("destination", "shortstr"), ("source", "shortstr"),
                      ("routing_key", "shortstr"), ("nowait", "bit"), ("arguments", "table")]),
        31: ("bind-ok", []),
        40: ("unbind", [("ticket", "short"), ("destination", "shortstr"), ("source", "shortstr"),
                        ("routing_key", "shortstr"), ("nowait", "bit"), ("arguments", "table")]),
        51: ("unbind-ok", []),
    }),
    50: ("queue", {
        10: ("declare", [("ticket", "short"), ("queue", "shortstr"), ("passive", "bit"),
                         ("durable", "bit"), ("exclusive", "bit"), ("auto_delete", "bit"),
                         ("nowait", "bit"), ("arguments", "table")]),
        11: ("declare-ok", [("queue", "shortstr"), ("message_count", "long"),
                            ("consumer_count", "long")]),
        20: ("bind", [("ticket", "short"), ("queue", "shortstr"), ("exchange", "shortstr"),
                      ("routing_key", "shortstr"), ("nowait", "bit"), ("arguments", "table")]),
        21: ("bind-ok", []),
        30: ("purge", [("ticket", "short"), ("queue", "shortstr"), ("nowait", "bit")]),
        31: ("purge-ok", [("message_count", "long")]),
        40: ("delete", [("ticket", "short"), ("queue", "shortstr"), ("if_unused", "bit"),
                        ("if_empty", "bit"), ("nowait", "bit")]),
        41: ("delete-ok", [("message_count", "long")]),
        50: ("unbind", [("ticket", "short"), ("queue", "shortstr"), ("exchange", "shortstr"),
                        ("routing_key", "shortstr"), ("arguments", "table")]),
        51: ("unbind-ok", []),
    }),
    60: ("basic", {
        10: ("qos", [("prefetch_size", "long"), ("prefetch_count", "short"), ("global", "bit")]),
        11: ("qos-ok", []),
        20: ("consume", [("ticket", "short"), ("queue", "shortstr"), ("consumer_tag", "shortstr"),
                         ("no_local", "bit"), ("no_ack", "bit"), ("exclusive", "bit"),
                         ("nowait", "bit"), ("arguments", "table")]),
        21: ("consume-ok", [("consumer_tag", "shortstr")]),
        30: ("cancel", [("consumer_tag", "shortstr"), ("nowait", "bit")]),
        31: ("cancel-ok", [("consumer_tag", "shortstr")]),
        40: ("publish", [("ticket", "short"), ("exchange", "shortstr"), ("routing_key", "shortstr"),
                         ("mandatory", "bit"), ("immediate", "bit")]),
        50: ("return", [("reply_code", "short"), ("reply_text", "shortstr"),
                        ("exchange", "shortstr"), ("routing_key", "shortstr")]),
        60: ("deliver", [("consumer_tag", "shortstr"), ("delivery_tag", "longlong"),
                         ("redelivered", "bit"), ("exchange", "shortstr"),
                         ("routing_key", "shortstr")]),
        70: ("get", [("ticket", "short"), ("queue", "shortstr"), ("no_ack", "bit")]),
        71: ("get-ok", [("delivery_tag", "longlong"), ("redelivered", "bit"),
                        ("exchange", "shortstr"), ("routing_key", "shortstr"),
                        ("message_count", "long")]),
        72: ("get-empty", [("cluster_id", "shortstr")]),
        80: ("ack", [("delivery_tag", "longlong"), ("multiple", "bit")]),
        90: ("reject", [("delivery_tag", "longlong"), ("requeue", "bit")]),
        100: ("recover-async", [("requeue", "bit")]),
        110: ("recover", [("requeue", "bit")]),
        111: ("recover-ok", []),
        120: ("nack", [("delivery_tag", "longlong"), ("multiple", "bit"), ("requeue", "bit")]),
    }),
    85: ("confirm", {
        10: ("select", [("nowait", "bit")]),
        11: ("select-ok", []),
    }),
    90: ("tx", {
        10: ("select", []), 11: ("select-ok", []),
        20: ("commit", []), 21: ("commit-ok", []),
        30: ("rollback", []), 31: ("rollback-ok", []),
    }),
}

METHODS: dict[str, tuple[int, int, list]] = {}
METHOD_NAMES: dict[tuple[int, int], str] = {}
for _cid, (_cname, _ms) in _SPEC.items():
    for _mid, (_mname, _fields) in _ms.items():
        METHODS[f"{_cname}.{_mname}"] = (_cid, _mid, _fields)
        METHOD_NAMES[(_cid, _mid)] = f"{_cname}.{_mname}"

# basic content properties, in flag order (bit 15 first)
BASIC_PROPERTIES = [
    ("content_type", "shortstr"), ("content_encoding", "shortstr"), ("headers", "table"),
    ("delivery_mode", "octet"), ("priority", "octet"), ("correlation_id", "shortstr"),
    ("reply_to", "shortstr"), ("expiration", "shortstr"), ("message_id", "shortstr"),
    ("timestamp", "timestamp"), ("type", "shortstr"), ("user_id", "shortstr"),
    ("app_id", "shortstr"), ("cluster_id", "shortstr"),
]


class DecodeError(Exception):
    pass


# ---------------------------------------------------------------- encoding
def enc_shortstr(s) -> bytes:
    b = s.encode() if isinstance(s, str) else bytes(s)
    if len(b) > 255:
        raise ValueError("shortstr too long")
    return struct.pack("B", len(b)) + b


def enc_longstr(s) -> bytes:
    b = s.encode() if isinstance(s, str) else bytes(s)
    return struct.pack(">I", len(b)) + b


def enc_value(v) -> bytes:
    if isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str) and len(v[0]) == 1:
        t, x = v
    elif isinstance(v, bool):
        t, x = "t", v
    elif isinstance(v, int):
        t, x = ("I", v) if -2**31 <= v < 2**31 else ("l", v)
    elif isinstance(v, str):
        t, x = "S", v
    elif isinstance(v, (bytes, bytearray)):
        t, x = "x", v
    elif isinstance(v, float):
        t, x = "d", v
    elif isinstance(v, dict):
        t, x = "F", v
    elif isinstance(v, list):
        t, x = "A", v
    elif v is None:
        t, x = "V", None
    else:
        raise TypeError(f"cannot encode {v!r}")
    b = t.encode()
    if t == "t":
        return b + struct.pack("B", 1 if x else 0)
    if t == "b":
        return b + struct.pack(">b", x)
    if t == "B":
        return b + struct.pack(">B", x)
    if t in "sU":
        return b + struct.pack(">h", x)
    if t == "u":
        return b + struct.pack(">H", x)
    if t == "I":
        return b + struct.pack(">i", x)
    if t == "i":
        return b + struct.pack(">I", x)
    if t in "lL":
        return b + struct.pack(">q", x)
    if t == "f":
        return b + struct.pack(">f", x)
    if t == "d":
        return b + struct.pack(">d", x)
    if t == "D":
        return b + struct.pack(">BI", *x)
    if t in "Sx":
        return b + enc_longstr(x)
    if t == "T":
        return b + struct.pack(">Q", x)
    if t == "F":
        return b + enc_table(x)
    if t == "A":
        body = b"".join(enc_value(e) for e in x)
        return b + struct.pack(">I", len(body)) + body
    if t == "V":
        return b
    raise TypeError(f"unknown type letter {t}")


def enc_table(d: dict | None) -> bytes:
    body = b"".join(enc_shortstr(k) + enc_value(v) for k, v in (d or {}).items())
    return struct.pack(">I", len(body)) + body


def enc_fields(fields: list, values: dict) -> bytes:
    out = bytearray()
    bits, nbits = 0, 0
    for name, typ in fields:
        v = values.get(name)
        if typ == "bit":
            bits |= (1 if v else 0) << nbits
            nbits += 1
            continue
        if nbits:
            out.append(bits)
            bits, nbits = 0, 0
        if typ == "octet":
            out += struct.pack("B", v or 0)
        elif typ == "short":
            out += struct.pack(">H", v or 0)
        elif typ == "long":
            out += struct.pack(">I", v or 0)
        elif typ in ("longlong", "timestamp"):
            out += struct.pack(">Q", v or 0)
        elif typ == "shortstr":
            out += enc_shortstr(v or "")
        elif typ == "longstr":
            out += enc_longstr(v or b"")
        elif typ == "table":
            out += v if isinstance(v, (bytes, bytearray)) else enc_table(v)
    if nbits:
        out.append(bits)
    return bytes(out)


def frame(ftype: int, channel: int, payload: bytes, end: int = FRAME_END) -> bytes:
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([end])


def method_payload(name: str, **values) -> bytes:
    cid, mid, fields = METHODS[name]
    unknown = set(values) - {f for f, _ in fields}
    if unknown:
        raise TypeError(f"{name}: unknown fields {unknown}")
    return struct.pack(">HH", cid, mid) + enc_fields(fields, values)


def method_frame(channel: int, name: str, **values) -> bytes:
    return frame(FRAME_METHOD, channel, method_payload(name, **values))


def header_payload(body_size: int, props: dict | None = None, class_id: int = 60) -> bytes:
    props = props or {}
    flags = 0
    out = bytearray()
    for i, (name, typ) in enumerate(BASIC_PROPERTIES):
        if name in props and props[name] is not None:
            flags |= 1 << (15 - i)
            out += enc_fields([(name, typ)], {name: props[name]})
    return struct.pack(">HHQH", class_id, 0, body_size, flags) + bytes(out)


def header_frame(channel: int, body_size: int, props: dict | None = None, class_id: int = 60) -> bytes:
    return frame(FRAME_HEADER, channel, header_payload(body_size, props, class_id))


# ---------------------------------------------------------------- decoding
class Reader:
    def __init__(self, data: bytes):
        self.d = data
        self.i = 0

    def take(self, n: int) -> bytes:
        if self.i + n > len(self.d):
            raise DecodeError(f"truncated: need {n} bytes at {self.i}, have {len(self.d) - self.i}")
        b = self.d[self.i:self.i + n]
        self.i += n
        return b

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def rest(self) -> bytes:
        return self.d[self.i:]


def _text(b: bytes):
    try:
        return b.decode()
    except UnicodeDecodeError:
        return {"hex": b.hex()}


def dec_value(r: Reader):
    t = r.take(1).decode("latin-1")
    if t == "t":
        return (t, r.unpack("B")[0] != 0)
    if t == "b":
        return (t, r.unpack(">b")[0])
    if t == "B":
        return (t, r.unpack(">B")[0])
    if t in "sU":
        return (t, r.unpack(">h")[0])
    if t == "u":
        return (t, r.unpack(">H")[0])
    if t == "I":
        return (t, r.unpack(">i")[0])
    if t == "i":
        return (t, r.unpack(">I")[0])
    if t in "lL":
        return (t, r.unpack(">q")[0])
    if t == "f":
        return (t, r.unpack(">f")[0])
    if t == "d":
        return (t, r.unpack(">d")[0])
    if t == "D":
        return (t, list(r.unpack(">BI")))
    if t in "Sx":
        n = r.unpack(">I")[0]
        return (t, _text(r.take(n)))
    if t == "T":
        return (t, r.unpack(">Q")[0])
    if t == "F":
        return (t, dec_table(r))
    if t == "A":
        n = r.unpack(">I")[0]
        sub = Reader(r.take(n))
        items = []
        while sub.i < len(sub.d):
            items.append(dec_value(sub))
        return (t, items)
    if t == "V":
        return (t, None)
    raise DecodeError(f"unknown field type {t!r}")


def dec_table(r: Reader) -> dict:
    n = r.unpack(">I")[0]
    sub = Reader(r.take(n))
    out = {}
    while sub.i < len(sub.d):
        k = _text(sub.take(sub.unpack("B")[0]))
        out[k if isinstance(k, str) else k["hex"]] = dec_value(sub)
    return out


def dec_fields(r: Reader, fields: list) -> dict:
    out = {}
    bits, nbits = 0, 8
    for name, typ in fields:
        if typ == "bit":
            if nbits == 8:
                bits, nbits = r.unpack("B")[0], 0
            out[name] = bool(bits & (1 << nbits))
            nbits += 1
            continue
        nbits = 8
        if typ == "octet":
            out[name] = r.unpack("B")[0]
        elif typ == "short":
            out[name] = r.unpack(">H")[0]
        elif typ == "long":
            out[name] = r.unpack(">I")[0]
        elif typ in ("longlong", "timestamp"):
            out[name] = r.unpack(">Q")[0]
        elif typ == "shortstr":
            out[name] = _text(r.take(r.unpack("B")[0]))
        elif typ == "longstr":
            out[name] = _text(r.take(r.unpack(">I")[0]))
        elif typ == "table":
            out[name] = dec_table(r)
    return out


def decode_method(payload: bytes) -> dict:
    r = Reader(payload)
    cid, mid = r.unpack(">HH")
    name = METHOD_NAMES.get((cid, mid))
    ev = {"kind": "method", "method": name or f"unknown({cid},{mid})", "class_id": cid, "method_id": mid}
    if name:
        try:
            ev["fields"] = dec_fields(r, METHODS[name][2])
        except DecodeError as e:
            ev["decode_error"] = str(e)
        if r.rest():
            ev["trailing_bytes"] = r.rest().hex()
    else:
        ev["raw_args"] = r.rest().hex()
    return ev


def decode_header(payload: bytes) -> dict:
    r = Reader(payload)
    cid, weight, size, flags = r.unpack(">HHQH")
    ev = {"kind": "header", "class_id": cid, "weight": weight, "body_size": size,
          "property_flags": f"0x{flags:04x}"}
    props = {}
    try:
        for i, (name, typ) in enumerate(BASIC_PROPERTIES):
            if flags & (1 << (15 - i)):
                props[name] = dec_fields(r, [(name, typ)])[name]
    except DecodeError as e:
        ev["decode_error"] = str(e)
    ev["properties"] = props
    if r.rest():
        ev["trailing_bytes"] = r.rest().hex()
    return ev


def decode_frame(ftype: int, channel: int, payload: bytes) -> dict:
    if ftype == FRAME_METHOD:
        ev = decode_method(payload)
    elif ftype == FRAME_HEADER:
        ev = decode_header(payload)
    elif ftype == FRAME_BODY:
        ev = {"kind": "body", "size": len(payload), "data": _text(payload)}
    elif ftype == FRAME_HEARTBEAT:
        ev = {"kind": "heartbeat", "size": len(payload)}
    else:
        ev = {"kind": f"frame-type-{ftype}", "payload": payload.hex()}
    ev["channel"] = channel
    return ev


# ---------------------------------------------------------------- rendering
def fmt_value(tv) -> str:
    t, v = tv
    if t == "F":
        return "F{" + fmt_table(v) + "}"
    if t == "A":
        return "A[" + ", ".join(fmt_value(x) for x in v) + "]"
    if t in "Sx":
        return f"{t}{_q(v)}"
    if t == "t":
        return "t:" + ("true" if v else "false")
    if t == "V":
        return "V"
    return f"{t}:{v}"


def fmt_table(d: dict) -> str:
    return ", ".join(f"{k}={fmt_value(v)}" for k, v in d.items())


def _q(v) -> str:
    if isinstance(v, dict) and "hex" in v:
        return f"<hex {v['hex']}>"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + _CTRL.sub(lambda m: f"\\x{ord(m.group()):02x}", s) + '"'


_CTRL = re.compile(r"[\x00-\x1f\x7f]")


def fmt_plain(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str) or (isinstance(v, dict) and "hex" in v):
        return _q(v)
    if isinstance(v, dict):
        return "{" + fmt_table(v) + "}"
    return str(v)


def fmt_event(ev: dict) -> str:
    k = ev["kind"]
    ch = ev.get("channel")
    pre = f"ch{ch} " if ch is not None else ""
    if k == "method":
        parts = [pre + ev["method"]]
        if ev["method"].startswith("unknown"):
            parts.append(f"args={ev.get('raw_args')}")
        for f, v in ev.get("fields", {}).items():
            parts.append(f"{f}={fmt_plain(v)}")
        if ev["method"].endswith(".close"):
            pass
        if "decode_error" in ev:
            parts.append(f"DECODE-ERROR({ev['decode_error']})")
        if "trailing_bytes" in ev:
            parts.append(f"trailing={ev['trailing_bytes']}")
        return " ".join(parts)
    if k == "header":
        s = f"{pre}content-header class={ev['class_id']} weight={ev['weight']} body_size={ev['body_size']} flags={ev['property_flags']}"
        for f, v in ev.get("properties", {}).items():
            s += f" {f}={fmt_plain(v)}"
        if "decode_error" in ev:
            s += f" DECODE-ERROR({ev['decode_error']})"
        return s
    if k == "body":
        return f"{pre}content-body size={ev['size']} data={_q(ev['data']) if isinstance(ev['data'], str) else ev['data']}"
    if k == "heartbeat":
        return f"{pre}heartbeat size={ev['size']}"
    return pre + k + " " + " ".join(f"{a}={b}" for a, b in ev.items() if a not in ("kind", "channel", "dir", "conn"))

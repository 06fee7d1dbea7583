"""Just enough AMQP 0-9-1 over a raw socket to send what no client library will: garbage, wrong
protocol headers, oversized frames, and a login whose exact connection.close we want to read.
"""
import socket
import struct

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = b"\xce"


def shortstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">B", len(b)) + b


def longstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(b)) + b


def table(d):
    out = b""
    for k, v in d.items():
        out += shortstr(k)
        if isinstance(v, bool):
            out += b"t" + struct.pack(">B", v)
        elif isinstance(v, dict):
            out += b"F" + table(v)
        else:
            out += b"S" + longstr(v)
    return longstr(out)


def frame(ftype, channel, payload):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + FRAME_END


def method(channel, class_id, method_id, args=b""):
    return frame(FRAME_METHOD, channel, struct.pack(">HH", class_id, method_id) + args)


def answers_protocol_header(host, port, timeout=2.0):
    """True if whatever listens on host:port answers the AMQP header with a method frame."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(PROTOCOL_HEADER)
            first = s.recv(1)
            return first == bytes([FRAME_METHOD])
    except OSError:
        return False


class Closed(Exception):
    pass


class RawConnection:
    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def recv_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed("peer closed after %d of %d bytes: %r" % (len(self.buf), n, self.buf))
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until_closed(self):
        """Everything the peer sends until it closes the socket: (bytes, "eof" or "reset").

        RabbitMQ closes with SO_LINGER 0, so a reset after its last bytes is a normal close.
        Raises socket.timeout if the peer keeps the socket open.
        """
        out, self.buf = self.buf, b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return out, "reset"
            if not chunk:
                return out, "eof"
            out += chunk

    def read_frame(self):
        ftype, channel, size = struct.unpack(">BHI", self.recv_exact(7))
        payload = self.recv_exact(size)
        end = self.recv_exact(1)
        assert end == FRAME_END, "bad frame end %r" % end
        return ftype, channel, payload

    def read_method(self):
        """Next method frame, skipping heartbeats: (channel, (class_id, method_id), args bytes)."""
        while True:
            ftype, channel, payload = self.read_frame()
            if ftype == FRAME_METHOD:
                return channel, struct.unpack(">HH", payload[:4]), payload[4:]

    # -- handshake ---------------------------------------------------------------------------
    def start(self, user, password, capabilities=("authentication_failure_close",)):
        """Send the header and start-ok; returns the next method (tune, or close on refusal)."""
        self.send(PROTOCOL_HEADER)
        _, mid, _ = self.read_method()
        assert mid == (10, 10), "expected connection.start, got %r" % (mid,)
        props = {"product": "warren-interop-raw"}
        if capabilities:
            props["capabilities"] = {c: True for c in capabilities}
        self.send(method(0, 10, 11, table(props) + shortstr("PLAIN") +
                         longstr(b"\x00" + user.encode() + b"\x00" + password.encode()) +
                         shortstr("en_US")))
        return self.read_method()

    def open(self, user="guest", password="guest", capabilities=("authentication_failure_close",),
             heartbeat=0):
        """Complete the handshake, accepting the server's tune (with this heartbeat interval);
        returns (channel_max, frame_max)."""
        _, mid, args = self.start(user, password, capabilities)
        assert mid == (10, 30), "expected connection.tune, got %r %r" % (mid, args)
        channel_max, frame_max, _heartbeat = struct.unpack(">HIH", args[:8])
        self.send(method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, heartbeat)))
        self.send(method(0, 10, 40, shortstr("/") + shortstr("") + b"\x00"))
        _, mid, _ = self.read_method()
        assert mid == (10, 41), "expected connection.open-ok, got %r" % (mid,)
        return channel_max, frame_max


def stalled_consumer(host, port, queue, rcvbuf, heartbeat=0):
    """A connection with a no-ack consumer on `queue` (channel 1) and a receive buffer of
    `rcvbuf` bytes, which reads nothing after consume-ok: what a client that stops reading its
    socket looks like to the broker. Close it when done."""
    conn = RawConnection(host, port)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    conn.open(heartbeat=heartbeat)
    conn.send(method(1, 20, 10, shortstr("")))
    assert conn.read_method()[:2] == (1, (20, 11)), "expected channel.open-ok"
    conn.send(method(1, 60, 20, struct.pack(">H", 0) + shortstr(queue) + shortstr("stalled") +
                     bytes([0b0010]) + table({})))  # no-ack
    assert conn.read_method()[:2] == (1, (60, 21)), "expected basic.consume-ok"
    return conn


def publish(channel, exchange, routing_key, body, mandatory=False, reply_to=None, frame_max=131072):
    """basic.publish + content header (no properties, or reply_to) + the body in frames of frame_max."""
    props = struct.pack(">H", 0) if reply_to is None else struct.pack(">H", 0x0200) + shortstr(reply_to)
    chunk = frame_max - 8
    return (method(channel, 60, 40, struct.pack(">H", 0) + shortstr(exchange) +
                   shortstr(routing_key) + (b"\x01" if mandatory else b"\x00")) +
            frame(FRAME_HEADER, channel, struct.pack(">HHQ", 60, 0, len(body)) + props) +
            b"".join(frame(FRAME_BODY, channel, body[i:i + chunk])
                     for i in range(0, len(body), chunk)))


def consume(channel, queue, tag, no_ack):
    """basic.consume (not nowait, no arguments)."""
    return method(channel, 60, 20, struct.pack(">H", 0) + shortstr(queue) + shortstr(tag) +
                  bytes([0b0010 if no_ack else 0]) + table({}))


def parse_close(args):
    """connection.close / channel.close arguments: (reply_code, reply_text, class_id, method_id)."""
    code, tlen = struct.unpack(">HB", args[:3])
    text = args[3:3 + tlen].decode()
    class_id, method_id = struct.unpack(">HH", args[3 + tlen:7 + tlen])
    return code, text, class_id, method_id

"""The parking stream, read and written by one process: which orders are parked, with their events.

The stream `order-events.parked` is the only record of what is parked, so that any member can take a
partition over: it holds records {"kind": "parked", "key", "event", ...} and {"kind": "released",
"key", "count"} (the first `count` parked events of the key were processed by a redrive), and
"sync" markers. `parked` maps each parked key to its events still waiting, in order. The state
changes only by reading the stream: append() publishes a record with a confirm and then reads
up to it, so that what this process knows is always a prefix of the stream that ends with its
own last record.
"""
import json
import uuid

import pika

import topology


class ParkingLog:
    def __init__(self, host, port):
        # A connection of its own: the member waits here inside a delivery callback of the other one.
        self.connection = pika.BlockingConnection(pika.ConnectionParameters(host=host, port=port))
        self.writer = self.connection.channel()
        self.writer.confirm_delivery()
        self.reader = self.connection.channel()
        self.reader.queue_declare(topology.PARKED, durable=True, arguments=topology.PARKED_ARGUMENTS)
        self.reader.basic_qos(prefetch_count=200)  # stream consumers need a prefetch
        self.messages = self.reader.consume(topology.PARKED, arguments={"x-stream-offset": "first"},
                                            inactivity_timeout=10)
        self.parked = {}  # key -> parked records still waiting, in stream order

    def append(self, record):
        """Appends a record (a dict with "kind") and reads the stream up to it."""
        record = dict(record, id=str(uuid.uuid4()))
        self.writer.basic_publish("", topology.PARKED, json.dumps(record),
                                  pika.BasicProperties(content_type="application/json", delivery_mode=2))
        self._read_until(record["id"])

    def sync(self):
        """Reads everything appended so far, by anyone: a marker goes in, and we read up to it."""
        self.append({"kind": "sync"})

    def _read_until(self, record_id):
        for method, _, body in self.messages:
            if method is None:
                raise RuntimeError(f"{topology.PARKED}: record {record_id} not read back in 10 s")
            record = json.loads(body)
            self._fold(record)
            self.reader.basic_ack(method.delivery_tag)  # gives credit; a stream deletes nothing
            if record.get("id") == record_id:
                return

    def _fold(self, record):
        key = record.get("key")
        if record["kind"] == "parked":
            self.parked.setdefault(key, []).append(record)
        elif record["kind"] == "released":
            rest = self.parked.get(key, [])[record["count"]:]
            if rest:
                self.parked[key] = rest
            else:
                self.parked.pop(key, None)

    def close(self):
        # Close without pika's nacks of buffered deliveries: a stream refuses nacks (540).
        self.reader._impl.close()
        while not self.reader.is_closed:
            self.connection.process_data_events(time_limit=0.1)
        self.connection.close()

"""The super stream and the parking stream of the partition dead-letter example.

    producer.py --(routing key: order id)--> [order-events: x-consistent-hash, x-super-stream]
                                                  |               |               |
                                           order-events-0  order-events-1  order-events-2   (streams)
                                                  |               |               |
                        member.py, group fulfil (x-stream-group): one member reads each partition
                                                  | an event fails, or its order is parked already:
                                                  v append it, in order, then ack it
                                    [order-events.parked stream] <-- show_parked.py reads it

redrive.py publishes a redrive request with the order id as routing key, so it reaches the
order's partition behind that order's events, and the member reading the partition replays the
parked events there: only the partition's reader ever decides about an order.
"""
SUPER_STREAM = "order-events"
PARKED = "order-events.parked"
GROUP = "fulfil"
# Parked events are kept longer than the orders themselves: they wait for a person.
PARKED_ARGUMENTS = {"x-queue-type": "stream", "x-max-age": "30D"}


def partition(i):
    return f"{SUPER_STREAM}-{i}"


def declare(channel, partitions):
    channel.exchange_declare(SUPER_STREAM, "x-consistent-hash", durable=True, arguments={"x-super-stream": True})
    for i in range(partitions):
        channel.queue_declare(partition(i), durable=True, arguments={"x-queue-type": "stream", "x-max-age": "7D"})
        # In partition order, weight "1": the ring is the bindings in the order they were made.
        channel.queue_bind(partition(i), SUPER_STREAM, routing_key="1", arguments={"x-stream-partition-order": i})
    channel.queue_declare(PARKED, durable=True, arguments=PARKED_ARGUMENTS)

#!/usr/bin/python3
"""List the orders parked in `order-events.parked` and their events waiting, in order.

    /usr/bin/python3 show_parked.py

Reads the parking stream from its start up to now (it appends a sync marker and reads up to it),
as a member does, and changes nothing else.
"""
import argparse

from parking import ParkingLog

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
args = parser.parse_args()

parking = ParkingLog(args.host, args.port)
parking.sync()
count = 0
for key in sorted(parking.parked):
    for record in parking.parked[key]:
        event = record["event"]
        print(f"{key} #{event['seq']} {event['event']}: partition {record['partition']} offset {record['offset']}, "
              f"{record['reason']}")
        count += 1
print(f"{count} parked events in {len(parking.parked)} orders")
parking.close()

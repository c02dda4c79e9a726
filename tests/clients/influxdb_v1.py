"""Writes and reads through shardkeeper with the `influxdb` (1.x) Python library."""
import json
import sys

from influxdb import InfluxDBClient

port = int(sys.argv[1])
client = InfluxDBClient(host="127.0.0.1", port=port, database="pyv1")
client.create_database("pyv1")
assert client.write_points(
    [
        {"measurement": "cpu", "tags": {"host": "a"}, "time": "2024-01-01T00:00:00Z",
         "fields": {"value": 1.5, "count": 3, "ok": True, "note": "hello"}},
        {"measurement": "cpu", "tags": {"host": "b"}, "time": "2024-01-01T00:00:10Z",
         "fields": {"value": 2.5, "count": 4, "ok": False, "note": "world"}},
    ]
)
points = list(client.query("SELECT * FROM cpu ORDER BY time").get_points())
databases = [d["name"] for d in client.get_list_database()]
print(json.dumps({"points": points, "databases": databases, "ping": client.ping()}))

"""Both InfluxDB Python libraries against a node serving HTTPS, trusting only the test's
CA (argv: port, CA file). Prints what each saw as JSON."""
import json
import sys

from influxdb import InfluxDBClient
from influxdb_client import InfluxDBClient as V2Client
from influxdb_client.client.write_api import SYNCHRONOUS

port, ca = int(sys.argv[1]), sys.argv[2]

v1 = InfluxDBClient(host="localhost", port=port, ssl=True, verify_ssl=ca, database="tls")
v1.create_database("tls")
assert v1.write_points([{"measurement": "cpu", "time": "2024-01-01T00:00:00Z", "fields": {"v": 1.0}}])
v1_points = list(v1.query("SELECT v FROM cpu").get_points())

v2 = V2Client(url=f"https://localhost:{port}", token="unused", org="-", ssl_ca_cert=ca)
v2.write_api(write_options=SYNCHRONOUS).write(bucket="tls", record="cpu v=2 1704067210000000000")
v2_ping = v2.ping()

print(json.dumps({"v1_points": v1_points, "v1_ping": v1.ping(), "v2_ping": v2_ping}))

"""Writes through shardkeeper's /api/v2/write with the `influxdb-client` Python library
(a bucket named "database/retention-policy", as InfluxDB 1.8 maps them)."""
import sys

from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

port = int(sys.argv[1])
with InfluxDBClient(url=f"http://127.0.0.1:{port}", token="unused", org="-") as client:
    write = client.write_api(write_options=SYNCHRONOUS)
    write.write(
        bucket="pyv2/autogen",
        record=Point("mem").tag("host", "c").field("used", 42.0).time(1704067200, WritePrecision.S),
    )
    write.write(bucket="pyv2", record="mem,host=d used=7 1704067210000000000")
print("ok")

"""Writes through shardkeeper's /api/v2/write with the `influxdb-client` Python library
(a bucket named "database/retention-policy", as InfluxDB 1.8 maps them), and checks that
its Flux query API is told clearly that Flux is not served."""
import sys

from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.rest import ApiException
from influxdb_client.client.write_api import SYNCHRONOUS

port = int(sys.argv[1])
with InfluxDBClient(url=f"http://127.0.0.1:{port}", token="unused", org="-") as client:
    write = client.write_api(write_options=SYNCHRONOUS)
    write.write(
        bucket="pyv2/autogen",
        record=Point("mem").tag("host", "c").field("used", 42.0).time(1704067200, WritePrecision.S),
    )
    write.write(bucket="pyv2", record="mem,host=d used=7 1704067210000000000")
    try:
        client.query_api().query('from(bucket: "pyv2") |> range(start: 0)')
        sys.exit("a Flux query was answered")
    except ApiException as e:
        assert e.status == 501, e.status
        assert "Flux is not supported" in e.message and "/query" in e.message, e.message
print("ok")

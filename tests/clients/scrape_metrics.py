"""Parses a /metrics answer (stdin) with the Python prometheus_client's parsers: the
OpenMetrics one (strict: what the node declares it sends) and the classic Prometheus text
one. Prints every sample as JSON, or fails with the parser's error."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as prometheus_text

text = sys.stdin.read()
samples = []
for family in openmetrics(text):
    for s in family.samples:
        samples.append({"family": family.name, "type": family.type, "name": s.name,
                        "labels": s.labels, "value": s.value})
classic = sum(len(f.samples) for f in prometheus_text(text.replace("# EOF\n", "")))
assert classic == len(samples), (classic, len(samples))
print(json.dumps(samples))

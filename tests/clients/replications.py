"""Manages a replication from node A to node B with the `influxdb-client` library's
RemoteConnectionsService and ReplicationsService: every answer must deserialize into the
library's models. Prints what it saw as JSON."""
import json
import sys

from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain import (
    RemoteConnectionCreationRequest,
    RemoteConnectionUpdateRequest,
    ReplicationCreationRequest,
    ReplicationUpdateRequest,
)
from influxdb_client.service import RemoteConnectionsService, ReplicationsService

a_url, a_token, a_org, a_bucket, b_url, b_token, b_org = sys.argv[1:8]
out = {}
with InfluxDBClient(url=a_url, token=a_token, org="acme") as client:
    remotes = RemoteConnectionsService(client.api_client)
    remote = remotes.post_remote_connection(
        RemoteConnectionCreationRequest(
            name="node-b", org_id=a_org, remote_url=b_url, remote_api_token=b_token,
            remote_org_id=b_org, allow_insecure_tls=False,
        )
    )
    out["remote"] = remote.to_dict()
    out["remotes"] = [r.to_dict() for r in remotes.get_remote_connections(org_id=a_org, name="node-b").remotes]
    out["remote_by_id"] = remotes.get_remote_connection_by_id(remote.id).to_dict()
    out["remote_patched"] = remotes.patch_remote_connection_by_id(
        remote.id, RemoteConnectionUpdateRequest(description="node B")
    ).to_dict()

    replications = ReplicationsService(client.api_client)
    created = replications.post_replication(
        ReplicationCreationRequest(
            name="to-b", org_id=a_org, remote_id=remote.id, local_bucket_id=a_bucket,
            remote_bucket_name="copy",
        )
    )
    out["replication"] = created.to_dict()
    out["replications"] = [
        r.to_dict()
        for r in replications.get_replications(org_id=a_org, remote_id=remote.id).replications
    ]
    replications.post_validate_replication_by_id(created.id)
    out["replication_patched"] = replications.patch_replication_by_id(
        created.id, ReplicationUpdateRequest(description="A to B", drop_non_retryable_data=True)
    ).to_dict()

    client.write_api(write_options=SYNCHRONOUS).write(
        bucket="metrics",
        record=[f"cpu,host=h{i} v={i}i {1700000000000000000 + i}" for i in range(1000)],
    )
    out["replication_after_write"] = replications.get_replication_by_id(created.id).to_dict()
print(json.dumps(out))

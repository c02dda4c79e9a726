//! Pulling one measurement's differences from a node that is not a peer:
//! `POST /shard-repair/pull`, which `shardkeeper proxy`'s recovery and resync call on the
//! destination node so that only what differs moves between two independent nodes.
//!
//! The source is asked over the same `/shard-repair/peer/*` endpoints peers use, with the
//! credential the caller gives. Its shards of the database are paired with this node's of
//! the same retention policy and time range (independent nodes number their shards each
//! their own way); for each pair whose roots differ, the measurement's digest tree is
//! compared level by level, descending only where it differs, then the differing leaves'
//! cells, and the source's contents of the differing cells (points with their write
//! versions, and tombstones) are applied here, last write wins by version: pulling a cell
//! twice changes nothing, and a point deleted here after the source wrote it stays
//! deleted. One way only: the source is not written to.

use super::wire::{self, DigestAnswer, DigestRequest, LeafRequest, ShardSummary};
use super::{EntropyError, EntropyService};
use crate::client::{ClientError, ClientOptions, Credentials, InfluxClient, Method};
use crate::storage::digest::{Digest, LeafCells, NodeDigest, Prefix, POSITION_BITS};
use crate::storage::shard::DigestChild;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Nodes of a tree asked for in one request.
const NODES_PER_REQUEST: usize = 4096;
/// Leaves whose cells are compared and pulled in one request.
const LEAVES_PER_REQUEST: usize = 512;

/// What to pull, and from where. No `Debug`: it carries the source's password.
#[derive(Clone, serde::Deserialize)]
pub(crate) struct PullRequest {
    /// The source node's base URL.
    pub source: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    pub db: String,
    pub measurement: String,
    /// Only shards ending after this (ns since the epoch).
    #[serde(default)]
    pub since: Option<i64>,
}

/// How a pull ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pulled {
    Done(PullFigures),
    /// The two cannot be compared (the source serves no digests to this credential, or
    /// this node lacks a shard of the source's that holds the measurement): the caller
    /// copies another way.
    NotComparable(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct PullFigures {
    /// Shard pairs compared, and of them those whose roots differed.
    pub shards: u64,
    pub shards_differing: u64,
    pub leaves_differing: u64,
    /// Points received from the source, and of them those applied here.
    pub points_received: u64,
    pub points_applied: u64,
    pub tombstones_applied: u64,
    /// Bytes exchanged with the source, both ways.
    pub bytes: u64,
}

/// A source shard and this node's of the same policy and time range.
struct ShardPair {
    source: u64,
    local: u64,
    alike: bool,
}

struct Source {
    client: InfluxClient,
    url: String,
    bytes: u64,
}

impl EntropyService {
    /// Pulls from `req.source` what differs of `req.measurement` (see the module's doc).
    pub(crate) async fn pull_measurement(
        self: &Arc<Self>,
        req: &PullRequest,
    ) -> Result<Pulled, EntropyError> {
        let credentials = match (req.username.is_empty(), req.password.is_empty()) {
            (true, true) => Credentials::None,
            _ => Credentials::Basic {
                user: req.username.clone(),
                password: req.password.clone(),
            },
        };
        let options = ClientOptions {
            credentials,
            ..ClientOptions::default()
        };
        let client =
            InfluxClient::new(&req.source, options).map_err(|source| EntropyError::Peer {
                peer: req.source.clone(),
                source,
            })?;
        let mut source = Source {
            client,
            url: req.source.clone(),
            bytes: 0,
        };
        let settled_before = crate::clock::now_nanos();
        let theirs = match source.shards(settled_before).await {
            Ok(s) => s,
            Err(e @ EntropyError::Peer { .. }) if !e.is_transient() => {
                return Ok(Pulled::NotComparable(e.to_string()))
            }
            Err(e) => return Err(e),
        };
        let me = self.clone();
        let ours = self
            .blocking(move || Ok(me.local_shards(settled_before)))
            .await?;
        let mut pairs = Vec::new();
        for s in theirs.iter().filter(|s| s.database == req.db) {
            if req.since.is_some_and(|since| s.end <= since) {
                continue;
            }
            let twin = ours.iter().find(|o| {
                o.database == s.database
                    && o.retention_policy == s.retention_policy
                    && o.start == s.start
                    && o.end == s.end
            });
            match twin {
                Some(o) => pairs.push(ShardPair {
                    source: s.id,
                    local: o.id,
                    alike: s.root.digest.folded() == o.root.digest.folded(),
                }),
                None => {
                    let holds = source
                        .children(&req.measurement, s.id, settled_before, &[Prefix::ROOT])
                        .await?
                        .iter()
                        .any(|c| !c.is_empty());
                    if holds {
                        return Ok(Pulled::NotComparable(format!(
                            "this node lacks the source's shard {} ({}.{}, {} to {})",
                            s.id, s.database, s.retention_policy, s.start, s.end
                        )));
                    }
                }
            }
        }
        let mut f = PullFigures::default();
        for pair in &pairs {
            f.shards += 1;
            if pair.alike {
                continue;
            }
            f.shards_differing += 1;
            self.pull_shard(&mut source, &req.measurement, pair, &mut f)
                .await?;
        }
        f.bytes = source.bytes;
        self.figures
            .bytes_exchanged
            .fetch_add(f.bytes, std::sync::atomic::Ordering::Relaxed);
        Ok(Pulled::Done(f))
    }

    async fn pull_shard(
        self: &Arc<Self>,
        source: &mut Source,
        measurement: &str,
        pair: &ShardPair,
        f: &mut PullFigures,
    ) -> Result<(), EntropyError> {
        let settled_before = crate::clock::now_nanos();
        let mut differing: Vec<u16> = Vec::new();
        let mut frontier = vec![Prefix::ROOT];
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for chunk in frontier.chunks(NODES_PER_REQUEST) {
                let theirs = source
                    .children(measurement, pair.source, settled_before, chunk)
                    .await?;
                let req = DigestRequest {
                    shard: pair.local,
                    settled_before,
                    nodes: nodes_of(measurement, chunk),
                };
                let me = self.clone();
                let ours = self.blocking(move || me.local_digests(&req)).await?;
                if theirs.len() != chunk.len() || ours.len() != chunk.len() {
                    return Err(EntropyError::Other(format!(
                        "{} answered {} nodes for {}",
                        source.url,
                        theirs.len(),
                        chunk.len()
                    )));
                }
                for ((node, a), b) in chunk.iter().zip(theirs).zip(ours) {
                    for nibble in differing_nibbles(a, b) {
                        let child = node.child(nibble);
                        match child.bits < POSITION_BITS {
                            true => next.push(child),
                            false => differing.push(child.prefix),
                        }
                    }
                }
            }
            frontier = next;
        }
        f.leaves_differing += differing.len() as u64;
        for batch in differing.chunks(LEAVES_PER_REQUEST) {
            let cells = self
                .differing_cells_of(source, measurement, pair, batch)
                .await?;
            let request = LeafRequest {
                shard: pair.source,
                leaves: vec![(measurement.to_owned(), cells)],
            };
            let answer = source
                .post(
                    "/shard-repair/peer/leaves",
                    wire::encode_leaf_request(&request),
                )
                .await?;
            let mut leaves = wire::decode_leaves(&answer).map_err(|e| source.wire(e))?;
            f.points_received += leaves
                .contents
                .iter()
                .map(|c| c.points.len() as u64)
                .sum::<u64>();
            leaves.shard = pair.local;
            let applied = self.apply(leaves).await?;
            f.points_applied += applied.points;
            f.tombstones_applied += applied.tombstones;
        }
        Ok(())
    }

    /// Of the leaves at `positions`, the cells whose digests differ between the source
    /// and this node (a leaf whose cells all compare alike, changed meanwhile, is taken
    /// whole).
    async fn differing_cells_of(
        self: &Arc<Self>,
        source: &mut Source,
        measurement: &str,
        pair: &ShardPair,
        positions: &[u16],
    ) -> Result<LeafCells, EntropyError> {
        let leaves: LeafCells = positions.iter().map(|p| (*p, BTreeSet::new())).collect();
        let ask = |shard| LeafRequest {
            shard,
            leaves: vec![(measurement.to_owned(), leaves.clone())],
        };
        let answer = source
            .post(
                "/shard-repair/peer/cells",
                wire::encode_leaf_request(&ask(pair.source)),
            )
            .await?;
        let theirs = wire::decode_cells(&answer).map_err(|e| source.wire(e))?;
        let me = self.clone();
        let local = ask(pair.local);
        let ours = self.blocking(move || me.local_cells(&local)).await?;
        let find = |c: wire::CellDigests| {
            c.measurements
                .into_iter()
                .find(|(m, _)| m == measurement)
                .map(|(_, l)| l)
                .unwrap_or_default()
        };
        let (a, b) = (find(theirs), find(ours));
        let none = BTreeMap::new();
        let mut chosen = LeafCells::new();
        for pos in positions {
            let a = a.get(pos).unwrap_or(&none);
            let b = b.get(pos).unwrap_or(&none);
            chosen.insert(*pos, super::differing_cells(a, b));
        }
        Ok(chosen)
    }
}

fn nodes_of(measurement: &str, prefixes: &[Prefix]) -> Vec<(Option<String>, Prefix)> {
    prefixes
        .iter()
        .map(|p| (Some(measurement.to_owned()), *p))
        .collect()
}

/// The nibbles under which two answers for the same node differ (a child one side lacks
/// differs).
fn differing_nibbles(
    a: Vec<(DigestChild, NodeDigest)>,
    b: Vec<(DigestChild, NodeDigest)>,
) -> Vec<u8> {
    let mut both: BTreeMap<u8, (Digest, Digest)> = BTreeMap::new();
    for (c, d) in a {
        if let DigestChild::Nibble(n) = c {
            both.entry(n).or_default().0 = d.digest.folded();
        }
    }
    for (c, d) in b {
        if let DigestChild::Nibble(n) = c {
            both.entry(n).or_default().1 = d.digest.folded();
        }
    }
    both.into_iter()
        .filter(|(_, (x, y))| x != y)
        .map(|(n, _)| n)
        .collect()
}

impl Source {
    fn peer(&self, source: ClientError) -> EntropyError {
        EntropyError::Peer {
            peer: self.url.clone(),
            source,
        }
    }

    fn wire(&self, source: wire::WireError) -> EntropyError {
        EntropyError::Wire {
            peer: self.url.clone(),
            source,
        }
    }

    async fn shards(&mut self, settled_before: i64) -> Result<Vec<ShardSummary>, EntropyError> {
        let path = "/shard-repair/peer/shards";
        let settled = settled_before.to_string();
        let request = self
            .client
            .request(Method::GET, path)
            .query(&[("settled_before", settled.as_str())]);
        let bytes = self.read(path, request, 0).await?;
        wire::decode_shards(&bytes).map_err(|e| self.wire(e))
    }

    /// The children of `measurement`'s `nodes` in the source's shard `shard`.
    async fn children(
        &mut self,
        measurement: &str,
        shard: u64,
        settled_before: i64,
        nodes: &[Prefix],
    ) -> Result<DigestAnswer, EntropyError> {
        let request = DigestRequest {
            shard,
            settled_before,
            nodes: nodes_of(measurement, nodes),
        };
        let answer = self
            .post(
                "/shard-repair/peer/digests",
                wire::encode_digest_request(&request),
            )
            .await?;
        wire::decode_digest_answer(&answer).map_err(|e| self.wire(e))
    }

    async fn post(&mut self, path: &str, body: Vec<u8>) -> Result<Vec<u8>, EntropyError> {
        let sent = body.len() as u64;
        let request = self
            .client
            .request(Method::POST, path)
            .header("Content-Type", wire::CONTENT_TYPE)
            .body(body);
        self.read(path, request, sent).await
    }

    async fn read(
        &mut self,
        path: &str,
        request: crate::client::RequestBuilder,
        sent: u64,
    ) -> Result<Vec<u8>, EntropyError> {
        let response = self
            .client
            .send(path, request)
            .await
            .map_err(|e| self.peer(e))?;
        let url = format!("{}{path}", self.url);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.peer(ClientError::transport(&url, e)))?;
        self.bytes += sent + bytes.len() as u64;
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(sum: u128, count: u64) -> NodeDigest {
        NodeDigest {
            digest: Digest { sum, count },
            unsettled: false,
        }
    }

    #[test]
    fn only_children_that_differ_or_one_side_lacks_are_descended() {
        let a = vec![
            (DigestChild::Nibble(1), node(5, 1)),
            (DigestChild::Nibble(2), node(7, 2)),
            (DigestChild::Nibble(3), node(9, 1)),
        ];
        let b = vec![
            (DigestChild::Nibble(1), node(5, 1)),
            (DigestChild::Nibble(2), node(8, 2)),
            (DigestChild::Nibble(4), node(1, 1)),
        ];
        assert_eq!(differing_nibbles(a, b), vec![2, 3, 4]);
    }
}

//! Recovery and resync between two shardkeeper nodes: only what differs is moved.
//!
//! Both nodes keep anti-entropy digests of every shard ([`crate::entropy`]), and serve
//! them to an admin over `/shard-repair/peer/*` in [`wire`]'s format. The proxy pairs the
//! source's shards of the database with the destination's of the same retention policy
//! and time range (two independent nodes number their shards each their own way), asks
//! both for the measurement's digest tree level by level, descending only where they
//! differ, then for the digests of the differing leaves' cells, and moves the source's
//! contents of the differing cells (points with their write versions, and tombstones)
//! into the destination's shard. The destination applies them last-write-wins by version,
//! so moving a cell twice changes nothing, and a point deleted on the destination after
//! the source wrote it stays deleted.
//!
//! The move is one way, source to destination: recovery's meaning. Resync runs every
//! circle as a source in turn, so after its stages each pair holds the union of the two,
//! the newer version winning.
//!
//! When either side is not a shardkeeper node (or refuses the peer endpoints), or the
//! destination lacks a shard holding the measurement on the source, the caller falls back
//! to the windowed copy ([`super::copy`]).

use super::copy::{CopyError, Position};
use super::Recorder;
use crate::client::{ClientError, InfluxClient, Method};
use crate::entropy::wire::{self, DigestAnswer, DigestRequest, LeafRequest, ShardSummary};
use crate::storage::digest::{Digest, LeafCells, Prefix, POSITION_BITS};
use crate::storage::shard::DigestChild;
use std::collections::{BTreeMap, BTreeSet};

/// Nodes of a tree asked for in one request.
const NODES_PER_REQUEST: usize = 4096;
/// Leaves whose cells are compared and moved in one request.
const LEAVES_PER_REQUEST: usize = 512;

/// A source shard and the destination's shard of the same policy and time range.
#[derive(Debug, Clone)]
pub(crate) struct ShardPair {
    pub rp: String,
    pub end: i64,
    pub source: u64,
    pub destination: u64,
    /// Their roots compare alike: nothing in them differs.
    pub alike: bool,
}

/// What a diff moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Moved {
    pub points: u64,
    pub leaves: u64,
}

pub(crate) struct Diff<'a> {
    pub source: &'a InfluxClient,
    pub destination: &'a InfluxClient,
    pub db: &'a str,
    pub measurement: &'a str,
    /// Only shards ending after this (resync's `seconds`).
    pub since: Option<i64>,
}

impl Diff<'_> {
    /// The shards to compare, in the windowed copy's order (policy by name, then time);
    /// None when the diff cannot do the job: a side is not a shardkeeper node serving its
    /// digests to this proxy's credentials, or the destination lacks a shard of the
    /// source's that holds the measurement.
    pub(crate) async fn pairs(&self) -> Option<Vec<ShardPair>> {
        let settled_before = crate::clock::now_nanos();
        let (source, destination) = match (
            shards(self.source, settled_before).await,
            shards(self.destination, settled_before).await,
        ) {
            (Ok(s), Ok(d)) => (s, d),
            (Err(e), _) | (_, Err(e)) => {
                tracing::debug!(error = %e, "no digests to compare: a windowed copy instead");
                return None;
            }
        };
        let mut pairs = Vec::new();
        for s in source.iter().filter(|s| s.database == self.db) {
            if self.since.is_some_and(|since| s.end <= since) {
                continue;
            }
            let twin = destination.iter().find(|d| {
                d.database == s.database
                    && d.retention_policy == s.retention_policy
                    && d.start == s.start
                    && d.end == s.end
            });
            match twin {
                Some(d) => pairs.push(ShardPair {
                    rp: s.retention_policy.clone(),
                    end: s.end,
                    source: s.id,
                    destination: d.id,
                    alike: s.root.digest.folded() == d.root.digest.folded(),
                }),
                None => {
                    let holds = self
                        .children(self.source, s.id, settled_before, &[Prefix::ROOT])
                        .await
                        .map(|a| a.iter().any(|c| !c.is_empty()));
                    if holds.unwrap_or(true) {
                        tracing::info!(db = self.db, measurement = self.measurement, shard = s.id, "the destination lacks a shard of the source's: a windowed copy instead");
                        return None;
                    }
                }
            }
        }
        pairs.sort_by(|a, b| (&a.rp, a.end).cmp(&(&b.rp, b.end)));
        Some(pairs)
    }

    /// Moves the source's contents of every cell that differs, shard by shard, after
    /// `resume`; records progress after each shard. Returns the points moved in all.
    pub(crate) async fn run(
        &self,
        pairs: &[ShardPair],
        resume: Option<Position>,
        recorder: &Recorder,
    ) -> Result<u64, CopyError> {
        let mut points = resume.as_ref().map_or(0, |p| p.points);
        for pair in pairs {
            if let Some(p) = &resume {
                if pair.rp < p.rp || (pair.rp == p.rp && pair.end <= p.upto) {
                    continue;
                }
            }
            if !pair.alike {
                let moved = self.shard(pair).await?;
                points += moved.points;
                tracing::debug!(
                    db = self.db,
                    measurement = self.measurement,
                    shard = pair.source,
                    points = moved.points,
                    leaves = moved.leaves,
                    "diff moved a shard's differences"
                );
            }
            recorder.progress(&pair.rp, pair.end, points).await?;
        }
        Ok(points)
    }

    async fn shard(&self, pair: &ShardPair) -> Result<Moved, CopyError> {
        let settled_before = crate::clock::now_nanos();
        let mut differing = LeafCells::new();
        let mut frontier = vec![Prefix::ROOT];
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for chunk in frontier.chunks(NODES_PER_REQUEST) {
                let theirs = self
                    .children(self.source, pair.source, settled_before, chunk)
                    .await
                    .map_err(CopyError::Source)?;
                let ours = self
                    .children(self.destination, pair.destination, settled_before, chunk)
                    .await
                    .map_err(CopyError::Destination)?;
                if theirs.len() != chunk.len() || ours.len() != chunk.len() {
                    return Err(self.confused("answered a different number of nodes"));
                }
                for ((node, a), b) in chunk.iter().zip(theirs).zip(ours) {
                    for nibble in differing_nibbles(a, b) {
                        let child = node.child(nibble);
                        match child.bits < POSITION_BITS {
                            true => next.push(child),
                            false => {
                                differing.insert(child.prefix, BTreeSet::new());
                            }
                        }
                    }
                }
            }
            frontier = next;
        }
        let mut moved = Moved::default();
        let positions: Vec<u16> = differing.into_keys().collect();
        for batch in positions.chunks(LEAVES_PER_REQUEST) {
            let cells = self.differing_cells(pair, batch).await?;
            moved.leaves += batch.len() as u64;
            moved.points += self.move_cells(pair, cells).await?;
        }
        Ok(moved)
    }

    /// Of the leaves at `positions`, the cells whose digests differ between the two sides
    /// (a leaf whose cells all compare alike, changed meanwhile, is taken whole).
    async fn differing_cells(
        &self,
        pair: &ShardPair,
        positions: &[u16],
    ) -> Result<LeafCells, CopyError> {
        let leaves: LeafCells = positions.iter().map(|p| (*p, BTreeSet::new())).collect();
        let ask = |shard| LeafRequest {
            shard,
            leaves: vec![(self.measurement.to_owned(), leaves.clone())],
        };
        let path = "/shard-repair/peer/cells";
        let source = post(
            self.source,
            path,
            wire::encode_leaf_request(&ask(pair.source)),
        )
        .await
        .map_err(CopyError::Source)?;
        let destination = post(
            self.destination,
            path,
            wire::encode_leaf_request(&ask(pair.destination)),
        )
        .await
        .map_err(CopyError::Destination)?;
        let decode = |bytes: &[u8]| {
            wire::decode_cells(bytes)
                .map(|c| {
                    c.measurements
                        .into_iter()
                        .find(|(m, _)| m == self.measurement)
                })
                .map_err(|e| self.confused(&format!("cell digests: {e}")))
        };
        let (a, b) = (decode(&source)?, decode(&destination)?);
        let none = BTreeMap::new();
        let mut chosen = LeafCells::new();
        for pos in positions {
            let a = a.as_ref().and_then(|(_, l)| l.get(pos)).unwrap_or(&none);
            let b = b.as_ref().and_then(|(_, l)| l.get(pos)).unwrap_or(&none);
            let cells: BTreeSet<u8> = a
                .keys()
                .chain(b.keys())
                .filter(|c| a.get(c).map(Digest::folded) != b.get(c).map(Digest::folded))
                .copied()
                .collect();
            chosen.insert(*pos, cells);
        }
        Ok(chosen)
    }

    /// The source's contents of `cells`, applied on the destination; returns the points
    /// sent.
    async fn move_cells(&self, pair: &ShardPair, cells: LeafCells) -> Result<u64, CopyError> {
        let request = LeafRequest {
            shard: pair.source,
            leaves: vec![(self.measurement.to_owned(), cells)],
        };
        let answer = post(
            self.source,
            "/shard-repair/peer/leaves",
            wire::encode_leaf_request(&request),
        )
        .await
        .map_err(CopyError::Source)?;
        let mut leaves = wire::decode_leaves(&answer)
            .map_err(|e| self.confused(&format!("leaf contents: {e}")))?;
        let points = leaves
            .contents
            .iter()
            .map(|c| c.points.len() as u64)
            .sum::<u64>();
        let tombstones = leaves
            .contents
            .iter()
            .map(|c| c.tombstones.len())
            .sum::<usize>();
        if points == 0 && tombstones == 0 {
            return Ok(0);
        }
        leaves.shard = pair.destination;
        post(
            self.destination,
            "/shard-repair/peer/apply",
            wire::encode_leaves(&leaves),
        )
        .await
        .map_err(CopyError::Destination)?;
        Ok(points)
    }

    /// The children of the measurement's `nodes` in `client`'s shard `shard`.
    async fn children(
        &self,
        client: &InfluxClient,
        shard: u64,
        settled_before: i64,
        nodes: &[Prefix],
    ) -> Result<DigestAnswer, ClientError> {
        let request = DigestRequest {
            shard,
            settled_before,
            nodes: nodes
                .iter()
                .map(|p| (Some(self.measurement.to_owned()), *p))
                .collect(),
        };
        let path = "/shard-repair/peer/digests";
        let answer = post(client, path, wire::encode_digest_request(&request)).await?;
        wire::decode_digest_answer(&answer).map_err(|e| ClientError::Request {
            url: client.url(path),
            reason: format!("digests: {e}"),
        })
    }

    fn confused(&self, why: &str) -> CopyError {
        CopyError::Answer {
            url: self.source.url(""),
            reason: format!("comparing {}.{}: {why}", self.db, self.measurement),
        }
    }
}

/// The nibbles under which two answers for the same node differ (a child one side lacks
/// differs).
fn differing_nibbles(
    a: Vec<(DigestChild, crate::storage::digest::NodeDigest)>,
    b: Vec<(DigestChild, crate::storage::digest::NodeDigest)>,
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

/// Every shard `client`'s node holds, with its root: an error when it is not a
/// shardkeeper node or does not let these credentials compare.
async fn shards(
    client: &InfluxClient,
    settled_before: i64,
) -> Result<Vec<ShardSummary>, ClientError> {
    let path = "/shard-repair/peer/shards";
    let settled = settled_before.to_string();
    let request = client
        .request(Method::GET, path)
        .query(&[("settled_before", settled.as_str())]);
    let bytes = read(client, path, request).await?;
    wire::decode_shards(&bytes).map_err(|e| ClientError::Request {
        url: client.url(path),
        reason: format!("shards: {e}"),
    })
}

async fn post(client: &InfluxClient, path: &str, body: Vec<u8>) -> Result<Vec<u8>, ClientError> {
    let request = client
        .request(Method::POST, path)
        .header("Content-Type", wire::CONTENT_TYPE)
        .body(body);
    read(client, path, request).await
}

async fn read(
    client: &InfluxClient,
    path: &str,
    request: crate::client::RequestBuilder,
) -> Result<Vec<u8>, ClientError> {
    let response = client.send(path, request).await?;
    let bytes = response
        .bytes()
        .await
        .map_err(|e| ClientError::transport(&client.url(path), e))?;
    Ok(bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::digest::NodeDigest;

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

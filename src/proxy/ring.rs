//! Placement within a circle: the consistent-hash ring of influx-proxy 2.4.7
//! (`stathat.com/c/consistent` with its defaults), so that the same config puts every
//! measurement on the same backend as influx-proxy does and existing fleets keep their
//! data where it is.
//!
//! Each backend has `vnode_size` points on the ring, the `i`-th at the CRC-32 (IEEE) of the
//! decimal `i` followed by the backend's key (its index in the circle for `hash_key = idx`,
//! else its name or URL). A key (`"db,measurement"`) belongs to the first point strictly
//! greater than its own CRC-32, wrapping to the first point. Two backends whose points
//! collide: the later one in the circle keeps the point, as the Go map it lives in does.

use super::config::{BackendConfig, HashKey};
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct Ring {
    /// Ring point -> index of the backend in its circle.
    points: BTreeMap<u32, usize>,
}

/// The key a backend is known by on the ring.
pub fn backend_key(hash_key: HashKey, index: usize, backend: &BackendConfig) -> String {
    match hash_key {
        HashKey::Idx => index.to_string(),
        HashKey::Name => backend.name.clone(),
        HashKey::Url => backend.url.clone(),
    }
}

/// The key a measurement of a database is placed by.
pub fn placement_key(db: &str, measurement: &str) -> String {
    format!("{db},{measurement}")
}

impl Ring {
    pub fn new(hash_key: HashKey, vnode_size: usize, backends: &[BackendConfig]) -> Ring {
        let mut points = BTreeMap::new();
        for (index, backend) in backends.iter().enumerate() {
            let key = backend_key(hash_key, index, backend);
            for i in 0..vnode_size {
                let mut hasher = crc32fast::Hasher::new();
                hasher.update(i.to_string().as_bytes());
                hasher.update(key.as_bytes());
                points.insert(hasher.finalize(), index);
            }
        }
        Ring { points }
    }

    /// The index (in its circle) of the backend that owns `key`.
    pub fn owner(&self, key: impl AsRef<[u8]>) -> usize {
        let hash = crc32fast::hash(key.as_ref());
        let after = (std::ops::Bound::Excluded(hash), std::ops::Bound::Unbounded);
        self.points
            .range(after)
            .next()
            .or_else(|| self.points.iter().next())
            .map_or(0, |(_, &index)| index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(n: usize) -> Vec<BackendConfig> {
        (0..n)
            .map(|i| BackendConfig {
                name: format!("influxdb-{i}"),
                url: format!("http://127.0.0.1:{}", 8086 + i),
                ..BackendConfig::default()
            })
            .collect()
    }

    #[test]
    fn influx_proxys_placement_vectors_hold() {
        let owner = |n: usize, key: &str| Ring::new(HashKey::Idx, 256, &backends(n)).owner(key);
        assert_eq!(owner(2, "db1,cpu1"), 1);
        assert_eq!(owner(3, "db1,cpu1"), 2);
        assert_eq!(owner(5, "db1,cpu1"), 4);
        assert_eq!(owner(2, "telegraf,cpu"), 0);
        assert_eq!(placement_key("db1", "cpu1"), "db1,cpu1");
    }

    /// A second ring written the plainest way, from the description alone: every point in
    /// a sorted list, the owner found by a linear scan.
    fn naive_owner(
        hash_key: HashKey,
        vnodes: usize,
        backends: &[BackendConfig],
        key: &str,
    ) -> usize {
        let mut points: Vec<(u32, usize)> = Vec::new();
        for (index, b) in backends.iter().enumerate() {
            let name = match hash_key {
                HashKey::Idx => format!("{index}"),
                HashKey::Name => b.name.clone(),
                HashKey::Url => b.url.clone(),
            };
            for i in 0..vnodes {
                let hash = crc32fast::hash(format!("{i}{name}").as_bytes());
                // A later backend takes a colliding point.
                points.retain(|(h, _)| *h != hash);
                points.push((hash, index));
            }
        }
        points.sort();
        let hash = crc32fast::hash(key.as_bytes());
        points
            .iter()
            .find(|(h, _)| *h > hash)
            .unwrap_or(&points[0])
            .1
    }

    #[test]
    fn random_keys_are_placed_as_a_naive_ring_places_them() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let mut runner = TestRunner::new(Config {
            cases: 300,
            ..Config::default()
        });
        let strategy = (
            1usize..7,
            prop_oneof![Just(HashKey::Idx), Just(HashKey::Name), Just(HashKey::Url)],
            1usize..40,
            proptest::collection::vec("[a-z0-9_.,\\- ]{0,24}", 1..20),
        );
        runner
            .run(&strategy, |(n, hash_key, vnodes, keys)| {
                let all = backends(n);
                let ring = Ring::new(hash_key, vnodes, &all);
                for key in &keys {
                    prop_assert_eq!(ring.owner(key), naive_owner(hash_key, vnodes, &all, key));
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn the_full_default_ring_agrees_with_the_naive_one_too() {
        let all = backends(4);
        let ring = Ring::new(HashKey::Name, 256, &all);
        for i in 0..500 {
            let key = placement_key("telegraf", &format!("measurement_{i}"));
            assert_eq!(
                ring.owner(&key),
                naive_owner(HashKey::Name, 256, &all, &key)
            );
        }
    }
}

//! Several shardkeeper nodes on loopback at once, each with its own config and data
//! directory (in one temp directory), for tests of what passes between nodes.

use super::Daemon;

pub struct Nodes {
    /// In the order of the configs they were started with. Each is killed when dropped.
    pub nodes: Vec<Daemon>,
    // Declared after the nodes, so that they are gone before their directories are.
    _dir: tempfile::TempDir,
}

impl Nodes {
    /// Starts one node per config (TOML; "" for the defaults), all at once. Each listens on
    /// a port of its own choosing (port 0) and is returned once it answers `/ping`.
    pub fn start(configs: &[&str]) -> Nodes {
        let dir = tempfile::tempdir().expect("tempdir");
        let nodes = std::thread::scope(|s| {
            let starting: Vec<_> = configs
                .iter()
                .enumerate()
                .map(|(i, config)| {
                    let data_dir = dir.path().join(format!("node-{i}"));
                    s.spawn(move || {
                        std::fs::create_dir_all(&data_dir).expect("node data dir");
                        Daemon::try_start_with(&data_dir, Some(config))
                            .unwrap_or_else(|stderr| panic!("node {i} did not start: {stderr}"))
                    })
                })
                .collect();
            starting
                .into_iter()
                .map(|h| h.join().expect("starting a node panicked"))
                .collect::<Vec<_>>()
        });
        for (i, node) in nodes.iter().enumerate() {
            super::wait_until(&format!("node {i} to answer /ping"), || {
                std::net::TcpStream::connect(node.addr).is_ok()
                    && node.request("GET", "/ping", b"").status == 204
            });
        }
        Nodes { nodes, _dir: dir }
    }

    pub fn url(&self, i: usize) -> String {
        format!("http://{}", self.nodes[i].addr)
    }
}

impl std::ops::Index<usize> for Nodes {
    type Output = Daemon;

    fn index(&self, i: usize) -> &Daemon {
        &self.nodes[i]
    }
}

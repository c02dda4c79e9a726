//! Runs one of the dashboard queries of `benches/query_path.rs` N times in-process, for an
//! instruction count under callgrind (repeatable on a noisy machine, where seconds are not):
//!
//! ```text
//! cargo build --release --example query_profile
//! valgrind --tool=callgrind --collect-atstart=no \
//!     --toggle-collect='shardkeeper::query::harness::QueryHarness::query' \
//!     target/release/examples/query_profile 'SHOW TAG VALUES' 100
//! ```
//!
//! The name is a substring of a query's name; without one, the names are listed.

use shardkeeper::bench::ingest::{generate_batches, IngestOptions};
use shardkeeper::benching::QueryHarness;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let queries = QueryHarness::dashboard_queries();
    let Some(wanted) = args.next() else {
        for (name, q) in &queries {
            println!("{name}: {q}");
        }
        return Ok(());
    };
    let rounds: usize = match args.next() {
        Some(n) => n.parse().map_err(|e| format!("rounds {n:?}: {e}"))?,
        None => 100,
    };
    let (name, q) = queries
        .iter()
        .find(|(name, _)| name.contains(wanted.as_str()))
        .ok_or_else(|| format!("no query named like {wanted:?}"))?;
    let opts = IngestOptions {
        points: 100_000,
        ..IngestOptions::default()
    };
    let harness = QueryHarness::open(&opts.db, &generate_batches(&opts))?;
    let mut bytes = 0;
    for _ in 0..rounds {
        bytes += harness.query(Some(&opts.db), q)?.len();
    }
    println!("{name}: {rounds} rounds, {bytes} bytes answered");
    Ok(())
}

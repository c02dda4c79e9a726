//! Work over a scan's series on every core, when there are enough series to be worth it.

/// `work` over the items, on every core when there are enough of them to be worth it;
/// the results in the items' order.
pub(super) fn parallel_map<T: Send, R: Send>(
    items: Vec<T>,
    work: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    parallel_chunks(items, |chunk| {
        chunk.into_iter().map(&work).collect::<Vec<R>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// `work` over consecutive chunks of the items, a chunk per core when there are enough
/// items to be worth it (else one chunk); the results in the chunks' order.
pub(super) fn parallel_chunks<T: Send, R: Send>(
    items: Vec<T>,
    work: impl Fn(Vec<T>) -> R + Sync,
) -> Vec<R> {
    const PER_THREAD: usize = 64;
    // Asking the system reads cgroup files: once per process is enough.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let threads = cores.min(items.len() / PER_THREAD);
    if threads <= 1 {
        return vec![work(items)];
    }
    let chunk = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut items = items.into_iter();
    for _ in 0..threads {
        chunks.push(items.by_ref().take(chunk).collect());
    }
    let work = &work;
    std::thread::scope(|scope| {
        let mut chunks = chunks.into_iter();
        let own = chunks.next().unwrap_or_default();
        let others: Vec<_> = chunks.map(|c| scope.spawn(move || work(c))).collect();
        let mut out = vec![work(own)];
        for handle in others {
            match handle.join() {
                Ok(part) => out.push(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

// The write path allocates many small strings per point; mimalloc keeps that cheap and
// returns memory to the system better than glibc's allocator under this load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (v3); libmimalloc-sys names no constant for it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// How long memory mimalloc has freed stays mapped before it is returned to the system.
/// Its default (1 s) is shorter than the life of a shard head under ingest: a flushed head's
/// pages were returned just before the next head wanted them and were faulted in (zeroed by
/// the kernel) again: 35k page faults per million points in `bench ingest`, 1k with this
/// delay. An idle node still gives the memory back.
const ALLOCATOR_PURGE_DELAY_MS: std::ffi::c_long = 10_000;

fn main() -> std::process::ExitCode {
    // SAFETY: mi_option_set is not thread safe; no other thread exists yet.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ALLOCATOR_PURGE_DELAY_MS) };
    // No transparent huge pages for this process. mimalloc asks for them (madvise) when it
    // maps its arenas, before main runs, so its own option comes too late; with them, each
    // first touch of fresh heap faulted in and zeroed a 2 MiB page (and could compact
    // memory to find one): under `bench ingest` that was about 15% of the daemon's CPU.
    // SAFETY: PR_SET_THP_DISABLE only sets a flag of this process; a failure (an old
    // kernel) leaves the default.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    shardkeeper::main()
}

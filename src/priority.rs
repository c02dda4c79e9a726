//! CPU priority of the node's own threads. Work that a client waits on for long anyway
//! (queries, password hashing, compressed backup streams) runs below the work that must stay quick
//! (`/ping`, write acknowledgements), so that on a node with few cores a burst of the
//! first cannot take every core from the second.

/// Nice value of the threads that run queries.
pub const QUERY_NICE: libc::c_int = 10;
/// Nice value of the threads that check and hash passwords.
pub const PASSWORD_HASH_NICE: libc::c_int = 10;
/// Nice value of the threads that compress backup streams.
pub const BACKUP_NICE: libc::c_int = 10;

/// Lowers the calling thread's scheduling priority to `nice` (Linux applies nice values
/// per thread). A failure leaves the thread at its priority, which is only slower.
pub fn lower_current_thread(nice: libc::c_int) {
    // SAFETY: changes the scheduling priority of the calling thread only.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS as _, libc::gettid() as libc::id_t, nice);
    }
}

/// Moves the calling thread to Linux's `SCHED_IDLE` class: it runs only when no other
/// thread wants the core, and a waking thread of the normal class takes the core at once.
/// For load generators standing in for clients on other machines; never for the node's
/// own work, which would starve beside a busy ingest. A failure leaves the thread as it
/// was.
pub fn idle_current_thread() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: changes the scheduling class of the calling thread only.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

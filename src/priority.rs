//! CPU priority of the node's own threads. Work that a client waits on for long anyway
//! (queries, password hashing, compressed backup streams) runs below the work that must stay quick
//! (`/ping`, write acknowledgements), so that on a node with few cores a burst of the
//! first cannot take every core from the second.

/// Nice value of the threads that run queries.
pub(crate) const QUERY_NICE: libc::c_int = 10;
/// Nice value of the threads that check and hash passwords.
pub(crate) const PASSWORD_HASH_NICE: libc::c_int = 10;
/// Nice value of the threads that compress backup streams.
pub(crate) const BACKUP_NICE: libc::c_int = 10;

/// Lowers the calling thread's scheduling priority to `nice` (Linux applies nice values
/// per thread), with the default time slice: a thread started by a quick one (below)
/// inherits its short slice, which heavy work must not keep. A failure leaves the thread
/// at its priority, which is only slower.
pub(crate) fn lower_current_thread(nice: libc::c_int) {
    set_current_thread(nice, 0);
}

/// Moves the calling thread to Linux's `SCHED_IDLE` class: it runs only when no other
/// thread wants the core, and a waking thread of the normal class takes the core at once.
/// For load generators standing in for clients on other machines; never for the node's
/// own work, which would starve beside a busy ingest. A failure leaves the thread as it
/// was.
pub(crate) fn idle_current_thread() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: changes the scheduling class of the calling thread only.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

/// The time slice asked for by the threads a write acknowledgement or a `/ping` waits on.
/// Linux's EEVDF scheduler (6.12 and later) lets a waking thread with a shorter slice than
/// the running one take the core at once; with the default slice (about 1.4 ms here) a
/// waking HTTP worker or log writer waited for a query thread's slice to end, once per hop
/// of the write path. The minimum the kernel accepts.
const QUICK_SLICE_NS: u64 = 100_000;

/// Asks for a short time slice for the calling thread (and the threads it starts later,
/// io_uring's workers among them, which inherit it), keeping its nice value. Older kernels
/// take the value and ignore it.
pub(crate) fn quicken_current_thread() {
    // SAFETY: reads the calling thread's nice value.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS as _, 0) };
    set_current_thread(nice, QUICK_SLICE_NS);
}

/// Sets the calling thread's nice value and time slice (0: the kernel's default) in the
/// normal scheduling class. A failure leaves the thread as it was.
fn set_current_thread(nice: libc::c_int, slice_ns: u64) {
    // `struct sched_attr` (SCHED_ATTR_SIZE_VER0): libc declares the call, not the struct.
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: libc::SCHED_OTHER as u32,
        flags: 0,
        nice,
        priority: 0,
        runtime: slice_ns,
        deadline: 0,
        period: 0,
    };
    // SAFETY: changes the scheduling attributes of the calling thread only; the kernel
    // reads `attr.size` bytes of a struct that has them.
    unsafe {
        libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's (nice, slice in ns) as the kernel reports them; the slice is
    /// 0 on kernels before 6.12, which have no per-thread slice.
    fn current() -> (i32, u64) {
        let mut attr = [0u64; 7];
        // SAFETY: the kernel writes at most the 48 bytes of SCHED_ATTR_SIZE_VER0 into a
        // 56-byte buffer.
        let rc =
            unsafe { libc::syscall(libc::SYS_sched_getattr, 0, attr.as_mut_ptr(), 48u32, 0u32) };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        ((attr[2] & 0xffff_ffff) as u32 as i32, attr[3])
    }

    #[test]
    fn a_quick_thread_keeps_its_nice_and_the_heavy_threads_it_starts_lose_its_slice() {
        std::thread::spawn(|| {
            let (nice, default_slice) = current();
            quicken_current_thread();
            let (quick_nice, quick_slice) = current();
            assert_eq!(quick_nice, nice);
            if default_slice == 0 {
                eprintln!("no per-thread time slice on this kernel: only the nice is checked");
            } else {
                assert_eq!(quick_slice, QUICK_SLICE_NS);
            }
            std::thread::spawn(move || {
                assert_eq!(
                    current().1,
                    quick_slice,
                    "a started thread inherits the slice"
                );
                lower_current_thread(QUERY_NICE);
                assert_eq!(current(), (QUERY_NICE, default_slice));
            })
            .join()
            .unwrap();
        })
        .join()
        .unwrap();
    }
}

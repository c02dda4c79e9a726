//! The CPU time a server on this machine spends, read from `/proc`: what a request costs the
//! server itself, apart from the client's scheduling and the loopback's round trip, which
//! both servers of a comparison share and which dilute a wall-time ratio toward 1.
//!
//! The server is found by the port its URL names: the process holding the listening socket
//! of that port (`/proc/net/tcp{,6}` gives the socket's inode, `/proc/<pid>/fd` the holder).
//! Its time is the sum over its threads of `/proc/<pid>/task/<tid>/schedstat`'s first
//! field, nanoseconds on a CPU, user and kernel both; a thread that exits between two
//! readings takes its time with it, which thread pools (both servers have them) make rare.

use std::fs;
use std::path::Path;

/// A server process whose CPU time can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerProcess {
    pub pid: u32,
}

impl ServerProcess {
    /// The process on this machine listening on `url`'s port, if the URL names this machine
    /// and this user may read the process's descriptors.
    pub(crate) fn of_url(url: &str) -> Option<ServerProcess> {
        let parsed = reqwest::Url::parse(url).ok()?;
        let host = parsed.host_str()?;
        let loopback = host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
        if !(loopback || host == "localhost") {
            return None;
        }
        let port = parsed.port_or_known_default()?;
        let inodes: Vec<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .filter_map(|table| fs::read_to_string(table).ok())
            .flat_map(|text| listening_inodes(&text, port))
            .collect();
        holder_of(&inodes).map(|pid| ServerProcess { pid })
    }

    /// Nanoseconds its threads have spent on a CPU so far.
    pub(crate) fn cpu_ns(&self) -> Option<u64> {
        let tasks = fs::read_dir(format!("/proc/{}/task", self.pid)).ok()?;
        let mut total = 0u64;
        for task in tasks.flatten() {
            // A thread may end between the listing and the read: it counts for nothing.
            if let Ok(text) = fs::read_to_string(task.path().join("schedstat")) {
                total += text
                    .split_whitespace()
                    .next()
                    .and_then(|ns| ns.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        Some(total)
    }
}

/// The inodes of the sockets listening on `port` in a `/proc/net/tcp` table: columns are
/// `sl local_address rem_address st ... inode`, the address `HEXIP:HEXPORT`, state `0A`
/// LISTEN.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local_port = cols.get(1)?.rsplit(':').next()?;
            let listening = *cols.get(3)? == "0A";
            let inode = cols.get(9)?.parse::<u64>().ok()?;
            (listening && u16::from_str_radix(local_port, 16).ok()? == port).then_some(inode)
        })
        .collect()
}

/// The process holding one of the socket `inodes` open.
fn holder_of(inodes: &[u64]) -> Option<u32> {
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| holds(Path::new(&format!("/proc/{pid}/fd")), &wanted))
}

fn holds(fd_dir: &Path, wanted: &[String]) -> bool {
    let Ok(fds) = fs::read_dir(fd_dir) else {
        return false;
    };
    fds.flatten().any(|fd| {
        fs::read_link(fd.path())
            .ok()
            .and_then(|target| target.to_str().map(|t| wanted.iter().any(|w| w == t)))
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_socket_of_a_port_is_found_in_the_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1\n   2: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 100 0 0 10 0\n";
        // 0x1F90 = 8080: the listener, not the connection in state 01 on the same port.
        assert_eq!(listening_inodes(table, 8080), vec![4242]);
        assert_eq!(listening_inodes(table, 8081), vec![4444]);
        assert!(listening_inodes(table, 80).is_empty());
    }

    #[test]
    fn this_process_is_found_by_its_listening_port_and_its_time_grows() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = ServerProcess::of_url(&format!("http://127.0.0.1:{port}"))
            .expect("this process listens on the port");
        assert_eq!(me.pid, std::process::id());
        let before = me.cpu_ns().unwrap();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(me.cpu_ns().unwrap() > before, "{x}");
        assert_eq!(ServerProcess::of_url("http://example.com:8086"), None);
    }
}

//! A fault-injecting TCP proxy: forwards connections on a loopback port to a target, and
//! lets a test delay what passes, turn new connections away, cut the live ones, or hold
//! back requests of one kind (a slow peer): the network failures a sender to a peer must
//! survive.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Shared {
    /// How long each chunk waits before it is forwarded, either way.
    delay: Mutex<Duration>,
    /// Wakes chunks held by a delay when it is lifted or the proxy stops.
    delay_changed: Condvar,
    refuse: AtomicBool,
    stopped: AtomicBool,
    accepted: AtomicUsize,
    next_id: AtomicU64,
    /// Both ends of every live connection, to cut them.
    live: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
    /// Where connections go (None: not yet known; they are closed).
    target: Mutex<Option<SocketAddr>>,
    /// A client's chunk holding these bytes (a request line, say) waits until the hold
    /// is lifted.
    hold: Mutex<Option<Vec<u8>>>,
    hold_changed: Condvar,
    /// Chunks the hold has caught so far.
    held: AtomicUsize,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    pub target: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultProxy {
    pub fn start(target: SocketAddr) -> FaultProxy {
        let mut proxy = Self::start_unbound();
        proxy.set_target(target);
        proxy.target = target;
        proxy
    }

    /// A proxy whose address is known before its target is (nodes that name each other
    /// as peers): connections are closed until [`FaultProxy::set_target`].
    pub fn start_unbound() -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                accepting.accepted.fetch_add(1, Ordering::SeqCst);
                if accepting.refuse.load(Ordering::SeqCst) {
                    // Accepted by the kernel already: the client sees it closed at once.
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Some(target) = *accepting.target.lock().unwrap() else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let shared = accepting.clone();
                std::thread::spawn(move || forward(client, target, &shared));
            }
        });
        FaultProxy {
            addr,
            target: addr,
            shared,
        }
    }

    /// Where new connections go from now on (a node restarted on another port).
    pub fn set_target(&self, target: SocketAddr) {
        *self.shared.target.lock().unwrap() = Some(target);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Holds every chunk, either way, this long before forwarding it (zero: none).
    pub fn set_delay(&self, delay: Duration) {
        *self.shared.delay.lock().unwrap() = delay;
        self.shared.delay_changed.notify_all();
    }

    /// Closes new connections as soon as they come (true) or forwards them again (false).
    pub fn refuse_new_connections(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::SeqCst);
    }

    /// Holds back every request whose bytes (as one chunk from the client) contain
    /// `pattern`, such as `GET /api/v2/backup/shards/`, until [`FaultProxy::release`];
    /// everything else passes.
    pub fn hold_requests(&self, pattern: &str) {
        *self.shared.hold.lock().unwrap() = Some(pattern.as_bytes().to_vec());
    }

    /// Lets held requests, and those to come, through.
    pub fn release(&self) {
        *self.shared.hold.lock().unwrap() = None;
        self.shared.hold_changed.notify_all();
    }

    /// Requests the hold has caught so far (each waits, or waited, for the release).
    pub fn requests_held(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// Cuts every live connection, both ends; returns how many there were.
    pub fn cut_live_connections(&self) -> usize {
        let live: Vec<_> = self.shared.live.lock().unwrap().drain().collect();
        for (_, (client, upstream)) in &live {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
        live.len()
    }

    /// Connections accepted so far, refused ones included.
    pub fn connections_accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    pub fn live_connections(&self) -> usize {
        self.shared.live.lock().unwrap().len()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.delay_changed.notify_all();
        self.release();
        let _ = TcpStream::connect(self.addr);
        self.cut_live_connections();
    }
}

fn forward(client: TcpStream, target: SocketAddr, shared: &Arc<Shared>) {
    let Ok(upstream) = TcpStream::connect(target) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let ends = (client.try_clone(), upstream.try_clone());
    let (Ok(client_end), Ok(upstream_end)) = ends else {
        return;
    };
    shared
        .live
        .lock()
        .unwrap()
        .insert(id, (client_end, upstream_end));
    let (Ok(client_in), Ok(upstream_out)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let outbound = {
        let shared = shared.clone();
        std::thread::spawn(move || pump(client_in, upstream_out, &shared, true))
    };
    pump(upstream, client, shared, false);
    let _ = outbound.join();
    shared.live.lock().unwrap().remove(&id);
}

/// Copies `from` to `to` until `from` ends, then ends `to`'s sending side (a half close,
/// as the peer did). `from_client`: the direction a hold applies to.
fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared, from_client: bool) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if from_client {
            let caught = |hold: &Option<Vec<u8>>| {
                hold.as_ref()
                    .is_some_and(|p| buf[..n].windows(p.len()).any(|w| w == p.as_slice()))
            };
            let mut hold = shared.hold.lock().unwrap();
            if caught(&hold) {
                shared.held.fetch_add(1, Ordering::SeqCst);
                while caught(&hold) && !shared.stopped.load(Ordering::SeqCst) {
                    hold = shared.hold_changed.wait(hold).unwrap();
                }
            }
        }
        let delay = *shared.delay.lock().unwrap();
        if !delay.is_zero() {
            let held = shared.delay.lock().unwrap();
            let _ = shared.delay_changed.wait_timeout_while(held, delay, |d| {
                !d.is_zero() && !shared.stopped.load(Ordering::SeqCst)
            });
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

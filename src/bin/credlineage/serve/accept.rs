//! Accepting client connections: connection slots bounded by `--max-connections`, idle eviction, and clients waiting for a slot.
use super::*;

/// What bounds a connection.
pub(super) struct Limits {
    pub(super) max_connections: usize,
    pub(super) max_line: usize,
    pub(super) idle: Duration,
    pub(super) line: Duration,
}

/// What the acceptor knows of a served connection, and how it asks the
/// reader to give its slot up.
pub(super) struct Slot {
    /// Milliseconds since `Slot::t0` of the last data (or of the end of the
    /// last push, so a reader blocked by back-pressure is not idle).
    last: AtomicU64,
    /// Inside `feed` (possibly waiting on the queue): not idle.
    pub(super) busy: AtomicBool,
    /// Asked to end: another connection needs the slot.
    pub(super) evict: AtomicBool,
    t0: Instant,
}

impl Slot {
    pub(super) fn new() -> Slot {
        Slot {
            last: AtomicU64::new(0),
            busy: AtomicBool::new(false),
            evict: AtomicBool::new(false),
            t0: Instant::now(),
        }
    }
    pub(super) fn touch(&self) {
        let ms = u64::try_from(self.t0.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
    /// How long it has been idle; zero while busy.
    pub(super) fn idle(&self) -> Duration {
        if self.busy.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        let now = u64::try_from(self.t0.elapsed().as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(now.saturating_sub(self.last.load(Ordering::Relaxed)))
    }
}

/// An accepted connection without a slot yet (no thread, non-blocking).
struct Waiting {
    id: u64,
    s: TcpStream,
    peer: std::net::SocketAddr,
    since: Instant,
}

/// Whether a waiting connection has sent something (or closed): `None`
/// when it has gone away with an error.
fn has_data(s: &TcpStream) -> Option<bool> {
    let mut b = [0u8; 1];
    match s.peek(&mut b) {
        Ok(_) => Some(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(false),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Some(false),
        Err(_) => None,
    }
}

/// Accept clients until a stop signal. Every connection is accepted at
/// once (so the listen backlog never fills); at most `max_connections` are
/// served, one reader thread each, the others wait without a thread. A
/// waiting connection that has data takes the slot of a served connection
/// that has been idle for [`EVICT_IDLE`]; waiting ones that stay silent for
/// `--idle-timeout` are closed, and beyond [`MAX_WAITING`] the oldest is.
pub(super) fn accept_loop(
    listener: &TcpListener,
    inq: &Arc<Queue<In>>,
    sh: &Arc<Shared>,
    lim: &Limits,
) -> Vec<JoinHandle<()>> {
    let mut readers: Vec<(JoinHandle<()>, Arc<Slot>)> = Vec::new();
    let mut waiting: VecDeque<Waiting> = VecDeque::new();
    let mut next_id = 0u64;
    let mut last_error: Option<Instant> = None;
    let mut last_poll = Instant::now();
    while !sh.stopping() {
        readers.retain(|(h, _)| !h.is_finished());
        // Accept everything pending.
        let mut accepted = false;
        for _ in 0..256 {
            match listener.accept() {
                Ok((s, peer)) => {
                    accepted = true;
                    next_id += 1;
                    Counters::add(&sh.c.connections, 1);
                    sh.log(format_args!("connection {next_id} from {peer}"));
                    if let Err(e) = s.set_nonblocking(true) {
                        sh.log(format_args!("connection {next_id}: {e}"));
                        continue;
                    }
                    waiting.push_back(Waiting {
                        id: next_id,
                        s,
                        peer,
                        since: Instant::now(),
                    });
                    if waiting.len() > MAX_WAITING {
                        if let Some(w) = waiting.pop_front() {
                            Counters::add(&sh.c.cut_off, 1);
                            sh.log(format_args!(
                                "connection {}: closed, too many connections waiting for a slot",
                                w.id
                            ));
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // E.g. out of file descriptors: say so (at most once a second) and back off.
                    if last_error.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        sh.log(format_args!("accept: {e}"));
                        last_error = Some(Instant::now());
                    }
                    thread::sleep(POLL);
                    break;
                }
            }
        }
        if !waiting.is_empty() && (accepted || last_poll.elapsed() >= WAITING_POLL) {
            last_poll = Instant::now();
            place_waiting(&mut waiting, &mut readers, inq, sh, lim);
        }
        thread::sleep(Duration::from_millis(if waiting.is_empty() {
            20
        } else {
            5
        }));
    }
    for w in waiting {
        sh.log(format_args!(
            "connection {}: closed at shutdown before it was served",
            w.id
        ));
    }
    readers.into_iter().map(|(h, _)| h).collect()
}

/// Give waiting connections the free slots (first come, first served), or
/// the slots of idle served ones when they have data; close the silent and
/// the gone.
fn place_waiting(
    waiting: &mut VecDeque<Waiting>,
    readers: &mut Vec<(JoinHandle<()>, Arc<Slot>)>,
    inq: &Arc<Queue<In>>,
    sh: &Arc<Shared>,
    lim: &Limits,
) {
    let mut ready = VecDeque::new();
    let mut silent = VecDeque::new();
    for w in waiting.drain(..) {
        match has_data(&w.s) {
            Some(true) => ready.push_back(w),
            Some(false) if w.since.elapsed() >= lim.idle => {
                Counters::add(&sh.c.cut_off, 1);
                sh.log(format_args!(
                    "connection {} ended (idle) while waiting for a slot",
                    w.id
                ));
            }
            Some(false) => silent.push_back(w),
            None => sh.log(format_args!(
                "connection {} ended (error) while waiting",
                w.id
            )),
        }
    }
    // Connections with data first; a slot that is free goes to them, then to silent ones.
    let leaving = readers
        .iter()
        .filter(|(_, s)| s.evict.load(Ordering::Relaxed))
        .count();
    let mut want_evict = ready
        .len()
        .saturating_sub(lim.max_connections.saturating_sub(readers.len()))
        .saturating_sub(leaving);
    while want_evict > 0 {
        let victim = readers
            .iter()
            .filter(|(_, s)| !s.evict.load(Ordering::Relaxed))
            .map(|(_, s)| (s.idle(), s))
            .filter(|(idle, _)| *idle >= EVICT_IDLE)
            .max_by_key(|(idle, _)| *idle)
            .map(|(_, s)| Arc::clone(s));
        let Some(v) = victim else { break };
        v.evict.store(true, Ordering::Relaxed);
        want_evict -= 1;
    }
    let mut queue: VecDeque<Waiting> = ready.into_iter().chain(silent).collect();
    while readers.len() < lim.max_connections {
        let Some(w) = queue.pop_front() else { break };
        let Waiting { id, s, peer, .. } = w;
        if let Err(e) = s.set_nonblocking(false) {
            sh.log(format_args!("connection {id} from {peer}: {e}"));
            continue;
        }
        let slot = Arc::new(Slot::new());
        slot.touch();
        let (q, shr, sl) = (Arc::clone(inq), Arc::clone(sh), Arc::clone(&slot));
        let (max_line, idle, line) = (lim.max_line, lim.idle, lim.line);
        match thread::Builder::new()
            .name(format!("conn-{id}"))
            .spawn(move || reader(id, s, &q, &shr, &sl, max_line, idle, line))
        {
            Ok(h) => readers.push((h, slot)),
            Err(e) => sh.log(format_args!("connection {id}: cannot start a thread: {e}")),
        }
    }
    // Keep arrival order for those still waiting.
    let mut rest: Vec<Waiting> = queue.into_iter().collect();
    rest.sort_by_key(|w| w.id);
    waiting.extend(rest);
}

//! `credlineage serve`: a TCP sidecar for Vector — newline-delimited JSON in on `--listen`, enriched NDJSON out to `--forward` (or stdout), every connection sharing one state.
//!
//! Threads and queues; every queue is bounded in bytes:
//!
//! ```text
//! client ─▶ reader ─┐
//! client ─▶ reader ─┼─▶ [input queue] ─▶ enricher ─▶ [output queue] ─▶ forwarder ─▶ --forward (TCP) or stdout
//! client ─▶ reader ─┘                  (one Enricher)
//! ```
//!
//! * One reader thread per client connection (at most `--max-connections`)
//!   cuts the byte stream into lines and pushes batches of whole lines.
//! * One enrichment thread owns the only `Enricher`: lines from every
//!   connection update one state, in the order they reached the queue.
//! * One forwarder thread writes to the downstream TCP connection and
//!   reconnects with backoff when it drops.
//!
//! Back-pressure: when the forward target stops reading, the forwarder blocks,
//! the output queue fills, the enricher blocks, the input queue fills and the
//! readers stop reading their sockets, so TCP flow control pushes back on the
//! clients (Vector's `socket` sink then buffers or blocks by its own `buffer`
//! settings). Nothing is dropped and nothing grows past the bounds.
//!
//! A line longer than `--max-line-bytes` is not buffered whole: it is passed on
//! unchanged (not enriched) in pieces, and while it streams, other
//! connections wait so the pieces are never interleaved with other lines.
//!
//! The design, the bounds and the shutdown sequence are in `docs/serve.md`.

use super::{
    EngineArgs, OutputArgs, build_config, check_state_writable, enrich_line, load_state,
    random_seed, record_reason, save_state, save_state_with, summary, trim_line,
};
use clap::Args;
use credlineage::reorder::{Limits as Window, Pushed, Reorder, ReorderStats};
use credlineage::{Enricher, Error, Outcome};
use std::collections::VecDeque;
use std::io::{self, BufWriter, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Bytes read from a client socket at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Socket read timeout: how often readers look at the shutdown flag.
const POLL: Duration = Duration::from_millis(100);
/// At shutdown, a client that has sent nothing for this long is closed.
const DRAIN_IDLE: Duration = Duration::from_millis(250);
/// A client that stops sending in the middle of an oversized line (holding
/// the other connections back) is cut off after this long.
const LONG_LINE_IDLE: Duration = Duration::from_secs(2);
/// When every slot is taken and a waiting connection has data, a served
/// connection that has sent nothing for this long gives its slot up.
const EVICT_IDLE: Duration = Duration::from_secs(1);
/// Accepted connections waiting for a slot: at most this many (the oldest
/// is closed to make room), looked at this often.
const MAX_WAITING: usize = 4096;
const WAITING_POLL: Duration = Duration::from_millis(50);
/// Batches of lines moved through the queues are cut at about this size.
const BATCH: usize = 256 * 1024;
/// Accounting overhead of one queue item, on top of its bytes.
const ITEM_OVERHEAD: usize = 64;
/// Reconnect backoff to `--forward`: doubles from MIN to MAX.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Write timeout on the forward connection: how often a blocked forwarder
/// looks at the abort flag.
const WRITE_POLL: Duration = Duration::from_millis(200);
/// At exit, how long to wait for the forward target to close its side.
const FINISH_WAIT: Duration = Duration::from_secs(2);
/// Malformed-record messages printed on stderr before they are only counted.
const MAX_REPORTED: u64 = 20;

#[derive(Args)]
pub struct ServeArgs {
    /// Accept newline-delimited JSON on this address (a Vector `socket` sink
    /// with `mode = "tcp"`, `encoding.codec = "json"`). Port 0 picks a free port;
    /// the bound address is printed on stderr as `listening on ADDR`.
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// Send enriched NDJSON to this address (a Vector `socket` source with
    /// `mode = "tcp"`, `decoding.codec = "json"`), reconnecting with backoff.
    /// Without it, enriched lines go to stdout.
    #[arg(long, value_name = "ADDR")]
    forward: Option<String>,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    shape: OutputArgs,
    /// Longest line that is enriched. A longer line is passed on unchanged
    /// (not enriched), streamed in pieces, never held whole in memory.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    max_line_bytes: usize,
    /// Bytes that each of the two queues (received lines, enriched lines) may
    /// hold before readers stop reading their sockets (back-pressure).
    #[arg(long, value_name = "BYTES", default_value_t = 8 << 20)]
    queue_bytes: usize,
    /// Most client connections served at once. Further ones are accepted
    /// and wait (without a thread) for a slot; one that has data takes the
    /// slot of a served connection idle for a second or more.
    #[arg(long, value_name = "N", default_value_t = 32)]
    max_connections: usize,
    /// A connection that sends nothing for this many seconds is closed
    /// (served or waiting for a slot).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    idle_timeout: f64,
    /// A line must arrive whole within this many seconds of its first byte;
    /// otherwise the connection is closed (what arrived of the line is
    /// passed on as it is). An oversized line holding the queue is also cut
    /// off after 2 s without data.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    line_timeout: f64,
    /// On SIGTERM/SIGINT: seconds allowed for the drain. Clients are read
    /// until idle for 250 ms (for at most half of it); queued lines are
    /// delivered until it runs out, then counted as undelivered.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    shutdown_timeout: f64,
    /// With `--state`: also save the state this often while serving
    /// (atomically, as at exit), so a crash or `kill -9` loses at most this
    /// much: a number of seconds, or with a unit (`90s`, `5m`, `1h`); `off`
    /// or 0 saves at exit only. Default 5m when `--state` is given.
    #[arg(long, value_name = "DURATION")]
    checkpoint_interval: Option<String>,
    /// No summary and no connection messages on stderr.
    #[arg(short, long)]
    quiet: bool,
    /// Off by default: it delays every record by up to the window. In
    /// `serve` no record is held longer than the window by the wall clock
    /// either (docs/serve.md, "Reorder window").
    #[command(flatten)]
    reorder: super::reorder::ReorderArgs,
}

// ---------------------------------------------------------------------------
// Shared flags and counters
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    bytes_in: AtomicU64,
    lines_in: AtomicU64,
    /// Lines longer than `--max-line-bytes`, passed on without enrichment.
    oversized: AtomicU64,
    /// Of those, cut off by a lost forward connection or the shutdown deadline.
    oversized_cut: AtomicU64,
    records_out: AtomicU64,
    /// Records that could not be delivered before the shutdown deadline (or
    /// after stdout was closed).
    undelivered: AtomicU64,
    reconnects: AtomicU64,
    /// Of `records_out`, records written on a `--forward` connection that was
    /// then reset or not closed cleanly: they may have been in socket
    /// buffers and lost.
    unconfirmed: AtomicU64,
    /// Connections closed for idleness, a slow line, or to free a slot.
    cut_off: AtomicU64,
}

impl Counters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

struct Shared {
    /// Set by SIGTERM/SIGINT (or a closed stdout): stop accepting, drain.
    stop: Arc<AtomicBool>,
    /// Set when the shutdown deadline has passed: stop waiting for the
    /// forward target; what is still queued is counted as undelivered.
    abort: AtomicBool,
    /// When readers stop reading at shutdown (set once, at shutdown).
    read_deadline: OnceLock<Instant>,
    quiet: bool,
    c: Counters,
    /// `--reorder-window`: its limits, counters and records held now, as the
    /// enrichment thread last left them.
    reorder: Mutex<Option<(Window, ReorderStats, usize)>>,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
    fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }
    fn log(&self, msg: std::fmt::Arguments) {
        if !self.quiet {
            eprintln!("credlineage serve: {msg}");
        }
    }
}

// ---------------------------------------------------------------------------
// A FIFO bounded in bytes, with an exclusive owner for oversized lines
// ---------------------------------------------------------------------------

/// What a push does to the queue's owner.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Nothing.
    No,
    /// Become (or stay) the owner: other connections' pushes wait.
    Keep,
    /// Give ownership up.
    Release,
}

/// A FIFO bounded by the bytes it holds. A push waits while the queue is
/// full (an item larger than the whole bound still passes when the queue is
/// empty) or while another connection owns it. `close` makes pushes fail;
/// pops drain what is left, then return `None`.
struct Queue<T> {
    inner: Mutex<QInner<T>>,
    readable: Condvar,
    writable: Condvar,
    cap: usize,
}

struct QInner<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
    closed: bool,
    owner: Option<u64>,
}

impl<T> Queue<T> {
    fn new(cap: usize) -> Queue<T> {
        Queue {
            inner: Mutex::new(QInner {
                items: VecDeque::new(),
                bytes: 0,
                closed: false,
                owner: None,
            }),
            readable: Condvar::new(),
            writable: Condvar::new(),
            cap,
        }
    }

    fn lock(&self) -> MutexGuard<'_, QInner<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append `item` (accounted as `size` bytes) for connection `who`,
    /// waiting for room and ownership. Gives the item back if the queue is closed.
    fn push(&self, who: u64, item: T, size: usize, hold: Hold) -> Result<(), T> {
        let size = size.saturating_add(ITEM_OVERHEAD);
        let mut g = self.lock();
        loop {
            if g.closed {
                return Err(item);
            }
            let mine = g.owner.is_none_or(|o| o == who);
            let room = g.bytes == 0 || g.bytes.saturating_add(size) <= self.cap;
            if mine && room {
                break;
            }
            g = self.writable.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        g.bytes = g.bytes.saturating_add(size);
        g.items.push_back((item, size));
        match hold {
            Hold::No => {}
            Hold::Keep => g.owner = Some(who),
            Hold::Release => g.owner = None,
        }
        drop(g);
        self.readable.notify_one();
        if hold == Hold::Release {
            self.writable.notify_all();
        }
        Ok(())
    }

    fn take(&self, mut g: MutexGuard<'_, QInner<T>>) -> Option<T> {
        let (item, size) = g.items.pop_front()?;
        g.bytes = g.bytes.saturating_sub(size);
        drop(g);
        self.writable.notify_all();
        Some(item)
    }

    /// The next item, if one is there now.
    fn try_pop(&self) -> Option<T> {
        let g = self.lock();
        self.take(g)
    }

    /// The next item, waiting for one until `until` at the latest.
    fn pop_until(&self, until: Instant) -> Popped<T> {
        let mut g = self.lock();
        loop {
            if !g.items.is_empty() {
                return self.take(g).map_or(Popped::Closed, Popped::Item);
            }
            if g.closed {
                return Popped::Closed;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Popped::Timeout;
            }
            g = self
                .readable
                .wait_timeout(g, left)
                .map_or_else(|p| p.into_inner().0, |r| r.0);
        }
    }

    /// The next item, waiting for one; `None` once closed and empty.
    fn pop(&self) -> Option<T> {
        let mut g = self.lock();
        loop {
            if !g.items.is_empty() {
                return self.take(g);
            }
            if g.closed {
                return None;
            }
            g = self.readable.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.readable.notify_all();
        self.writable.notify_all();
    }
}

/// What [`Queue::pop_until`] found.
enum Popped<T> {
    Item(T),
    Timeout,
    Closed,
}

/// Closes a queue when its consumer (or producer) thread ends, even by a
/// panic, so the threads on the other side never wait forever.
struct CloseOnDrop<T>(Arc<Queue<T>>);

impl<T> Drop for CloseOnDrop<T> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Received from clients.
enum In {
    /// Whole lines of one connection, each ending in `\n`; `first` is the
    /// connection's one-based line number of the first of them.
    Lines {
        conn: u64,
        first: u64,
        bytes: Vec<u8>,
    },
    /// A piece of a line longer than `--max-line-bytes`, passed on unchanged;
    /// the last piece (`end`) ends in `\n`.
    Long { bytes: Vec<u8>, end: bool },
}

/// To deliver.
enum Out {
    /// Enriched lines, each ending in `\n`.
    Lines { bytes: Vec<u8>, records: u64 },
    /// A piece of an oversized line (see [`In::Long`]).
    Long { bytes: Vec<u8>, end: bool },
}

// ---------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------

fn arg_err(flag: &str, reason: impl std::fmt::Display) -> Error {
    Error::Input {
        source_name: flag.to_string(),
        line: None,
        reason: reason.to_string(),
    }
}

const HOST_PORT: &str =
    "expected HOST:PORT, e.g. 127.0.0.1:9400 (or [::1]:9400; port 0 picks a free port)";

/// `--listen` and `--forward` take HOST:PORT: refused at start, with an
/// example, when the port is missing or not a number (a host name is
/// resolved later, when it is used).
fn check_addr(flag: &str, addr: &str) -> Result<(), Error> {
    let ok = addr.rsplit_once(':').is_some_and(|(host, port)| {
        let bracketed = host.starts_with('[') && host.ends_with(']');
        !host.is_empty() && (bracketed || !host.contains(':')) && port.parse::<u16>().is_ok()
    });
    if ok {
        return Ok(());
    }
    Err(Error::Input {
        source_name: format!("{flag} {addr}"),
        line: None,
        reason: HOST_PORT.into(),
    })
}

pub fn serve(a: ServeArgs) -> Result<ExitCode, Error> {
    let config = build_config(&a.engine, Some(&a.shape))?;
    if a.max_line_bytes == 0 || a.queue_bytes == 0 || a.max_connections == 0 {
        return Err(Error::Config(
            "--max-line-bytes, --queue-bytes and --max-connections must be at least 1".into(),
        ));
    }
    // At most a day, so deadline arithmetic cannot overflow.
    let drain = Duration::try_from_secs_f64(a.shutdown_timeout)
        .map_err(|e| arg_err("--shutdown-timeout", e))?
        .min(Duration::from_secs(86_400));
    let secs = |flag: &str, v: f64| -> Result<Duration, Error> {
        let d = Duration::try_from_secs_f64(v).map_err(|e| arg_err(flag, e))?;
        if d.is_zero() {
            return Err(arg_err(flag, "must be more than 0"));
        }
        Ok(d.min(Duration::from_secs(86_400)))
    };
    let limits = Limits {
        max_connections: a.max_connections,
        max_line: a.max_line_bytes,
        idle: secs("--idle-timeout", a.idle_timeout)?,
        line: secs("--line-timeout", a.line_timeout)?,
    };
    check_addr("--listen", &a.listen)?;
    if let Some(f) = &a.forward {
        check_addr("--forward", f)?;
    }
    if let Some(p) = &a.engine.state {
        check_state_writable(p)?;
    }
    let checkpoint = match (&a.engine.state, &a.checkpoint_interval) {
        (None, Some(_)) => {
            return Err(arg_err(
                "--checkpoint-interval",
                "needs --state (the file checkpoints are saved to)",
            ));
        }
        (None, None) => None,
        (Some(p), i) => {
            let every = match i {
                Some(i) => parse_interval(i)?,
                None => Some(DEFAULT_CHECKPOINT),
            };
            every.map(|every| (p.clone(), every))
        }
    };
    let mut enricher = Enricher::new(config)?;
    enricher.set_hash_seed(random_seed());
    load_state(&mut enricher, &a.engine.state)?;

    let stop = Arc::new(AtomicBool::new(false));
    for &sig in signal_hook::consts::TERM_SIGNALS {
        // A second signal while draining exits at once (status 1, state not saved).
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .map_err(|e| arg_err("signal handler", e))?;
    }

    let listener = TcpListener::bind(&a.listen).map_err(|e| {
        let flag = format!("--listen {}", a.listen);
        if e.kind() == io::ErrorKind::InvalidInput {
            arg_err(&flag, format!("{e}: {HOST_PORT}"))
        } else {
            arg_err(&flag, e)
        }
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| arg_err("--listen", e))?;
    let local = listener.local_addr().map_err(|e| arg_err("--listen", e))?;
    // Always printed: with port 0 it is the only way to learn the port.
    eprintln!("credlineage serve: listening on {local}");
    if !local.ip().is_loopback() {
        eprintln!(
            "credlineage serve: warning: {local} is reachable beyond this host; there is no authentication or TLS, and every client shares the one state (see \"Deploying safely\" in docs/serve.md)"
        );
    }

    let sh = Arc::new(Shared {
        stop,
        abort: AtomicBool::new(false),
        read_deadline: OnceLock::new(),
        quiet: a.quiet,
        c: Counters::default(),
        reorder: Mutex::new(None),
    });
    let inq: Arc<Queue<In>> = Arc::new(Queue::new(a.queue_bytes));
    let outq: Arc<Queue<Out>> = Arc::new(Queue::new(a.queue_bytes));
    let started = Instant::now();

    // The wall-clock bound: no record held longer than the window.
    let window = a.reorder.limits().map(|l| Window {
        max_hold_ms: Some(
            u64::try_from(l.window_secs)
                .unwrap_or(0)
                .saturating_mul(1000),
        ),
        ..l
    });
    let enricher = Arc::new(Mutex::new(enricher));
    let enrich_thread = {
        let (inq, outq, sh) = (Arc::clone(&inq), Arc::clone(&outq), Arc::clone(&sh));
        let e = Arc::clone(&enricher);
        thread::Builder::new()
            .name("enrich".into())
            .spawn(move || {
                let _in = CloseOnDrop(Arc::clone(&inq));
                let _out = CloseOnDrop(Arc::clone(&outq));
                match window {
                    Some(l) => enrich_window(&e, &inq, &outq, &sh, l),
                    None => enrich_loop(&e, &inq, &outq, &sh),
                }
            })
            .map_err(|e| arg_err("thread", e))?
    };
    let forward_thread = {
        let (outq, sh) = (Arc::clone(&outq), Arc::clone(&sh));
        let forward = a.forward.clone();
        thread::Builder::new()
            .name("forward".into())
            .spawn(move || {
                let _out = CloseOnDrop(Arc::clone(&outq));
                match forward {
                    Some(addr) => forward_loop(&outq, &mut TcpSink::new(addr), &sh),
                    None => forward_loop(&outq, &mut StdoutSink::new(), &sh),
                }
            })
            .map_err(|e| arg_err("thread", e))?
    };

    let checkpoint_thread = match checkpoint {
        Some((path, every)) => {
            let (e, sh) = (Arc::clone(&enricher), Arc::clone(&sh));
            Some(
                thread::Builder::new()
                    .name("checkpoint".into())
                    .spawn(move || checkpoint_loop(&e, &path, every, &sh))
                    .map_err(|e| arg_err("thread", e))?,
            )
        }
        None => None,
    };

    let readers = accept_loop(&listener, &inq, &sh, &limits);
    drop(listener);

    // Shutdown: readers drain their clients (until idle, closed, or half the
    // timeout), then the enricher drains the input queue, then the forwarder
    // delivers the output queue (until the timeout; then it counts the rest).
    let t0 = Instant::now();
    let deadline = t0 + drain;
    let hard = deadline + FINISH_WAIT + Duration::from_secs(1);
    let _ = sh.read_deadline.set(t0 + drain / 2);
    sh.log(format_args!(
        "stopping: draining {} connection(s), then the queues (at most {:.1} s)",
        readers.iter().filter(|h| !h.is_finished()).count(),
        drain.as_secs_f64()
    ));
    let mut stuck = false;
    for r in &readers {
        stuck |= !wait_for(r, deadline, hard, &sh);
    }
    // Closing the input queue also frees readers stuck on a full queue.
    inq.close();
    for r in readers {
        if wait_for(&r, deadline, hard + POLL * 5, &sh) {
            let _ = r.join();
        }
    }
    let mut failed = false;
    if !wait_for(&enrich_thread, deadline, hard, &sh) {
        // Stuck on a full output queue behind a stuck forwarder: free it.
        stuck = true;
        outq.close();
    }
    if wait_for(&enrich_thread, deadline, hard + POLL * 5, &sh) {
        failed |= enrich_thread.join().is_err();
    }
    if wait_for(&forward_thread, deadline, hard, &sh) {
        failed |= forward_thread.join().is_err();
    } else {
        stuck = true;
    }
    if stuck {
        outq.close();
        let left = count_left(&inq, &outq);
        Counters::add(&sh.c.undelivered, left);
        eprintln!(
            "credlineage serve: still blocked after the shutdown timeout (output not being read); {left} queued records not delivered, more may be lost in flight"
        );
    }
    if failed {
        eprintln!("credlineage serve: a worker thread failed");
    }

    // A checkpoint under way ends before the final save (the stop flag is
    // set: no new one starts).
    if let Some(t) = checkpoint_thread {
        failed |= t.join().is_err();
    }
    // The enrichment thread never holds the lock while it waits, so this
    // does not block even if that thread is stuck.
    let enricher = lock_enricher(&enricher);
    let saved = match &a.engine.state {
        Some(p) => save_state(&enricher, p),
        None => Ok(()),
    };
    let c = &sh.c;
    if !a.quiet {
        summary(
            &enricher.stats(),
            started.elapsed().as_secs_f64(),
            Counters::get(&c.bytes_in),
        );
        eprintln!(
            "credlineage serve: {} connections ({} closed for idleness or slowness), {} lines in, {} records out{}, {} oversized lines passed on unenriched ({} cut off), {} reconnects to --forward, {} undelivered",
            Counters::get(&c.connections),
            Counters::get(&c.cut_off),
            Counters::get(&c.lines_in),
            Counters::get(&c.records_out),
            match Counters::get(&c.unconfirmed) {
                0 => String::new(),
                n => format!(
                    " (delivery of {n} of them not confirmed: written on --forward connections that were reset or not closed cleanly, they may not have arrived)"
                ),
            },
            Counters::get(&c.oversized),
            Counters::get(&c.oversized_cut),
            Counters::get(&c.reconnects),
            Counters::get(&c.undelivered),
        );
        let w = *sh.reorder.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((l, st, held)) = w {
            super::reorder::summary("credlineage serve: ", &l, &st, held);
        }
    }
    saved?;
    Ok(
        if Counters::get(&c.undelivered) > 0 || Counters::get(&c.unconfirmed) > 0 || stuck || failed
        {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// Wait for a thread to finish. Once `deadline` has passed, set the abort
/// flag (a forwarder stuck on a dead target then gives up); at `hard`, stop
/// waiting (a write to a stdout nobody reads cannot be interrupted). Whether
/// it finished.
fn wait_for<T>(h: &JoinHandle<T>, deadline: Instant, hard: Instant, sh: &Shared) -> bool {
    while !h.is_finished() {
        let now = Instant::now();
        if now >= deadline && !sh.abort.swap(true, Ordering::Relaxed) {
            sh.log(format_args!(
                "shutdown timeout reached: giving up on what is still queued"
            ));
        }
        if now >= hard {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Records in items left in the queues by threads that are stuck.
fn count_left(inq: &Queue<In>, outq: &Queue<Out>) -> u64 {
    let mut n = 0;
    while let Some(i) = inq.try_pop() {
        n += match i {
            In::Lines { bytes, .. } => count_lines(&bytes),
            In::Long { end, .. } => u64::from(end),
        };
    }
    while let Some(o) = outq.try_pop() {
        n += match o {
            Out::Lines { records, .. } => records,
            Out::Long { end, .. } => u64::from(end),
        };
    }
    n
}

/// What bounds a connection.
struct Limits {
    max_connections: usize,
    max_line: usize,
    idle: Duration,
    line: Duration,
}

/// What the acceptor knows of a served connection, and how it asks the
/// reader to give its slot up.
struct Slot {
    /// Milliseconds since `Slot::t0` of the last data (or of the end of the
    /// last push, so a reader blocked by back-pressure is not idle).
    last: AtomicU64,
    /// Inside `feed` (possibly waiting on the queue): not idle.
    busy: AtomicBool,
    /// Asked to end: another connection needs the slot.
    evict: AtomicBool,
    t0: Instant,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            last: AtomicU64::new(0),
            busy: AtomicBool::new(false),
            evict: AtomicBool::new(false),
            t0: Instant::now(),
        }
    }
    fn touch(&self) {
        let ms = u64::try_from(self.t0.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
    /// How long it has been idle; zero while busy.
    fn idle(&self) -> Duration {
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
fn accept_loop(
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

// ---------------------------------------------------------------------------
// Readers: bytes to lines
// ---------------------------------------------------------------------------

/// The line cutter of one connection.
struct Lines<'a> {
    conn: u64,
    q: &'a Queue<In>,
    sh: &'a Shared,
    max_line: usize,
    /// The start of a line whose newline has not arrived (never more than `max_line` bytes).
    pending: Vec<u8>,
    /// Inside an oversized line: its pieces go straight through.
    long: bool,
    /// Whole lines not yet pushed.
    batch: Vec<u8>,
    batch_first: u64,
    /// One-based number of the line being read.
    line_no: u64,
}

/// The queue was closed (the enrichment thread is gone).
struct Closed;

impl Lines<'_> {
    fn push(&self, item: In, size: usize, hold: Hold) -> Result<(), Closed> {
        self.q.push(self.conn, item, size, hold).map_err(|item| {
            let lost = match item {
                In::Lines { bytes, .. } => count_lines(&bytes),
                In::Long { end, .. } => u64::from(end),
            };
            Counters::add(&self.sh.c.undelivered, lost);
            Closed
        })
    }

    fn flush(&mut self) -> Result<(), Closed> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.batch);
        let size = bytes.len();
        let item = In::Lines {
            conn: self.conn,
            first: self.batch_first,
            bytes,
        };
        self.push(item, size, Hold::No)
    }

    fn push_long(&mut self, bytes: Vec<u8>, end: bool) -> Result<(), Closed> {
        let size = bytes.len();
        let hold = if end { Hold::Release } else { Hold::Keep };
        self.push(In::Long { bytes, end }, size, hold)?;
        self.long = !end;
        if end {
            self.line_no += 1;
        }
        Ok(())
    }

    /// Cut `data` into lines.
    fn feed(&mut self, mut data: &[u8]) -> Result<(), Closed> {
        while !data.is_empty() {
            let nl = data.iter().position(|&c| c == b'\n');
            let take = nl.map_or(data.len(), |i| i + 1);
            let (piece, rest) = data.split_at(take);
            data = rest;
            if self.long {
                self.push_long(piece.to_vec(), nl.is_some())?;
                continue;
            }
            let len = self.pending.len() + nl.unwrap_or(piece.len());
            if len > self.max_line {
                // Too long to enrich: pass it on unchanged, in pieces, holding
                // the queue so no other line lands between them.
                self.flush()?;
                let mut first = std::mem::take(&mut self.pending);
                first.extend_from_slice(piece);
                Counters::add(&self.sh.c.oversized, 1);
                Counters::add(&self.sh.c.lines_in, 1);
                self.sh.log(format_args!(
                    "connection {}: line {} is longer than --max-line-bytes ({}): passed on unchanged, not enriched",
                    self.conn, self.line_no, self.max_line
                ));
                self.push_long(first, nl.is_some())?;
                continue;
            }
            if nl.is_none() {
                self.pending.extend_from_slice(piece);
                continue;
            }
            if self.batch.is_empty() {
                self.batch_first = self.line_no;
                if self.pending.is_empty() {
                    self.batch.extend_from_slice(piece);
                } else {
                    self.batch = std::mem::take(&mut self.pending);
                    self.batch.extend_from_slice(piece);
                }
            } else {
                self.batch.extend_from_slice(&self.pending);
                self.batch.extend_from_slice(piece);
                self.pending.clear();
            }
            if self.pending.capacity() > 4 * READ_CHUNK {
                self.pending = Vec::new();
            }
            self.line_no += 1;
            Counters::add(&self.sh.c.lines_in, 1);
            if self.batch.len() >= BATCH {
                self.flush()?;
            }
        }
        self.flush()
    }

    /// The connection ends: an unterminated last line is passed on as a line.
    fn finish(&mut self, why: &str) -> Result<(), Closed> {
        if self.long {
            self.sh.log(format_args!(
                "connection {}: {why} inside an oversized line; it is ended there",
                self.conn
            ));
            return self.push_long(b"\n".to_vec(), true);
        }
        if !self.pending.is_empty() {
            if why != "closed" {
                self.sh.log(format_args!(
                    "connection {}: {why} with an unterminated line of {} bytes; passed on as it is",
                    self.conn,
                    self.pending.len()
                ));
            }
            let mut last = std::mem::take(&mut self.pending);
            last.push(b'\n');
            if self.batch.is_empty() {
                self.batch_first = self.line_no;
            }
            self.batch.extend_from_slice(&last);
            self.line_no += 1;
            Counters::add(&self.sh.c.lines_in, 1);
        }
        self.flush()
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[allow(clippy::too_many_arguments)]
fn reader(
    conn: u64,
    mut s: TcpStream,
    q: &Queue<In>,
    sh: &Shared,
    slot: &Slot,
    max_line: usize,
    idle: Duration,
    line_timeout: Duration,
) {
    if let Err(e) = s.set_read_timeout(Some(POLL)) {
        sh.log(format_args!("connection {conn}: {e}"));
        return;
    }
    let mut lines = Lines {
        conn,
        q,
        sh,
        max_line,
        pending: Vec::new(),
        long: false,
        batch: Vec::new(),
        batch_first: 1,
        line_no: 1,
    };
    let mut buf = vec![0u8; READ_CHUNK];
    let mut last_data = Instant::now();
    let mut drain_from: Option<Instant> = None;
    // When the line now arriving began (None between lines).
    let mut line_since: Option<Instant> = None;
    let why: String = loop {
        if slot.evict.load(Ordering::Relaxed) {
            Counters::add(&sh.c.cut_off, 1);
            break "idle, its slot given to a waiting connection".into();
        }
        if line_since.is_some_and(|t| t.elapsed() >= line_timeout) {
            Counters::add(&sh.c.cut_off, 1);
            break "line not complete within --line-timeout".into();
        }
        if drain_from.is_none() && sh.stopping() {
            drain_from = Some(Instant::now());
        }
        if drain_from.is_some() && sh.read_deadline.get().is_some_and(|d| Instant::now() >= *d) {
            break "shutdown".into();
        }
        match s.read(&mut buf) {
            Ok(0) => break "closed".into(),
            Ok(n) => {
                last_data = Instant::now();
                Counters::add(&sh.c.bytes_in, n as u64);
                slot.busy.store(true, Ordering::Relaxed);
                let fed = lines.feed(buf.get(..n).unwrap_or_default());
                slot.touch();
                slot.busy.store(false, Ordering::Relaxed);
                if fed.is_err() {
                    return;
                }
                if lines.pending.is_empty() && !lines.long {
                    line_since = None;
                } else if line_since.is_none() {
                    line_since = Some(last_data);
                }
            }
            Err(e) if is_timeout(&e) => {
                if let Some(d) = drain_from {
                    if last_data.max(d).elapsed() >= DRAIN_IDLE {
                        break "shutdown".into();
                    }
                }
                if lines.long && last_data.elapsed() >= LONG_LINE_IDLE {
                    Counters::add(&sh.c.cut_off, 1);
                    break "idle inside an oversized line".into();
                }
                if drain_from.is_none() && slot.idle() >= idle {
                    Counters::add(&sh.c.cut_off, 1);
                    break "idle for --idle-timeout".into();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break e.to_string(),
        }
    };
    let _ = lines.finish(&why);
    let _ = s.shutdown(Shutdown::Both);
    sh.log(format_args!(
        "connection {conn} ended ({why}) after {} lines",
        lines.line_no - 1
    ));
}

// ---------------------------------------------------------------------------
// The enrichment thread
// ---------------------------------------------------------------------------

/// `--checkpoint-interval` when `--state` is given and it is not.
const DEFAULT_CHECKPOINT: Duration = Duration::from_secs(5 * 60);

/// `--checkpoint-interval`: seconds, or a number with `s`, `m` or `h`;
/// `off` or zero is `None` (save at exit only). At most a day.
fn parse_interval(v: &str) -> Result<Option<Duration>, Error> {
    let t = v.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (num, unit) = match t.strip_suffix(['s', 'm', 'h']) {
        Some(n) => (n, &t[n.len()..]),
        None => (t, "s"),
    };
    let scale = match unit {
        "m" => 60.0,
        "h" => 3600.0,
        _ => 1.0,
    };
    let bad = || {
        arg_err(
            &format!("--checkpoint-interval {v}"),
            "expected a duration: seconds, or a number with s, m or h (e.g. 30s, 5m, 1h), or off",
        )
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    let d = Duration::try_from_secs_f64(n * scale).map_err(|_| bad())?;
    Ok((!d.is_zero()).then(|| d.min(Duration::from_secs(86_400))))
}

/// Save the state to `path` every `every` until the stop flag is set: the
/// snapshot is written with the enricher locked (records wait meanwhile),
/// then synced and renamed without it. A failed checkpoint is said and
/// retried at the next one; the save at exit is still made.
fn checkpoint_loop(e: &Mutex<Enricher>, path: &std::path::Path, every: Duration, sh: &Shared) {
    let mut next = Instant::now() + every;
    loop {
        while Instant::now() < next {
            if sh.stopping() {
                return;
            }
            thread::sleep(POLL.min(next.saturating_duration_since(Instant::now())));
        }
        if sh.stopping() {
            return;
        }
        let t0 = Instant::now();
        match save_state_with(path, |w| lock_enricher(e).write_snapshot(w)) {
            Ok(()) => sh.log(format_args!(
                "checkpoint: state saved to {} ({:.2} s)",
                path.display(),
                t0.elapsed().as_secs_f64()
            )),
            // Always said: the next crash would lose more than the user expects.
            Err(err) => eprintln!("credlineage serve: checkpoint failed: {err}"),
        }
        next = Instant::now() + every;
    }
}

fn lock_enricher(e: &Mutex<Enricher>) -> MutexGuard<'_, Enricher> {
    e.lock().unwrap_or_else(|p| p.into_inner())
}

/// The one enrichment thread. The enricher is locked only while an item is
/// processed, never while waiting on the output queue, so the main thread can
/// always take a snapshot at shutdown.
fn enrich_loop(e: &Mutex<Enricher>, inq: &Queue<In>, outq: &Queue<Out>, sh: &Shared) {
    let mut bad = Vec::new();
    let mut reported = 0u64;
    while let Some(item) = inq.pop() {
        let (out, records) = match item {
            In::Lines { conn, first, bytes } => {
                let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 2);
                let mut records = 0u64;
                let mut g = lock_enricher(e);
                for (i, line) in bytes.split_inclusive(|&c| c == b'\n').enumerate() {
                    let n = enrich_line(&mut g, trim_line(line), &mut out, &mut bad);
                    records += n;
                    for (k, err) in bad.drain(..) {
                        reported += 1;
                        if reported <= MAX_REPORTED {
                            // Named by connection and line (from 1), and by
                            // position in the line when it held several records.
                            let of_line = if n > 1 {
                                format!("record {} of the line: ", k + 1)
                            } else {
                                String::new()
                            };
                            sh.log(format_args!(
                                "connection {conn}: line {}: {of_line}{} (passed on unchanged){}",
                                first + i as u64,
                                record_reason(&err),
                                if reported == MAX_REPORTED {
                                    "; further ones are only counted"
                                } else {
                                    ""
                                }
                            ));
                        }
                    }
                }
                drop(g);
                if out.is_empty() {
                    continue;
                }
                (
                    Out::Lines {
                        bytes: out,
                        records,
                    },
                    records,
                )
            }
            In::Long { bytes, end } => (Out::Long { bytes, end }, u64::from(end)),
        };
        let size = match &out {
            Out::Lines { bytes, .. } | Out::Long { bytes, .. } => bytes.len(),
        };
        if outq.push(0, out, size, Hold::No).is_err() {
            Counters::add(&sh.c.undelivered, records);
        }
    }
}

/// A record held by `serve`'s reorder window, and where it came from (for
/// the message when it cannot be read).
struct Held {
    bytes: Box<[u8]>,
    conn: u64,
    line: u64,
    /// Its position in its line (from 0), when the line held several.
    of_line: Option<u64>,
}

/// The enrichment thread with `--reorder-window`: every record of a line
/// goes to the window (keyed by `peek_order`, as batch mode sorts);
/// released records are enriched in time order. Records are released by the
/// watermark, the caps, and the wall clock (held at most the window), and
/// all of them, in time order, when the input queue closes. Oversized lines
/// are never held (never in memory whole): they are passed on at once, and
/// nothing is released by the clock while one streams, so its pieces stay
/// together.
fn enrich_window(
    e: &Mutex<Enricher>,
    inq: &Queue<In>,
    outq: &Queue<Out>,
    sh: &Shared,
    limits: Window,
) {
    let mut w: Reorder<Held> = Reorder::new(limits);
    let t0 = Instant::now();
    let now = || u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut reported = 0u64;
    let mut in_long = false;
    let mut out = Vec::new();
    let mut records = 0u64;
    let publish = |w: &Reorder<Held>| {
        *sh.reorder.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((w.limits(), w.stats(), w.len()));
    };
    publish(&w);
    // Enrich one released record into `out`.
    let mut release = |g: &mut Enricher, h: Held, out: &mut Vec<u8>, records: &mut u64| {
        *records += 1;
        let o = g.process_into(&h.bytes, None, out);
        out.push(b'\n');
        if let Outcome::Malformed(err) = o {
            reported += 1;
            if reported <= MAX_REPORTED {
                sh.log(format_args!(
                    "connection {}: line {}: {}{} (passed on unchanged){}",
                    h.conn,
                    h.line,
                    h.of_line
                        .map_or(String::new(), |k| format!("record {} of the line: ", k + 1)),
                    record_reason(&err),
                    if reported == MAX_REPORTED {
                        "; further ones are only counted"
                    } else {
                        ""
                    }
                ));
            }
        }
    };
    let send = |out: &mut Vec<u8>, records: &mut u64| {
        if out.is_empty() {
            return;
        }
        let bytes = std::mem::take(out);
        let n = std::mem::take(records);
        let size = bytes.len();
        if outq
            .push(0, Out::Lines { bytes, records: n }, size, Hold::No)
            .is_err()
        {
            Counters::add(&sh.c.undelivered, n);
        }
    };
    loop {
        let popped = match w.next_deadline() {
            Some(d) if !in_long => inq.pop_until(t0 + Duration::from_millis(d)),
            _ => inq.pop().map_or(Popped::Closed, Popped::Item),
        };
        match popped {
            Popped::Closed => break,
            Popped::Timeout => {
                let mut g = lock_enricher(e);
                while let Some((h, _)) = w.pop_due(Some(now())) {
                    release(&mut g, h, &mut out, &mut records);
                }
                drop(g);
            }
            Popped::Item(In::Long { bytes, end }) => {
                in_long = !end;
                let size = bytes.len();
                if outq
                    .push(0, Out::Long { bytes, end }, size, Hold::No)
                    .is_err()
                {
                    Counters::add(&sh.c.undelivered, u64::from(end));
                }
            }
            Popped::Item(In::Lines { conn, first, bytes }) => {
                let mut g = lock_enricher(e);
                for (i, line) in bytes.split_inclusive(|&c| c == b'\n').enumerate() {
                    let line = trim_line(line);
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let line_no = first + i as u64;
                    let pieces = credlineage::input::unroll_line(line);
                    let one = [line];
                    let many: Vec<&[u8]>;
                    let recs: &[&[u8]] = match &pieces {
                        Some(p) => {
                            many = p.iter().map(|p| &*p.bytes).collect();
                            &many
                        }
                        None => &one,
                    };
                    for (k, r) in recs.iter().enumerate() {
                        let h = Held {
                            bytes: (*r).into(),
                            conn,
                            line: line_no,
                            of_line: (recs.len() > 1).then_some(k as u64),
                        };
                        let order = g.peek_order(r);
                        let t = now();
                        if let Pushed::Now(h, _) = w.push(order, h, r.len(), Some(t)) {
                            release(&mut g, h, &mut out, &mut records);
                        }
                        while let Some((h, _)) = w.pop_due(Some(t)) {
                            release(&mut g, h, &mut out, &mut records);
                        }
                    }
                }
                drop(g);
            }
        }
        send(&mut out, &mut records);
        publish(&w);
    }
    // The input is closed: everything held, in time order — unless the
    // shutdown deadline has passed (then it is counted as undelivered).
    let mut g = lock_enricher(e);
    while !w.is_empty() {
        if sh.aborted() {
            Counters::add(&sh.c.undelivered, w.len() as u64);
            break;
        }
        let mut n = 0;
        while let Some((h, _)) = w.pop_flush() {
            release(&mut g, h, &mut out, &mut records);
            n += 1;
            if n == 4096 {
                break;
            }
        }
        send(&mut out, &mut records);
    }
    drop(g);
    publish(&w);
}

// ---------------------------------------------------------------------------
// The forwarder
// ---------------------------------------------------------------------------

trait Sink {
    fn send(&mut self, item: Out, sh: &Shared);
    /// The queue is empty for now: flush.
    fn idle(&mut self, sh: &Shared);
    /// Everything has been sent.
    fn finish(&mut self, sh: &Shared);
}

fn forward_loop(q: &Queue<Out>, sink: &mut dyn Sink, sh: &Shared) {
    loop {
        let item = match q.try_pop() {
            Some(i) => i,
            None => {
                sink.idle(sh);
                match q.pop() {
                    Some(i) => i,
                    None => break,
                }
            }
        };
        sink.send(item, sh);
    }
    sink.finish(sh);
}

fn count_lines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// Without `--forward`: enriched lines on stdout.
struct StdoutSink {
    w: BufWriter<io::Stdout>,
    broken: bool,
}

impl StdoutSink {
    fn new() -> StdoutSink {
        StdoutSink {
            w: BufWriter::with_capacity(1 << 16, io::stdout()),
            broken: false,
        }
    }

    fn fail(&mut self, e: &io::Error, sh: &Shared) {
        if !self.broken {
            eprintln!("credlineage serve: stdout: {e}; stopping");
            self.broken = true;
            sh.stop.store(true, Ordering::Relaxed);
        }
    }
}

impl Sink for StdoutSink {
    fn send(&mut self, item: Out, sh: &Shared) {
        let (bytes, records) = match &item {
            Out::Lines { bytes, records } => (bytes, *records),
            Out::Long { bytes, end } => (bytes, u64::from(*end)),
        };
        if self.broken {
            Counters::add(&sh.c.undelivered, records);
            return;
        }
        match self.w.write_all(bytes) {
            Ok(()) => Counters::add(&sh.c.records_out, records),
            Err(e) => {
                self.fail(&e, sh);
                Counters::add(&sh.c.undelivered, records);
            }
        }
    }

    fn idle(&mut self, sh: &Shared) {
        if !self.broken {
            if let Err(e) = self.w.flush() {
                self.fail(&e, sh);
            }
        }
    }

    fn finish(&mut self, sh: &Shared) {
        self.idle(sh);
    }
}

/// Where an oversized line being streamed stands.
enum LongState {
    /// Not inside one.
    Idle,
    /// Pieces have gone out on the connection of this epoch.
    Sending(u64),
    /// Cut off: drop the rest of its pieces.
    Skipping,
}

/// `--forward ADDR`: one TCP connection, reconnected with backoff.
struct TcpSink {
    addr: String,
    conn: Option<TcpStream>,
    /// Incremented on every new connection.
    epoch: u64,
    backoff: Duration,
    /// The current outage has been reported.
    reported_down: bool,
    long: LongState,
    /// Records written whole on the current connection: not confirmed until
    /// the peer closes it cleanly.
    on_conn: u64,
}

impl TcpSink {
    fn new(addr: String) -> TcpSink {
        TcpSink {
            addr,
            conn: None,
            epoch: 0,
            backoff: BACKOFF_MIN,
            reported_down: false,
            long: LongState::Idle,
            on_conn: 0,
        }
    }

    fn try_connect(&self) -> io::Result<TcpStream> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "address resolves to nothing");
        for addr in self.addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    s.set_write_timeout(Some(WRITE_POLL))?;
                    return Ok(s);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Make sure there is a connection, retrying with backoff; false only on abort.
    fn connect(&mut self, sh: &Shared) -> bool {
        while self.conn.is_none() {
            if sh.aborted() {
                return false;
            }
            match self.try_connect() {
                Ok(s) => {
                    self.conn = Some(s);
                    self.epoch += 1;
                    if self.epoch > 1 {
                        Counters::add(&sh.c.reconnects, 1);
                    }
                    sh.log(format_args!("forwarding to {}", self.addr));
                    self.backoff = BACKOFF_MIN;
                    self.reported_down = false;
                }
                Err(e) => {
                    if !self.reported_down {
                        sh.log(format_args!(
                            "cannot connect to --forward {}: {e}; retrying (records wait in the queue)",
                            self.addr
                        ));
                        self.reported_down = true;
                    }
                    let until = Instant::now() + self.backoff;
                    while Instant::now() < until && !sh.aborted() {
                        thread::sleep(Duration::from_millis(20));
                    }
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        true
    }

    /// The connection is gone. `clean`: the peer closed it with an end of
    /// stream and no reset followed; a peer that closes with unread data
    /// resets the connection instead, so what was written on it has been
    /// read. Otherwise (a reset, a broken pipe, any error) the records
    /// written on it are not confirmed: the last of them may have been in
    /// the kernel's socket buffers (ours or the peer's) and lost; they are
    /// counted and reported, never claimed delivered.
    fn lost(&mut self, why: &dyn std::fmt::Display, clean: bool, sh: &Shared) {
        if let Some(s) = self.conn.take() {
            let _ = s.shutdown(Shutdown::Both);
            let n = std::mem::take(&mut self.on_conn);
            if clean || n == 0 {
                sh.log(format_args!(
                    "connection to --forward {} lost: {why}; reconnecting",
                    self.addr
                ));
            } else {
                Counters::add(&sh.c.unconfirmed, n);
                sh.log(format_args!(
                    "connection to --forward {} lost: {why}; delivery of the {n} records written on it is not confirmed (those still in socket buffers are lost); reconnecting",
                    self.addr
                ));
            }
        }
    }

    /// A downstream that has closed its end is noticed before writing to it
    /// (a write to a half-closed socket may "succeed" and be lost). A socket
    /// source never sends anything, so anything readable is discarded.
    fn check_alive(&mut self, sh: &Shared) {
        let Some(s) = self.conn.as_mut() else { return };
        if let Err(e) = s.set_nonblocking(true) {
            return self.lost(&e, false, sh);
        }
        let mut buf = [0u8; 4096];
        let dead: Option<(String, bool)> = loop {
            match s.read(&mut buf) {
                Ok(0) => break Some(("closed by the peer".into(), true)),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some((e.to_string(), false)),
            }
        };
        // An end of stream: bytes of ours still in flight then would draw a
        // reset from the peer; give it a moment to arrive.
        let dead = match dead {
            Some((why, true)) if self.on_conn > 0 => {
                thread::sleep(Duration::from_millis(50));
                match s.read(&mut buf) {
                    Ok(_) => Some((why, true)),
                    Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {
                        Some((why, true))
                    }
                    Err(e) => Some((format!("{why}, then {e}"), false)),
                }
            }
            d => d,
        };
        let dead = dead.or_else(|| {
            s.set_nonblocking(false)
                .err()
                .map(|e| (e.to_string(), false))
        });
        if let Some((why, clean)) = dead {
            self.lost(&why, clean, sh);
        }
    }

    /// Give up an oversized line partway (its start went out on a lost
    /// connection, or the shutdown deadline passed).
    fn cut(&mut self, end: bool, sh: &Shared) {
        Counters::add(&sh.c.oversized_cut, 1);
        Counters::add(&sh.c.undelivered, 1);
        sh.log(format_args!(
            "an oversized line could not be delivered whole; the rest of it is dropped"
        ));
        self.long = if end {
            LongState::Idle
        } else {
            LongState::Skipping
        };
    }

    fn send_lines(&mut self, bytes: &[u8], records: u64, sh: &Shared) {
        self.check_alive(sh);
        let mut off = 0;
        // Where the current connection started on this batch.
        let mut base = 0;
        let lines_in =
            |from: usize, to: usize| count_lines(bytes.get(from..to).unwrap_or_default());
        while off < bytes.len() {
            if sh.aborted() {
                let done = line_start(bytes, off);
                self.on_conn += lines_in(base, done);
                Counters::add(&sh.c.records_out, lines_in(0, done));
                Counters::add(&sh.c.undelivered, lines_in(done, bytes.len()));
                return;
            }
            if !self.connect(sh) {
                continue;
            }
            let Some(s) = self.conn.as_mut() else {
                continue;
            };
            match s.write(bytes.get(off..).unwrap_or_default()) {
                Ok(0) => {
                    off = line_start(bytes, off);
                    self.on_conn += lines_in(base, off);
                    self.lost(&"wrote 0 bytes", false, sh);
                    base = off;
                }
                Ok(n) => off += n,
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Resend from the start of the line that was cut; lines
                    // written whole before the error are not confirmed.
                    off = line_start(bytes, off);
                    self.on_conn += lines_in(base, off);
                    self.lost(&e, false, sh);
                    base = off;
                }
            }
        }
        self.on_conn += lines_in(base, bytes.len());
        Counters::add(&sh.c.records_out, records);
    }

    fn send_long(&mut self, bytes: &[u8], end: bool, sh: &Shared) {
        match self.long {
            LongState::Skipping => {
                if end {
                    self.long = LongState::Idle;
                }
                return;
            }
            LongState::Idle => self.check_alive(sh),
            LongState::Sending(_) => {}
        }
        let mut off = 0;
        while off < bytes.len() {
            if sh.aborted() {
                return self.cut(end, sh);
            }
            if !self.connect(sh) {
                continue;
            }
            if let LongState::Sending(epoch) = self.long {
                if epoch != self.epoch {
                    return self.cut(end, sh);
                }
            }
            let Some(s) = self.conn.as_mut() else {
                continue;
            };
            match s.write(bytes.get(off..).unwrap_or_default()) {
                Ok(0) => self.lost(&"wrote 0 bytes", false, sh),
                Ok(n) => {
                    off += n;
                    if matches!(self.long, LongState::Idle) {
                        self.long = LongState::Sending(self.epoch);
                    }
                }
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.lost(&e, false, sh),
            }
        }
        if end {
            self.long = LongState::Idle;
            self.on_conn += 1;
            Counters::add(&sh.c.records_out, 1);
        }
    }
}

/// Offset of the start of the line that holds `off`.
fn line_start(b: &[u8], off: usize) -> usize {
    b.get(..off)
        .and_then(|p| p.iter().rposition(|&c| c == b'\n'))
        .map_or(0, |i| i + 1)
}

impl Sink for TcpSink {
    fn send(&mut self, item: Out, sh: &Shared) {
        match item {
            Out::Lines { bytes, records } => self.send_lines(&bytes, records, sh),
            Out::Long { bytes, end } => self.send_long(&bytes, end, sh),
        }
    }

    fn idle(&mut self, _sh: &Shared) {}

    /// Close the write side and wait (at most `FINISH_WAIT`, or until the
    /// shutdown deadline) for the peer to close its side: it has then read
    /// everything. If it does not (or resets), the records written on the
    /// connection are counted as not confirmed.
    fn finish(&mut self, sh: &Shared) {
        let Some(s) = self.conn.as_mut() else { return };
        let why: Option<String> = (|| {
            if let Err(e) = s
                .shutdown(Shutdown::Write)
                .and_then(|()| s.set_read_timeout(Some(POLL)))
            {
                return Some(e.to_string());
            }
            let until = Instant::now() + FINISH_WAIT;
            let mut buf = [0u8; 4096];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {
                        if sh.aborted() || Instant::now() >= until {
                            return Some("it did not close its side in time".into());
                        }
                    }
                    Err(e) => return Some(e.to_string()),
                }
            }
        })();
        match why {
            None => self.on_conn = 0,
            Some(why) => self.lost(&why, false, sh),
        }
    }
}

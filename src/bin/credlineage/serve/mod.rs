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

mod accept;
mod checkpoint;
mod enrich;
mod forward;
mod queue;
mod readers;

use accept::{Limits, Slot, accept_loop};
use checkpoint::{DEFAULT_CHECKPOINT, checkpoint_loop, parse_interval};
use enrich::{enrich_loop, enrich_window, lock_enricher};
use forward::{StdoutSink, TcpSink, count_lines, forward_loop};
use queue::{CloseOnDrop, Hold, Popped, Queue};
use readers::{is_timeout, reader};

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

//! Forward delivery: the forwarder thread writing enriched lines to stdout or to the `--forward` TCP target, reconnecting with backoff.
use super::*;

pub(super) trait Sink {
    fn send(&mut self, item: Out, sh: &Shared);
    /// The queue is empty for now: flush.
    fn idle(&mut self, sh: &Shared);
    /// Everything has been sent.
    fn finish(&mut self, sh: &Shared);
}

pub(super) fn forward_loop(q: &Queue<Out>, sink: &mut dyn Sink, sh: &Shared) {
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

pub(super) fn count_lines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// Without `--forward`: enriched lines on stdout.
pub(super) struct StdoutSink {
    w: BufWriter<io::Stdout>,
    broken: bool,
}

impl StdoutSink {
    pub(super) fn new() -> StdoutSink {
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
pub(super) struct TcpSink {
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
    pub(super) fn new(addr: String) -> TcpSink {
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

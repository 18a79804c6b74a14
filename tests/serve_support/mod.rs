//! The `credlineage serve` process under test, shared by `tests/serve.rs` and `tests/reorder.rs`: started on a loopback port it reports (`listening on ADDR`), its stdout and stderr collected as they come, stopped by a signal within a bounded wait.
#![allow(dead_code)]

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_credlineage");
/// The longest any single wait of a serve test may take.
pub const WAIT: Duration = Duration::from_secs(60);

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<Vec<u8>>>,
    /// The thread reading stdout (`None` when nobody reads it).
    reader: Option<thread::JoinHandle<()>>,
}

/// How `serve` ended, and everything it wrote.
pub struct Exit {
    pub code: i32,
    pub stderr: String,
    pub stdout: Vec<u8>,
}

/// Read `from` to its end into `into`, as it comes.
fn collect<R: Read + Send + 'static>(
    mut from: R,
    into: Arc<Mutex<Vec<u8>>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 1 << 16];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            into.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    })
}

impl Server {
    /// `credlineage serve --listen 127.0.0.1:0 <args>`; waits for `listening on ADDR`.
    pub fn start(args: &[&str]) -> Server {
        Server::start_on("127.0.0.1:0", args)
    }

    pub fn start_on(listen: &str, args: &[&str]) -> Server {
        Server::spawn(listen, args, true)
    }

    /// With `read_stdout` false, the server's stdout is a pipe nobody reads.
    pub fn spawn(listen: &str, args: &[&str], read_stdout: bool) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", listen])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        // Unread, the pipe stays open in `child` until the server exits.
        let reader = if read_stdout {
            let out = child.stdout.take().unwrap();
            Some(collect(out, Arc::clone(&stdout)))
        } else {
            None
        };
        let mut err = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let se = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut sent = false;
            while let Ok(n @ 1..) = err.read(&mut buf) {
                let mut s = se.lock().unwrap();
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
                if !sent {
                    if let Some(a) = s
                        .lines()
                        .find_map(|l| l.split("listening on ").nth(1))
                        .and_then(|a| a.trim().parse::<SocketAddr>().ok())
                    {
                        let _ = tx.send(a);
                        sent = true;
                    }
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("no `listening on`: {}", stderr.lock().unwrap());
            }
        };
        Server {
            child,
            addr,
            stderr,
            stdout,
            reader,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// What the server has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// What the server has written to stdout so far.
    pub fn stdout(&self) -> Vec<u8> {
        self.stdout.lock().unwrap().clone()
    }

    /// Lines the server has written to stdout so far.
    pub fn out_lines(&self) -> usize {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .filter(|&&c| c == b'\n')
            .count()
    }

    /// Resident memory, KiB.
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }

    /// SIGTERM, then wait (bounded) for the exit.
    pub fn terminate(mut self) -> Exit {
        self.signal("TERM");
        self.wait()
    }

    pub fn wait(&mut self) -> Exit {
        let until = Instant::now() + WAIT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                panic!("serve did not exit: {}", self.stderr());
            }
            thread::sleep(Duration::from_millis(20));
        };
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        // Let the stderr thread read the last bytes.
        thread::sleep(Duration::from_millis(50));
        Exit {
            code: status.code().unwrap_or(-1),
            stderr: self.stderr(),
            stdout: std::mem::take(&mut *self.stdout.lock().unwrap()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

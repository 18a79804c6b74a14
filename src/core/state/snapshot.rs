//! The state's snapshot format (magic, version, SHA-256 digest, JSON body of every table, least recently used first): written streamed from the tables, and restored streamed into fresh tables.

use super::*;

impl State {
    /// Serialize everything, least recently used first.
    pub fn snapshot(&self, config_digest: &str) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        // Writing plain data into a Vec cannot fail.
        let _ = self.write_snapshot(config_digest, &mut out);
        out.into_inner()
    }

    /// Write the snapshot [`snapshot`](Self::snapshot) returns into `w`,
    /// streamed from the tables (no copy of them, no buffer of the whole
    /// snapshot): the header with a zero digest, the body (hashed as it
    /// is written), then the digest in its place. `w` should be buffered.
    pub fn write_snapshot<W: Write + Seek>(&self, config_digest: &str, mut w: W) -> io::Result<()> {
        let start = w.stream_position()?;
        w.write_all(MAGIC)?;
        w.write_all(&SNAPSHOT_VERSION.to_le_bytes())?;
        w.write_all(&[0u8; 32])?;
        let view = SnapshotView {
            config_digest,
            clock: self.clock,
            sets: Rev(&self.sets),
            instances: Rev(&self.instances),
            ip_other: Rev(&self.ip_other),
            created: Rev(&self.created),
            associations: Rev(&self.associations),
        };
        // Hashed a buffer at a time (serde_json writes a few bytes per call).
        let mut body = io::BufWriter::with_capacity(
            1 << 16,
            Hashing {
                inner: &mut w,
                hash: Sha256::new(),
            },
        );
        serde_json::to_writer(&mut body, &view).map_err(io::Error::other)?;
        let digest = body
            .into_inner()
            .map_err(|e| e.into_error())?
            .hash
            .finalize();
        let end = w.stream_position()?;
        w.seek(SeekFrom::Start(start + DIGEST_AT))?;
        w.write_all(&digest)?;
        w.seek(SeekFrom::Start(end))?;
        w.flush()
    }

    /// Build a complete new state from a snapshot read from `r`, or refuse
    /// it: streamed, the tables built as the body is read (no copy of the
    /// file, no decoded copy of the body). The digest covers every byte
    /// after the header; it is checked once the body is read, and a body
    /// that cannot be read is read to its end first, so a truncated or
    /// modified snapshot is named as such.
    pub fn restore_from<R: Read>(
        r: R,
        config_digest: &str,
        hash_seed: u64,
    ) -> Result<State, Error> {
        State::restore_chunked(r, config_digest, hash_seed, CHUNK)
    }

    /// [`restore_from`](Self::restore_from), reading `chunk` bytes at a time.
    pub(crate) fn restore_chunked<R: Read>(
        mut r: R,
        config_digest: &str,
        hash_seed: u64,
        chunk: usize,
    ) -> Result<State, Error> {
        let mut head = [0u8; DIGEST_AT as usize + 32];
        let n = read_up_to(&mut r, &mut head)
            .map_err(|e| Error::Snapshot(format!("cannot read: {e}")))?;
        let head = head.get(..n).unwrap_or_default();
        if head.len() < MAGIC.len() && MAGIC.starts_with(head) {
            return Err(Error::Snapshot(
                "truncated header (bad magic: too short to be a credlineage snapshot)".into(),
            ));
        }
        let rest = head.strip_prefix(MAGIC).ok_or_else(|| {
            Error::Snapshot("not a credlineage state snapshot (bad magic)".into())
        })?;
        let (ver, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| Error::Snapshot("truncated header".into()))?;
        let ver = u32::from_le_bytes(*ver);
        if ver != SNAPSHOT_VERSION {
            return Err(Error::Snapshot(format!(
                "snapshot format version {ver} is not supported (this build reads version {SNAPSHOT_VERSION})"
            )));
        }
        let digest: [u8; 32] = rest
            .try_into()
            .map_err(|_| Error::Snapshot("truncated header".into()))?;
        // Hashed as it is read: every byte of the body, to its end.
        let mut body = Chunks::new(
            Hashing {
                inner: r,
                hash: Sha256::new(),
            },
            chunk,
        );
        let mut st = State::new(hash_seed);
        let mut found = Found::default();
        let parsed = read_body(&mut body, &mut st, &mut found);
        // What is left (after an error) still goes through the digest.
        let drained = io::copy(&mut body.r, &mut io::sink());
        if drained.is_ok() && body.r.hash.finalize().as_slice() != digest {
            return Err(Error::Snapshot(
                "corrupt: checksum mismatch (truncated or modified)".into(),
            ));
        }
        drained.map_err(|e| Error::Snapshot(format!("cannot read: {e}")))?;
        parsed.map_err(|e| Error::Snapshot(format!("corrupt body: {e}")))?;
        let got = found.config_digest.unwrap_or_default();
        if got != config_digest {
            return Err(Error::Snapshot(format!(
                "taken with a different configuration ({got}), this enricher has ({config_digest})"
            )));
        }
        Ok(st)
    }
}

const MAGIC: &[u8] = b"CREDLINEAGE-STATE\n";
/// Where the body's digest is in a snapshot: after the magic and the version.
const DIGEST_AT: u64 = MAGIC.len() as u64 + 4;

/// Read until `buf` is full or the input ends; the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(buf.get_mut(n..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A reader or writer that hashes the bytes passing through it.
struct Hashing<T> {
    inner: T,
    hash: Sha256,
}

impl<T: Write> Write for Hashing<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<T: Read> Read for Hashing<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// A table serialized in place, least recently used first.
struct Rev<'a, K: std::hash::Hash + Eq, V>(&'a Lru<K, V>);

impl<K: Serialize + std::hash::Hash + Eq, V: Serialize> Serialize for Rev<'_, K, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().rev())
    }
}

/// The snapshot body as written: `SnapshotBody`'s fields, in its order,
/// borrowed from the state (the same JSON, byte for byte).
#[derive(Serialize)]
struct SnapshotView<'a> {
    config_digest: &'a str,
    clock: i64,
    sets: Rev<'a, Fingerprint, CredSet>,
    instances: Rev<'a, Arc<str>, InstanceInfo>,
    ip_other: Rev<'a, IpAddr, OtherUse>,
    created: Rev<'a, Arc<str>, Creator>,
    associations: Rev<'a, Box<str>, Arc<str>>,
}

/// The fields of a body read so far.
#[derive(Default)]
struct Found {
    config_digest: Option<String>,
    fields: u8,
}

/// The fields of a snapshot body, in the order they are written.
const FIELDS: [&str; 7] = [
    "config_digest",
    "clock",
    "sets",
    "instances",
    "ip_other",
    "created",
    "associations",
];

/// A snapshot body read a buffer at a time: each value (a table's element,
/// a key, a scalar) is parsed from the buffer by serde_json as a slice;
/// one cut by the end of the buffer is parsed again once more is read.
struct Chunks<R> {
    r: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    chunk: usize,
}

/// Bytes read at a time (the buffer grows for a longer value).
const CHUNK: usize = 1 << 20;

impl<R: Read> Chunks<R> {
    fn new(r: R, chunk: usize) -> Self {
        Chunks {
            r,
            buf: Vec::new(),
            pos: 0,
            eof: false,
            chunk: chunk.max(1),
        }
    }

    /// Read more after what is not consumed; false at the end of the input.
    fn fill(&mut self) -> Result<bool, String> {
        if self.eof {
            return Ok(false);
        }
        self.buf.drain(..self.pos.min(self.buf.len()));
        self.pos = 0;
        let have = self.buf.len();
        let want = have + self.chunk.max(have);
        self.buf.resize(want, 0);
        let mut n = have;
        while n < want {
            match self.r.read(self.buf.get_mut(n..).unwrap_or_default()) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("cannot read: {e}")),
            }
        }
        self.buf.truncate(n);
        Ok(n > have)
    }

    /// The next byte that is not whitespace, not consumed.
    fn peek(&mut self) -> Result<Option<u8>, String> {
        loop {
            while let Some(&c) = self.buf.get(self.pos) {
                if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                    return Ok(Some(c));
                }
                self.pos += 1;
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Consume `c`, the next byte that is not whitespace.
    fn expect(&mut self, c: u8) -> Result<(), String> {
        match self.peek()? {
            Some(x) if x == c => {
                self.pos += 1;
                Ok(())
            }
            Some(x) => Err(format!(
                "expected '{}', found '{}'",
                c as char,
                x.escape_ascii()
            )),
            None => Err(format!("expected '{}', found the end", c as char)),
        }
    }

    /// Parse the next value as a `T`.
    fn value<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, String> {
        loop {
            self.peek()?;
            let rest = self.buf.get(self.pos..).unwrap_or_default();
            let mut it = serde_json::Deserializer::from_slice(rest).into_iter::<T>();
            let got = it.next();
            let used = it.byte_offset();
            match got {
                // A value that ends at the end of the buffer may go on (a
                // number): read more first.
                Some(Ok(v)) if used < rest.len() || self.eof => {
                    self.pos += used;
                    return Ok(v);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) if !e.is_eof() || self.eof => return Err(e.to_string()),
                Some(Err(_)) | None if self.eof => return Err("unexpected end".into()),
                Some(Err(_)) | None => {}
            }
            if !self.fill()? {
                self.eof = true;
            }
        }
    }

    /// A table: `[` elements separated by `,` `]`, each given to `each`.
    fn table<T: serde::de::DeserializeOwned>(
        &mut self,
        mut each: impl FnMut(T) -> Result<(), String>,
    ) -> Result<(), String> {
        self.expect(b'[')?;
        if self.peek()? == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            each(self.value()?)?;
            match self.peek()? {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err("expected ',' or ']' in a table".into()),
            }
        }
    }
}

/// Read a snapshot body into `st`, table by table, element by element.
fn read_body<R: Read>(b: &mut Chunks<R>, st: &mut State, found: &mut Found) -> Result<(), String> {
    b.expect(b'{')?;
    let mut more = b.peek()? != Some(b'}');
    if !more {
        b.pos += 1;
    }
    while more {
        let k: String = b.value()?;
        b.expect(b':')?;
        let Some(bit) = FIELDS.iter().position(|f| *f == k) else {
            return Err(format!("unknown field `{k}`"));
        };
        let bit = 1u8 << bit;
        if found.fields & bit != 0 {
            return Err(format!("duplicate field `{k}`"));
        }
        found.fields |= bit;
        match k.as_str() {
            "config_digest" => found.config_digest = Some(b.value()?),
            "clock" => st.clock = b.value()?,
            "sets" => b.table(|(fp, s): (Fingerprint, CredSet)| {
                if st.sets.contains(&fp) {
                    return Err(format!("duplicate set {fp}"));
                }
                st.insert_packed(fp, s);
                Ok(())
            })?,
            "instances" => b.table(|(id, info): (Arc<str>, InstanceInfo)| {
                st.bytes[1] += cost_instance(&id, &info);
                st.instances.push(id, info);
                Ok(())
            })?,
            "ip_other" => b.table(|(ip, u): (IpAddr, OtherUse)| {
                st.bytes[2] += cost_ip(&u);
                st.ip_other.push(ip, u);
                Ok(())
            })?,
            "created" => b.table(|(k, c): (Arc<str>, Creator)| {
                st.note_created(&k, c);
                Ok(())
            })?,
            _ => b.table(|(a, i): (Box<str>, Arc<str>)| {
                st.note_association(&a, &i);
                Ok(())
            })?,
        }
        match b.peek()? {
            Some(b',') => {}
            Some(b'}') => more = false,
            _ => return Err("expected ',' or '}'".into()),
        }
        b.pos += 1;
    }
    if let Some(c) = b.peek()? {
        return Err(format!("trailing characters ('{}')", c.escape_ascii()));
    }
    if let Some((_, missing)) = FIELDS
        .iter()
        .enumerate()
        .find(|(i, _)| found.fields & (1 << i) == 0)
    {
        return Err(format!("missing field `{missing}`"));
    }
    Ok(())
}

/// Version of the snapshot format this build writes and reads.
/// Version 2 (SPEC v1.1): trusted addresses per scope, who used an address
/// outside AWS, Elastic IP associations, per-set marks and last use.
pub const SNAPSHOT_VERSION: u32 = 2;

/// The snapshot body as earlier builds wrote it (a copy of every table):
/// the tests check that the streamed body is the same JSON.
#[cfg(test)]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotBody {
    config_digest: String,
    clock: i64,
    sets: Vec<(Fingerprint, CredSet)>,
    instances: Vec<(Arc<str>, InstanceInfo)>,
    ip_other: Vec<(IpAddr, OtherUse)>,
    created: Vec<(Arc<str>, Creator)>,
    associations: Vec<(Box<str>, Arc<str>)>,
}

#[cfg(test)]
impl State {
    /// The snapshot as earlier builds made it: the tables copied into a
    /// [`SnapshotBody`], serialized into a buffer, then the header.
    pub fn snapshot_copied(&self, config_digest: &str) -> Vec<u8> {
        fn rev<K: Clone + std::hash::Hash + Eq, V: Clone>(t: &Lru<K, V>) -> Vec<(K, V)> {
            t.iter()
                .rev()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }
        let body = SnapshotBody {
            config_digest: config_digest.to_string(),
            clock: self.clock,
            sets: rev(&self.sets),
            instances: rev(&self.instances),
            ip_other: rev(&self.ip_other),
            created: rev(&self.created),
            associations: rev(&self.associations),
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out.extend_from_slice(&Sha256::digest(&json));
        out.extend_from_slice(&json);
        out
    }
}

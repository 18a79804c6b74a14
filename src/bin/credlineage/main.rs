//! The `credlineage` command: enrich CloudTrail files, directories or stdin into annotated NDJSON, serve the same over TCP for Vector, and generate synthetic trails.

use clap::{Args, Parser, Subcommand, ValueEnum};
use credlineage::config::AwsIpRanges;
use credlineage::{AwsRanges, Config, Enricher, Error, Outcome, Stats};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{self, BufRead, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

mod batch;
mod reorder;
mod report;
mod serve;

#[derive(Parser)]
#[command(
    name = "credlineage",
    version,
    about = "Annotate AWS CloudTrail records with credential lineage, session fingerprints, key-ID collisions and off-host EC2 credential use.",
    long_about = "Annotate AWS CloudTrail records with credential lineage, session fingerprints, key-ID collisions and off-host EC2 credential use.\n\n\
Every input record comes out exactly once, as one NDJSON line: the record's own bytes plus one added key (`credlineage` by default). \
Records that are not CloudTrail, or not JSON at all, pass through unchanged and are counted.\n\n\
Quick start:\n  credlineage report tests/fixtures/scenarios.jsonl   # what the bundled trail shows\n  credlineage enrich tests/fixtures/scenarios.jsonl\n  credlineage enrich AWSLogs/ -o enriched.jsonl --state state.bin\n  aws s3 cp s3://trail/AWSLogs/... - | gunzip | credlineage enrich -\n  credlineage serve --listen 127.0.0.1:9400 --forward 127.0.0.1:9401 --state state.bin   # sidecar for Vector (docs/serve.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Annotate CloudTrail records from files, directories or stdin.
    Enrich(EnrichArgs),
    /// Write a deterministic synthetic CloudTrail trail as NDJSON (for demos, tests, benchmarks).
    Generate(GenerateArgs),
    /// TCP sidecar for Vector: newline-delimited JSON in on `--listen`, enriched NDJSON out to `--forward` (or stdout), all connections sharing one state.
    Serve(serve::ServeArgs),
    /// A report for a person: the lineage tree of every root, key-ID collisions, off-host EC2 credential use, and the temporary credentials still live at the end of the trail.
    Report(ReportArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Order {
    /// Process records in arrival order, writing each as soon as it is read.
    Stream,
    /// Process in eventTime order (stable, two passes), write in input order; memory bounded by `--batch-memory`.
    Time,
}

#[derive(Args)]
struct EnrichArgs {
    /// Files or directories to read; `-` or nothing reads stdin. A file named
    /// here is read whatever its name. Directories are read recursively (as
    /// in CloudTrail's `AWSLogs/` layout), taking only *.json, *.jsonl,
    /// *.ndjson and *.log files, each also gzipped (.gz); the other files are
    /// skipped and counted (`-v` names them), CloudTrail-Digest files too.
    /// Gzip is recognised by its content, not its name; a file that is
    /// neither JSON text nor gzip is named and skipped.
    paths: Vec<PathBuf>,
    /// Write NDJSON here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Processing order. Default: `time` for files, `stream` for stdin.
    #[arg(long, value_enum)]
    order: Option<Order>,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    shape: OutputArgs,
    #[command(flatten)]
    batch: BatchArgs,
    #[command(flatten)]
    reorder: reorder::ReorderArgs,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
    /// No summary on stderr.
    #[arg(short, long)]
    quiet: bool,
    /// Name every file of an input directory that is skipped.
    #[arg(short, long, conflicts_with = "quiet")]
    verbose: bool,
}

/// Batch mode's (`--order time`) memory budget and spill directory, shared
/// by `enrich` and `report` (docs/batch.md).
#[derive(Args)]
struct BatchArgs {
    /// Batch mode: memory budget for the records being sorted, in bytes
    /// (suffixes K, M, G: 64K, 512M, 2G). Beyond it, sorted runs are spilled
    /// to `--spill-dir` and merged; the output is the same bytes.
    #[arg(long, value_name = "BYTES", default_value = "512M", value_parser = batch::parse_bytes)]
    batch_memory: u64,
    /// Batch mode: directory for the sorted runs (a fresh subdirectory,
    /// removed at exit). Default: the system's temporary directory ($TMPDIR).
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<PathBuf>,
    /// Longest NDJSON line read (suffixes K, M, G). A longer line is not
    /// held in memory: it is reported, counted as unreadable and skipped
    /// (nothing of it written); reading goes on with the next line.
    #[arg(long, value_name = "BYTES", default_value = "16M", value_parser = batch::parse_bytes)]
    max_line_bytes: u64,
    /// Largest document read whole (a JSON array, an S3 `{"Records": [...]}`
    /// file, any gzip file), counted once decompressed (suffixes K, M, G). A
    /// larger one (a gzip bomb) is reported and skipped, counted as an input
    /// that could not be read.
    #[arg(long, value_name = "BYTES", default_value = "1G", value_parser = batch::parse_bytes)]
    max_document_bytes: u64,
}

impl BatchArgs {
    fn budget(&self) -> batch::Budget {
        batch::Budget {
            memory: self.batch_memory,
            spill_dir: self.spill_dir.clone(),
            max_line: self.max_line_bytes,
            max_document: self.max_document_bytes,
        }
    }
}

/// The state file and configuration flags, shared by `enrich`, `serve` and `report`.
#[derive(Args)]
struct EngineArgs {
    /// Load state from FILE at start (if it exists); `enrich` and `serve` also save it there at exit (atomically), `report` only reads it.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// JSON configuration file (keys as in the README's configuration table); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Field that may hold a whole record as a JSON string (repeatable; default: message, log).
    #[arg(long = "string-field", value_name = "NAME")]
    string_fields: Vec<String>,
    /// Cap on entries in each state table.
    #[arg(long, value_name = "N")]
    max_entries: Option<usize>,
    /// Cap on the estimated bytes of state.
    #[arg(long, value_name = "BYTES")]
    max_bytes: Option<usize>,
    /// An operator-known CIDR (NAT gateway, VPC range): instance credentials used from it are not off-host. Repeatable.
    #[arg(long = "known-cidr", value_name = "CIDR")]
    known_cidrs: Vec<ipnet::IpNet>,
    /// AWS address space (see `aws_ip_ranges_help`).
    #[arg(long, value_name = "FILE|builtin|off", help = aws_ip_ranges_help())]
    aws_ip_ranges: Option<PathBuf>,
    /// Do not flag instance credentials used from an IP that a person's identity used.
    #[arg(long)]
    no_ip_other_identity: bool,
    /// An account whose VPC endpoints instance credentials may use without `foreign_vpc_endpoint` (a central networking account, shared VPCs). Repeatable.
    #[arg(long = "trusted-account", value_name = "ACCOUNT")]
    trusted_accounts: Vec<String>,
}

/// How the output records are written: `enrich` and `serve` (a report has no
/// output records).
#[derive(Args)]
pub(crate) struct OutputArgs {
    /// Name of the added key.
    #[arg(long, value_name = "NAME")]
    namespace: Option<String>,
    /// Write the fields as top-level keys with this prefix instead of one object.
    #[arg(long, value_name = "PREFIX")]
    flatten: Option<String>,
    /// Replace responseElements.credentials.sessionToken in the output records.
    #[arg(long)]
    redact_session_tokens: bool,
}

/// `--aws-ip-ranges` help: names the built-in snapshot.
fn aws_ip_ranges_help() -> String {
    format!(
        "AWS address space: instance credentials used from a public address outside it are off-host (`outside_aws`). \
         An AWS ip-ranges.json FILE (a newer one), `builtin` or `off` (default: the built-in snapshot {}, {}; \
         a file named `builtin` or `off`: ./off)",
        AwsRanges::BUILTIN_SYNC_TOKEN,
        AwsRanges::BUILTIN_CREATE_DATE
    )
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    /// Indented text for a person.
    Text,
    /// One JSON object (the same sections), for scripts.
    Json,
    /// One self-contained HTML page (no network): the lineage as collapsible trees with off-host uses, collisions, off-host descendants and unresolved roots marked, a search box, a timeline per root, and the collision, off-host and live sections as sortable tables. Roots are paged 25 at a time and long lists open 100 entries at a time; the file grows linearly with the credentials (~0.45 KB each).
    Html,
}

#[derive(Args)]
struct ReportArgs {
    /// Files or directories to read, as for `enrich`. `-` or nothing reads stdin.
    paths: Vec<PathBuf>,
    /// Write the report here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Processing order, as for `enrich`. Default: `time` for files, `stream` for stdin.
    #[arg(long, value_enum)]
    order: Option<Order>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    batch: BatchArgs,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Name every file of an input directory that is skipped.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Args)]
struct GenerateArgs {
    /// Number of records.
    #[arg(short = 'n', long, default_value_t = 10_000)]
    records: usize,
    /// Seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of AWS accounts.
    #[arg(long, default_value_t = 3)]
    accounts: usize,
    /// Deliver records up to this many seconds out of eventTime order.
    #[arg(long, default_value_t = 0)]
    disorder: u32,
    /// Record shapes: `v1`, the original mix (byte for byte as before), or
    /// `v1.1`, which adds SPEC v1.1's shapes (VPC-endpoint-only instances and
    /// their SSRF theft, NAT gateways, pivots, Elastic IP moves, dual stack,
    /// sessions named like instances, Identity Center, service-linked roles,
    /// same-second chains, CloudTrail Lake times) and duplicated and late
    /// deliveries.
    #[arg(long, value_enum, default_value_t = Shapes::V1)]
    shapes: Shapes,
    /// Wrap this share (per mille) of output lines in CloudWatch Logs
    /// subscription messages of 1 to 5 records each (fewer lines than
    /// records).
    #[arg(long, value_name = "PER_MILLE", default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=1000))]
    cloudwatch_per_mille: u16,
    /// Write here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// `generate --shapes`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Shapes {
    #[value(name = "v1")]
    V1,
    #[value(name = "v1.1")]
    V1_1,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Enrich(a) => enrich(a),
        Command::Generate(a) => generate(a),
        Command::Serve(a) => serve::serve(a),
        Command::Report(a) => report(a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("credlineage: {e}");
            ExitCode::from(2)
        }
    }
}

fn open_output(path: &Option<PathBuf>) -> Result<Box<dyn Write>, Error> {
    Ok(match path {
        Some(p) => Box::new(BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(p).map_err(|e| input_err(p, None, e))?,
        )),
        None => Box::new(BufWriter::with_capacity(1 << 20, io::stdout().lock())),
    })
}

/// Writing the output (`-o FILE`, or stdout) failed.
fn output_err(path: &Option<PathBuf>, e: io::Error) -> Error {
    Error::Input {
        source_name: path
            .as_ref()
            .map_or("<stdout>".into(), |p| p.display().to_string()),
        line: None,
        reason: e.to_string(),
    }
}

fn input_err(p: &Path, line: Option<u64>, e: impl std::fmt::Display) -> Error {
    Error::Input {
        source_name: p.display().to_string(),
        line,
        reason: e.to_string(),
    }
}

fn generate(a: GenerateArgs) -> Result<ExitCode, Error> {
    let mut out = open_output(&a.output)?;
    let cfg = credlineage::generate::TrailConfig {
        seed: a.seed,
        records: a.records,
        accounts: a.accounts.max(1),
        disorder: a.disorder,
        v11_shapes: a.shapes == Shapes::V1_1,
        redelivery: a.shapes == Shapes::V1_1,
        ..Default::default()
    };
    let w = |out: &mut Box<dyn Write>| -> io::Result<()> {
        for r in credlineage::generate::trail(cfg).lines(a.cloudwatch_per_mille) {
            out.write_all(r.line.as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush()
    };
    match w(&mut out) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(Error::Input {
            source_name: "<output>".into(),
            line: None,
            reason: e.to_string(),
        }),
    }
}

/// The configuration: the `--config` file, then the flags (`shape`: those
/// of commands that write records).
fn build_config(a: &EngineArgs, shape: Option<&OutputArgs>) -> Result<Config, Error> {
    let mut c = match &a.config {
        Some(p) => Config::from_json(&std::fs::read(p).map_err(|e| input_err(p, None, e))?)
            .map_err(|e| config_err(p, e))?,
        None => Config::default(),
    };
    if let Some(o) = shape {
        if let Some(n) = &o.namespace {
            c.namespace = n.clone();
        }
        if let Some(p) = &o.flatten {
            c.flatten_prefix = Some(p.clone());
        }
        if o.redact_session_tokens {
            c.redact_session_tokens = true;
        }
    }
    if !a.string_fields.is_empty() {
        c.string_fields = a.string_fields.clone();
    }
    if let Some(n) = a.max_entries {
        c.max_entries = n;
    }
    if let Some(n) = a.max_bytes {
        c.max_bytes = n;
    }
    c.known_cidrs.extend(a.known_cidrs.iter().copied());
    if let Some(p) = &a.aws_ip_ranges {
        c.aws_ip_ranges = match p.to_str() {
            Some("builtin") => AwsIpRanges::Builtin,
            Some("off") => AwsIpRanges::Off,
            _ => {
                let bytes = std::fs::read(p).map_err(|e| input_err(p, None, e))?;
                AwsRanges::from_ip_ranges_json(&bytes)
                    .map_err(|e| config_err(p, e))?
                    .into()
            }
        };
    }
    if a.no_ip_other_identity {
        c.ip_used_by_other_identity = false;
    }
    c.trusted_vpc_endpoint_accounts
        .extend(a.trusted_accounts.iter().cloned());
    c.validate()?;
    Ok(c)
}

/// An error about configuration file `p`, with one `invalid configuration:`
/// prefix (the library's message already carries it).
fn config_err(p: &Path, e: Error) -> Error {
    match e {
        Error::Config(m) => Error::Config(format!("{}: {m}", p.display())),
        e => Error::Config(format!("{}: {e}", p.display())),
    }
}

/// Collect the input files: directories recursively (sorted), in argument
/// order. CloudTrail-Digest files (integrity digests, not events) are left
/// out and counted in `run.digests`; other files of a directory that are not
/// read (see [`is_log_file`]) in `run.skipped`. A directory that gives no
/// file to read is an input that could not be read: named, counted in
/// `run.bad_files`.
fn collect_files(paths: &[PathBuf], run: &mut Run) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() != "-" && is_digest(p) {
            run.digests += 1;
            continue;
        }
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            let mut found = Vec::new();
            let skipped_before = run.skipped.len();
            // Each directory is read once, however many links lead to it
            // (symlink loops): known by device and inode.
            let mut seen = std::collections::HashSet::new();
            while let Some(d) = stack.pop() {
                {
                    use std::os::unix::fs::MetadataExt;
                    if let Ok(m) = std::fs::metadata(&d) {
                        if !seen.insert((m.dev(), m.ino())) {
                            continue;
                        }
                    }
                }
                match std::fs::read_dir(&d) {
                    Ok(rd) => {
                        for e in rd.flatten() {
                            let path = e.path();
                            if path.is_dir() {
                                stack.push(path);
                            } else if is_digest(&path) {
                                run.digests += 1;
                            } else if is_log_file(&path) {
                                found.push(path);
                            } else {
                                run.skipped.push(path);
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("credlineage: {}: {e}", d.display());
                        run.bad_input += 1;
                        run.bad_files += 1;
                    }
                }
            }
            if found.is_empty() {
                eprintln!(
                    "credlineage: {}: no input file in this directory (read: {READ_SUFFIXES}; {} other file(s) skipped)",
                    p.display(),
                    run.skipped.len() - skipped_before
                );
                run.bad_input += 1;
                run.bad_files += 1;
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    run.skipped[..].sort();
    out
}

/// The names of the files read from a directory, for messages and `--help`.
const READ_SUFFIXES: &str = "*.json, *.jsonl, *.ndjson, *.log, each also .gz";

/// A CloudTrail-Digest file: under a `CloudTrail-Digest` directory
/// (`AWSLogs/<account>/CloudTrail-Digest/<region>/…`) or named
/// `…_CloudTrail-Digest_…`.
fn is_digest(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.contains("_CloudTrail-Digest_")
        || p.components().any(|c| c.as_os_str() == "CloudTrail-Digest")
}

/// A file of a directory that is read: see [`READ_SUFFIXES`].
fn is_log_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name = name.strip_suffix(".gz").unwrap_or(name);
    [".json", ".jsonl", ".ndjson", ".log"]
        .iter()
        .any(|s| name.ends_with(s))
}

/// How much of an input [`looks_binary`] looks at.
const SNIFF: usize = 64 * 1024;

/// Binary data, not JSON text: more than one byte in ten of `head` is a
/// control character (other than tab, CR, LF, form feed) or not part of
/// valid UTF-8, and no line of it is a whole JSON object or array. JSON text
/// has no such bytes outside its strings' escapes, so a record with a
/// damaged byte or two is still text (read, and its damage named), and so is
/// NDJSON with junk lines between records (each passed through), while
/// random bytes, an archive or a UTF-16 file are not.
fn looks_binary(head: &[u8]) -> bool {
    let head = head.get(..SNIFF).unwrap_or(head);
    mostly_not_text(head)
        && !head.split(|&c| c == b'\n').any(|l| {
            let t = l.trim_ascii();
            matches!(t.first(), Some(b'{' | b'['))
                && std::str::from_utf8(t).is_ok_and(|t| credlineage::json::validate(t).is_ok())
        })
}

/// More than one byte in ten is a control character or not valid UTF-8.
fn mostly_not_text(head: &[u8]) -> bool {
    let mut bad = head
        .iter()
        .filter(|&&c| (c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r' | 0x0c)) || c == 0x7f)
        .count();
    let mut rest = head;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(_) => break,
            Err(e) => match e.error_len() {
                Some(n) => {
                    bad += n;
                    rest = rest.get(e.valid_up_to() + n..).unwrap_or_default();
                }
                // Cut in the middle of a character by the window.
                None => break,
            },
        }
    }
    bad * 10 > head.len()
}

/// The error for an input that is binary data: named once, nothing from it
/// written.
fn not_text(gzip: bool) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        if gzip {
            "gzip of binary data, not JSON text; skipped, nothing from it written"
        } else {
            "neither JSON text nor gzip (binary data); skipped, nothing from it written"
        },
    )
}

struct Run {
    enricher: Enricher,
    /// Records and inputs that could not be read (exit status 1).
    bad_input: u64,
    /// Of those, whole inputs (a file, a directory) that could not be read.
    bad_files: u64,
    /// CloudTrail-Digest files skipped.
    digests: u64,
    /// Files of input directories that are not read (by their name).
    skipped: Vec<PathBuf>,
    quiet: bool,
    /// The NDJSON hint has been given (see [`Run::ndjson_hint`]).
    hinted: bool,
    /// `--max-line-bytes`, `--max-document-bytes`.
    max_line: u64,
    max_document: u64,
    /// Damaged records already named by [`note_damage`] (file, index in
    /// it): their malformed outcome is not named (or counted) again.
    told: std::collections::HashSet<(PathBuf, u64)>,
    /// `--reorder-window` (streaming order only).
    window: Option<Window>,
}

/// `enrich`'s reorder window: the held records and the inputs they name.
struct Window {
    w: credlineage::reorder::Reorder<reorder::Held>,
    sources: reorder::Sources,
}

impl Run {
    /// Offer one record of `src` to the reorder window; what it releases (the
    /// record itself when it is late or has no time) is enriched into `buf`.
    fn hold(&mut self, src: &Path, line: u64, index: u64, bytes: &[u8], buf: &mut Vec<u8>) {
        let Some(mut win) = self.window.take() else {
            return;
        };
        let held = reorder::Held {
            bytes: bytes.into(),
            src: win.sources.id(src),
            line,
            index,
        };
        let order = self.enricher.peek_order(bytes);
        if let credlineage::reorder::Pushed::Now(h, _) = win.w.push(order, held, bytes.len(), None)
        {
            self.release(&win.sources, h, buf);
        }
        while let Some((h, _)) = win.w.pop_due(None) {
            self.release(&win.sources, h, buf);
        }
        self.window = Some(win);
    }

    /// Release every held record, in time order (end of input).
    fn flush_window(&mut self, buf: &mut Vec<u8>) {
        let Some(mut win) = self.window.take() else {
            return;
        };
        while let Some((h, _)) = win.w.pop_flush() {
            self.release(&win.sources, h, buf);
        }
        self.window = Some(win);
    }

    /// Enrich a record released by the window into `buf`.
    fn release(&mut self, sources: &reorder::Sources, h: reorder::Held, buf: &mut Vec<u8>) {
        let src = sources.get(h.src);
        let o = self.enricher.process_into(&h.bytes, None, buf);
        if matches!(o, Outcome::Malformed(Error::InvalidJson { .. })) {
            self.ndjson_hint(src, &h.bytes);
        }
        self.note(src, h.line, o, h.index);
        buf.push(b'\n');
    }
}

impl Run {
    /// Count and name a record that could not be read: `src:line: record N:
    /// reason`, the line and N (the record's position in its file) both
    /// counted from 1 within that file.
    fn note(&mut self, src: &Path, line: u64, outcome: Outcome, index_in_file: u64) {
        if let Outcome::Malformed(e) = outcome {
            if !self.told.is_empty() && self.told.remove(&(src.to_path_buf(), index_in_file)) {
                return;
            }
            self.bad_input += 1;
            if !self.quiet {
                eprintln!(
                    "credlineage: {}:{line}: record {index_in_file}: {}",
                    source_name(src),
                    record_reason(&e)
                );
            }
        }
    }

    /// An input that could not be read at all: named once, counted.
    fn bad_file(&mut self, src: &Path, e: impl std::fmt::Display) {
        eprintln!("credlineage: {}: {e}", source_name(src));
        self.bad_input += 1;
        self.bad_files += 1;
    }

    /// Said once per run, when a line of an input read as NDJSON (stdin, or
    /// a file in `--order stream` whose first line is a whole record) is not
    /// JSON but looks like a piece of a pretty-printed document.
    fn ndjson_hint(&mut self, src: &Path, line: &[u8]) {
        if self.hinted || self.quiet {
            return;
        }
        let t = line.trim_ascii();
        let piece = matches!(t.first(), Some(b'{' | b'}' | b'[' | b']' | b'"'))
            || matches!(t.last(), Some(b',' | b'{' | b'['));
        if !piece {
            return;
        }
        self.hinted = true;
        let how = if src.as_os_str() == "-" {
            "give it as a file (a file is read whole), or make it one record per line with `jq -c`"
        } else {
            "read the file whole with `--order time` (the default for files), or make it one record per line with `jq -c`"
        };
        eprintln!(
            "credlineage: hint: {} is read as NDJSON, one whole record per line; for a pretty-printed (multi-line) JSON document, {how}",
            source_name(src)
        );
    }
}

/// What is wrong with a record, without the library's stream-wide `record N:`
/// (the CLI names records by file, line and position in the file).
fn record_reason(e: &Error) -> String {
    let s = e.to_string();
    match e.record_index() {
        Some(i) => s
            .strip_prefix(&format!("record {i}: "))
            .map_or_else(|| s.clone(), str::to_string),
        None => s,
    }
}

fn progress(total: Option<u64>, enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let pb = match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(
                "{spinner} {prefix} [{elapsed_precise}] {bar:40} {human_pos}/{human_len} records (eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {human_pos} records")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    pb.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
    pb
}

/// Largest state file read (a snapshot of the largest state `--max-bytes` allows is far smaller).
const MAX_STATE_FILE: u64 = 4 << 30;

/// Restore `e` from the state file `path`, if given and there, streamed
/// (the file is not held whole). Whether a state was restored.
fn load_state(e: &mut Enricher, path: &Option<PathBuf>) -> Result<bool, Error> {
    let Some(p) = path else { return Ok(false) };
    // Checked before reading: a FIFO would hang, a device or a huge file be read whole.
    match std::fs::metadata(p) {
        Ok(m) if !m.is_file() => {
            return Err(input_err(
                p,
                None,
                "not a regular file; refused as a state file",
            ));
        }
        Ok(m) if m.len() > MAX_STATE_FILE => {
            return Err(input_err(
                p,
                None,
                format!(
                    "{} bytes, more than a state file can be ({MAX_STATE_FILE}); refused",
                    m.len()
                ),
            ));
        }
        _ => {}
    }
    match std::fs::File::open(p) {
        Ok(f) => {
            e.restore_from(io::BufReader::with_capacity(1 << 16, f))
                .map_err(|err| match err {
                    // One `snapshot refused:` prefix: the library's message has it.
                    Error::Snapshot(m) => Error::Snapshot(format!("{}: {m}", p.display())),
                    err => Error::Snapshot(format!("{}: {err}", p.display())),
                })?;
            Ok(true)
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(input_err(p, None, err)),
    }
}

/// The state cannot be saved to `path`: said so, and not like a load error.
fn state_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Input {
        source_name: format!("cannot save state to {}", path.display()),
        line: None,
        reason: reason.to_string(),
    }
}

/// The directory the state file (and its temporary file) is written in.
fn state_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A temporary file of a save is stale (left by a crash during a save)
/// after this long unmodified: a live save writes its file without pause
/// and renames it at once, so only a writer stopped this long can lose its
/// file (its save then fails and says so).
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Remove the temporary files a crash during a save of `path` left behind:
/// in the state file's directory only, only regular files (never a
/// symlink or a directory) named `.<state file name>.tmp.<1-16 letters or
/// digits>` (the pattern of [`save_state`]'s files, and of older versions'
/// `.<name>.tmp.<pid>`), only when unmodified for [`STALE_TEMP`]. Said on
/// stderr; a file that cannot be removed is left and named.
fn clean_stale_temps(path: &Path) {
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let prefix = format!(".{name}.tmp.");
    let dir = state_dir(&target);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0u64;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(suffix) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if suffix.is_empty()
            || suffix.len() > 16
            || !suffix.bytes().all(|c| c.is_ascii_alphanumeric())
        {
            continue;
        }
        // `DirEntry::metadata` does not follow a symlink.
        let Ok(m) = entry.metadata() else { continue };
        let old = m
            .modified()
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age >= STALE_TEMP);
        if !m.file_type().is_file() || !old {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) => eprintln!(
                "credlineage: cannot remove stale temporary state file {}: {e}",
                entry.path().display()
            ),
        }
    }
    if removed > 0 {
        eprintln!(
            "credlineage: removed {removed} stale temporary state file{} ({}/{prefix}*, left by an interrupted save)",
            if removed == 1 { "" } else { "s" },
            dir.display()
        );
    }
}

/// Refuse, before any record is read, a `--state` path the state could not
/// be saved to at exit (SPEC 4.2): not guessed from permissions, but tried —
/// a temporary file is created (exclusively) in the target's directory, as
/// the save will, then removed. A directory at the path is refused too (the
/// rename over it would fail).
fn check_state_writable(path: &Path) -> Result<(), Error> {
    if path.file_name().is_none() {
        return Err(state_err(path, "not a file name"));
    }
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(state_err(path, "is a directory"));
    }
    clean_stale_temps(path);
    let dir = state_dir(path);
    let mut last = io::Error::other("no temporary name available");
    for attempt in 0..16u32 {
        let probe = dir.join(format!(
            ".credlineage-probe.{}.{:x}.{attempt}",
            std::process::id(),
            random_seed() & 0xffff_ffff
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
        {
            Ok(f) => {
                drop(f);
                return std::fs::remove_file(&probe).map_err(|e| state_err(path, e));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(state_err(path, e)),
        }
    }
    Err(state_err(path, last))
}

/// Write the state to `path` atomically: a temporary file in the same directory, synced, then renamed.
///
/// A symlink at `path` is followed: its target is updated, the link kept.
/// The temporary file is created exclusively (`O_EXCL`, a random name: a
/// planted file or symlink is never followed) and removed on every error.
fn save_state(e: &Enricher, path: &Path) -> Result<(), Error> {
    save_state_with(path, |w| e.write_snapshot(w))
}

/// [`save_state`], the snapshot written by `write` (streamed into the
/// temporary file through a buffer; what `write` holds, e.g. a lock, is
/// released before the file is synced and renamed).
fn save_state_with(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<&mut std::fs::File>) -> io::Result<()>,
) -> Result<(), Error> {
    clean_stale_temps(path);
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => match std::fs::canonicalize(path) {
            Ok(t) => t,
            // A link to a file not yet there: its target, as the link names it.
            Err(_) => {
                let t = std::fs::read_link(path).map_err(|err| state_err(path, err))?;
                state_dir(path).join(t)
            }
        },
        _ => path.to_path_buf(),
    };
    let dir = state_dir(&target);
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("state");
    let write = || -> io::Result<()> {
        let mut f = tempfile::Builder::new()
            .prefix(&format!(".{name}.tmp."))
            .tempfile_in(dir)?;
        {
            let mut w = io::BufWriter::with_capacity(1 << 20, f.as_file_mut());
            write(&mut w)?;
            w.flush()?;
        }
        f.as_file().sync_all()?;
        f.persist(&target).map_err(|e| e.error)?;
        Ok(())
    };
    write().map_err(|err| state_err(path, err))
}

/// What one run over the inputs left: the enricher (its state and
/// counters), how many inputs could not be read, bytes read and seconds taken.
struct Done {
    run: Run,
    bytes_in: u64,
    secs: f64,
}

/// What a run reads: the paths (`-` or none for stdin), in which order, and
/// the state file to start from.
struct Inputs<'a> {
    paths: &'a [PathBuf],
    order: Option<Order>,
    state: &'a Option<PathBuf>,
    budget: batch::Budget,
    /// `--reorder-window` (`enrich` only).
    window: Option<credlineage::reorder::Limits>,
}

/// Enrich every input into `out` (`out_name` names it in errors): the work
/// of `enrich`, also behind `report`.
fn enrich_inputs(
    inputs: Inputs<'_>,
    config: &Config,
    show: bool,
    quiet: bool,
    out: &mut dyn Write,
    out_name: &Option<PathBuf>,
) -> Result<Done, Error> {
    let mut enricher = Enricher::new(config.clone())?;
    enricher.set_hash_seed(random_seed());
    let restored = load_state(&mut enricher, inputs.state)?;
    let paths: Vec<PathBuf> = if inputs.paths.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        inputs.paths.to_vec()
    };
    let only_stdin = paths.iter().all(|p| p.as_os_str() == "-");
    let order = inputs
        .order
        .unwrap_or(if only_stdin || inputs.window.is_some() {
            Order::Stream
        } else {
            Order::Time
        });
    if inputs.window.is_some() && order == Order::Time {
        return Err(Error::Config(
            "--reorder-window applies to streaming order (stdin's default, --order stream); \
             --order time sorts the whole input already"
                .into(),
        ));
    }
    let mut run = Run {
        enricher,
        bad_input: 0,
        bad_files: 0,
        digests: 0,
        skipped: Vec::new(),
        quiet,
        hinted: false,
        max_line: inputs.budget.max_line,
        max_document: inputs.budget.max_document,
        told: std::collections::HashSet::new(),
        window: inputs.window.map(|l| Window {
            w: credlineage::reorder::Reorder::new(l),
            sources: reorder::Sources::default(),
        }),
    };
    let started = Instant::now();
    let mut bytes_in = 0u64;
    let files = collect_files(&paths, &mut run);
    let res = match order {
        Order::Stream => stream(&mut run, &files, out, show, &mut bytes_in),
        Order::Time => batch::batch(
            &mut run,
            batch::Setup {
                config,
                state: inputs.state.as_deref().filter(|_| restored),
                budget: &inputs.budget,
            },
            &files,
            out,
            show,
            &mut bytes_in,
        ),
    };
    match res.and_then(|_| out.flush()) {
        Ok(()) => {}
        Err(e) if e.get_ref().is_some_and(|r| r.is::<batch::SpillError>()) => {
            let (dir, reason) = e
                .get_ref()
                .and_then(|r| r.downcast_ref::<batch::SpillError>())
                .map(|s| (s.dir.display().to_string(), s.reason()))
                .unwrap_or_default();
            return Err(Error::Input {
                source_name: format!("spill directory {dir}"),
                line: None,
                reason,
            });
        }
        Err(e) if e.get_ref().is_some_and(|r| r.is::<batch::InputChanged>()) => {
            let path = e
                .get_ref()
                .and_then(|r| r.downcast_ref::<batch::InputChanged>())
                .map(|c| c.path.clone())
                .unwrap_or_default();
            return Err(Error::Input {
                source_name: source_name(&path),
                line: None,
                reason: "changed while batch mode was reading it (a batch larger than \
                         --batch-memory reads its files twice: keep them unchanged during \
                         the run, or use --order stream)"
                    .to_string(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(output_err(out_name, e)),
    }
    Ok(Done {
        run,
        bytes_in,
        secs: started.elapsed().as_secs_f64(),
    })
}

impl Done {
    /// 1 when any input could not be read, else success.
    fn exit_code(&self) -> ExitCode {
        if self.run.bad_input > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}

fn enrich(a: EnrichArgs) -> Result<ExitCode, Error> {
    let show = !a.no_progress && !a.quiet && io::stderr().is_terminal();
    let config = build_config(&a.engine, Some(&a.shape))?;
    if let Some(p) = &a.engine.state {
        check_state_writable(p)?;
    }
    let mut out = open_output(&a.output)?;
    let inputs = Inputs {
        paths: &a.paths,
        order: a.order,
        state: &a.engine.state,
        budget: a.batch.budget(),
        window: a.reorder.limits(),
    };
    let done = enrich_inputs(inputs, &config, show, a.quiet, &mut out, &a.output)?;
    if let Some(p) = &a.engine.state {
        save_state(&done.run.enricher, p)?;
    }
    if !a.quiet {
        summary(&done.run.enricher.stats(), done.secs, done.bytes_in);
        if let Some(w) = &done.run.window {
            reorder::summary("credlineage: ", &w.w.limits(), &w.w.stats(), w.w.len());
        }
        digest_note(done.run.digests);
        skip_note(&done.run.skipped, a.verbose);
    }
    Ok(done.exit_code())
}

/// `report`: enrich the inputs as `enrich` would, into the report instead of an output.
fn report(a: ReportArgs) -> Result<ExitCode, Error> {
    let show = !a.no_progress && io::stderr().is_terminal();
    let config = build_config(&a.engine, None)?;
    // A report of part of the inputs would read as the whole trail: a named
    // input that is not there fails before anything is read.
    let missing: Vec<_> = a
        .paths
        .iter()
        .filter(|p| p.as_os_str() != "-")
        .filter_map(|p| std::fs::metadata(p).err().map(|e| (p, e)))
        .collect();
    if !missing.is_empty() {
        for (p, e) in &missing {
            eprintln!("credlineage: {}: {e}", p.display());
        }
        eprintln!(
            "credlineage: no report: {} input(s) cannot be read",
            missing.len()
        );
        return Ok(ExitCode::from(1));
    }
    let mut sink = report::Report::new(
        &config.namespace,
        config.flatten_prefix.as_deref(),
        &config.string_fields,
    );
    // The per-record messages about unreadable input still go to stderr.
    let inputs = Inputs {
        paths: &a.paths,
        order: a.order,
        state: &a.engine.state,
        budget: a.batch.budget(),
        window: None,
    };
    let done = enrich_inputs(inputs, &config, show, false, &mut sink, &None)?;
    digest_note(done.run.digests);
    skip_note(&done.run.skipped, a.verbose);
    if done.run.bad_files > 0 {
        // Named above, as they were met.
        eprintln!(
            "credlineage: no report: {} input(s) could not be read",
            done.run.bad_files
        );
        return Ok(ExitCode::from(1));
    }
    let r = sink.finish(&done.run.enricher);
    let mut out = open_output(&a.output)?;
    let written = match a.format {
        ReportFormat::Text => report::write_text(&mut out, &r),
        ReportFormat::Html => report::write_html(&mut out, &r),
        ReportFormat::Json => serde_json::to_writer_pretty(&mut out, &r)
            .map_err(io::Error::other)
            .and_then(|_| writeln!(out)),
    };
    match written.and_then(|_| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(output_err(&a.output, e)),
    }
    Ok(done.exit_code())
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish()
}

/// Streaming order: each record is written as soon as it is processed.
fn stream(
    run: &mut Run,
    files: &[PathBuf],
    out: &mut dyn Write,
    show: bool,
    bytes_in: &mut u64,
) -> io::Result<()> {
    let pb = progress(None, show);
    let mut buf = Vec::with_capacity(1 << 16);
    // Two threads open the next files and read, decompress and cut every
    // document (an S3 delivery file, gzip, a JSON array) while this one
    // enriches the records of the file before: at most PREFETCH files ahead,
    // handed over in order.
    const PREFETCH: usize = 2;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tok_tx, tok_rx) = std::sync::mpsc::channel::<()>();
    let tok_rx = std::sync::Mutex::new(tok_rx);
    for _ in 0..PREFETCH {
        let _ = tok_tx.send(());
    }
    std::thread::scope(|sc| {
        let max_document = run.max_document;
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Opened)>();
        for _ in 0..PREFETCH {
            let tx = tx.clone();
            let (next, tok_rx) = (&next, &tok_rx);
            sc.spawn(move || {
                loop {
                    // A token per file ahead; none left once this thread's
                    // reader is gone.
                    let token = match tok_rx.lock() {
                        Ok(g) => g.recv(),
                        Err(_) => return,
                    };
                    if token.is_err() {
                        return;
                    }
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(f) = files.get(i) else { return };
                    // Stdin is opened in its turn, by the reading thread (a
                    // live stream may block).
                    let opened = if f.as_os_str() == "-" {
                        Opened::Later
                    } else {
                        open_input(f, max_document)
                    };
                    if tx.send((i, opened)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut ready = std::collections::BTreeMap::new();
        let res = (|| {
            for (i, f) in files.iter().enumerate() {
                let opened = loop {
                    if let Some(o) = ready.remove(&i) {
                        break Some(o);
                    }
                    match rx.recv() {
                        Ok((j, o)) => {
                            ready.insert(j, o);
                        }
                        Err(_) => break None,
                    }
                };
                let Some(mut opened) = opened else { break };
                if let Opened::Later = opened {
                    opened = open_input(f, run.max_document);
                }
                let _ = tok_tx.send(());
                // Outer error: writing the output failed; inner: reading the input.
                if let Err(e) = stream_file(run, f, opened, out, &mut buf, &pb, bytes_in)? {
                    run.bad_file(f, e);
                }
            }
            // The end of the input: what the reorder window holds, in time order.
            buf.clear();
            run.flush_window(&mut buf);
            out.write_all(&buf)?;
            buf.clear();
            Ok(())
        })();
        // Stop the prefetching threads (they wait for a token or to send).
        drop(tok_tx);
        drop(rx);
        pb.finish_and_clear();
        res
    })
}

/// A record of a document cut by [`Doc::cut`]: where it is in the document,
/// or its bytes when cutting changed them (a pretty-printed record made one
/// line).
enum DocPiece {
    At(std::ops::Range<usize>, u64),
    Owned(Vec<u8>, u64),
}

/// A document read whole and cut into records, owning its bytes (so it can
/// be prepared on another thread).
struct Doc {
    bytes: Vec<u8>,
    pieces: Vec<DocPiece>,
    damage: Option<credlineage::input::Damage>,
    damaged_records: Vec<credlineage::input::Damage>,
}

impl Doc {
    /// Cut `bytes` by `input::split`.
    fn cut(bytes: Vec<u8>) -> Doc {
        let split = credlineage::input::split(&bytes);
        let base = bytes.as_ptr() as usize;
        let pieces = split
            .pieces
            .into_iter()
            .map(|p| match p.bytes {
                std::borrow::Cow::Borrowed(b) => {
                    let at = (b.as_ptr() as usize).wrapping_sub(base);
                    if bytes
                        .get(at..at + b.len())
                        .is_some_and(|x| x.as_ptr() == b.as_ptr())
                    {
                        DocPiece::At(at..at + b.len(), p.line)
                    } else {
                        DocPiece::Owned(b.to_vec(), p.line)
                    }
                }
                std::borrow::Cow::Owned(v) => DocPiece::Owned(v, p.line),
            })
            .collect();
        let damage = split.damage;
        let damaged_records = split.damaged_records;
        Doc {
            bytes,
            pieces,
            damage,
            damaged_records,
        }
    }
}

/// One input, opened (and, for a document, read and cut) ahead of its turn.
enum Opened {
    /// NDJSON (or stdin's stream): read line by line in its turn; the first
    /// line is already read.
    Lines(Box<dyn BufRead + Send>, Vec<u8>),
    /// A document read whole and cut, with its size.
    Doc(Doc, u64),
    /// The input could not be read, or is binary.
    Failed(io::Error),
    /// To be opened in its turn (stdin).
    Later,
}

/// Open `f` (`-`: stdin) and tell NDJSON from a document, which is read
/// whole and cut by `input::split`. NDJSON is the first line being one
/// complete JSON object (not an S3 delivery file), or a first line that does
/// not start a JSON value at all; anything else (gzip, a JSON array, an S3
/// `{"Records": [...]}` file, a pretty-printed record, a Firehose
/// concatenation) is a document.
fn open_input(f: &Path, max_document: u64) -> Opened {
    let mut line = Vec::new();
    let mut r: Box<dyn BufRead + Send> = if f.as_os_str() == "-" {
        Box::new(io::BufReader::with_capacity(1 << 20, io::stdin()))
    } else {
        match std::fs::File::open(f) {
            Ok(file) => Box::new(io::BufReader::with_capacity(1 << 20, file)),
            Err(e) => return Opened::Failed(e),
        }
    };
    match r.fill_buf() {
        // Gzip is judged once decompressed; a first read of one byte may be
        // the start of its magic.
        Ok(head) if !head.starts_with(&[0x1f, 0x8b]) && head != [0x1f] && looks_binary(head) => {
            return Opened::Failed(not_text(false));
        }
        // A UTF-8 byte order mark is not part of the input.
        Ok(head) if head.starts_with(credlineage::input::BOM) => {
            r.consume(credlineage::input::BOM.len());
        }
        Ok(_) => {}
        Err(e) => return Opened::Failed(e),
    }
    // The first line may be a whole document (one-line S3 file, gzip).
    let first_cut = match read_line_capped(&mut r, &mut line, max_document) {
        Ok((_, cut)) => cut,
        Err(e) => return Opened::Failed(e),
    };
    if first_cut {
        return Opened::Failed(too_large(max_document));
    }
    let first = trim_line(&line);
    let start = first
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .and_then(|i| first.get(i..))
        .unwrap_or_default();
    let ndjson = match start.first() {
        Some(b'{') => {
            !start.windows(9).take(64).any(|w| w == b"\"Records\"")
                && std::str::from_utf8(start).is_ok_and(|t| credlineage::json::validate(t).is_ok())
        }
        // A document (an array), a blank first line, or gzip: read whole.
        Some(b'[') | None => false,
        Some(_) => !line.starts_with(&[0x1f, 0x8b]),
    };
    if ndjson {
        return Opened::Lines(r, line);
    }
    let doc = match read_to_end_capped(&mut r, &mut line, max_document) {
        Ok(()) if line.starts_with(&[0x1f, 0x8b]) => {
            // Room for a typical CloudTrail file's ~10x ratio up front (fewer
            // regrowths), and no second buffer: the bytes are already here.
            let guess = (line.len() as u64).saturating_mul(10).min(max_document);
            let mut doc = Vec::with_capacity(usize::try_from(guess).unwrap_or(0));
            let mut gz = flate2::bufread::MultiGzDecoder::new(&line[..]);
            match read_to_end_capped(&mut gz, &mut doc, max_document) {
                Ok(()) if looks_binary(&doc) => return Opened::Failed(not_text(true)),
                Ok(_) => doc,
                Err(e) => return Opened::Failed(e),
            }
        }
        Ok(_) => line,
        Err(e) => return Opened::Failed(e),
    };
    let n = doc.len() as u64;
    Opened::Doc(Doc::cut(doc), n)
}

/// One input in streaming order, as [`open_input`] opened it. NDJSON is read
/// line by line, so memory does not grow with the input and each line is
/// written as soon as it is read; a document's records were cut already,
/// which gives the same records either way.
fn stream_file(
    run: &mut Run,
    f: &Path,
    opened: Opened,
    out: &mut dyn Write,
    buf: &mut Vec<u8>,
    pb: &ProgressBar,
    bytes_in: &mut u64,
) -> io::Result<io::Result<()>> {
    let (mut r, line) = match opened {
        Opened::Failed(e) => return Ok(Err(e)),
        Opened::Doc(doc, n) => {
            *bytes_in += n;
            return process_doc(run, f, &doc, out, buf, pb).map(Ok);
        }
        Opened::Lines(r, line) => (r, line),
        Opened::Later => match open_input(f, run.max_document) {
            Opened::Lines(r, line) => (r, line),
            other => return stream_file(run, f, other, out, buf, pb, bytes_in),
        },
    };
    *bytes_in += line.len() as u64;
    let max_line = usize::try_from(run.max_line).unwrap_or(usize::MAX);
    let mut lines = Lines::new(run, f, pb, buf);
    if trim_line(&line).len() > max_line {
        lines.too_long();
    } else {
        lines.line(trim_line(&line));
    }
    // Written now: on a live stream the next line may be a long time coming.
    lines.write(out)?;
    let res = for_each_line(&mut r, max_line, |l| match l {
        Piece::Line(l) => {
            lines.line(l);
            Ok(())
        }
        Piece::TooLong => {
            lines.too_long();
            Ok(())
        }
        Piece::Read => lines.write(out).map_err(|e| io::Error::other(Written(e))),
    });
    match res {
        Ok(n) => {
            *bytes_in += n;
            Ok(Ok(()))
        }
        // Writing failed: the outer error; reading the file: the inner one.
        Err(e) => match e.downcast::<Written>() {
            Ok(Written(e)) => Err(e),
            Err(e) => Ok(Err(e)),
        },
    }
}

/// An output error, told apart from the input errors of the same loop.
#[derive(Debug)]
struct Written(io::Error);

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Written {}

/// What [`for_each_line`] hands on.
enum Piece<'a> {
    /// A line, without its line ending.
    Line(&'a [u8]),
    /// A line longer than the cap: not kept.
    TooLong,
    /// A buffer-full has been read.
    Read,
}

/// Calls `each(Piece::Line(line))` for every line of `r`, without its line
/// ending, straight from the reader's buffer (a line is copied only when it
/// spans two reads), `each(Piece::TooLong)` instead for a line longer than
/// `cap` (never held whole), and `each(Piece::Read)` after each buffer-full:
/// before the next read, which may block on a live stream, so that is when
/// output is written. Returns the number of bytes read.
fn for_each_line<R: BufRead>(
    r: &mut R,
    cap: usize,
    mut each: impl FnMut(Piece<'_>) -> io::Result<()>,
) -> io::Result<u64> {
    let mut carry = Vec::new();
    // Inside a line over the cap: drop bytes up to its end.
    let mut skipping = false;
    let mut total = 0u64;
    let line = |l: &[u8], each: &mut dyn FnMut(Piece<'_>) -> io::Result<()>| {
        let l = trim_line(l);
        if l.len() > cap {
            each(Piece::TooLong)
        } else {
            each(Piece::Line(l))
        }
    };
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            if skipping {
                each(Piece::TooLong)?;
            } else if !carry.is_empty() {
                line(&carry, &mut each)?;
            }
            return each(Piece::Read).map(|()| total);
        }
        let len = avail.len();
        total += len as u64;
        let mut rest = avail;
        if skipping || !carry.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    if skipping {
                        each(Piece::TooLong)?;
                    } else {
                        carry.extend_from_slice(&rest[..i]);
                        line(&carry, &mut each)?;
                    }
                    skipping = false;
                    carry.clear();
                    rest = &rest[i + 1..];
                }
                None if skipping => rest = &[],
                None => rest = carry_all(&mut carry, rest),
            }
        }
        while let Some(i) = memchr::memchr(b'\n', rest) {
            line(&rest[..i], &mut each)?;
            rest = &rest[i + 1..];
        }
        carry_all(&mut carry, rest);
        // `cap + 1`: a trailing `\r` is not part of the line.
        if carry.len() > cap.saturating_add(1) {
            carry = Vec::new();
            skipping = true;
        }
        r.consume(len);
        each(Piece::Read)?;
    }
}

/// Keep an unfinished line for the next read.
fn carry_all<'b>(carry: &mut Vec<u8>, rest: &[u8]) -> &'b [u8] {
    carry.extend_from_slice(rest);
    &[]
}

/// The NDJSON lines of one input, enriched into one output buffer that is
/// written out after each read.
struct Lines<'r> {
    run: &'r mut Run,
    file: &'r Path,
    pb: &'r ProgressBar,
    buf: &'r mut Vec<u8>,
    bad: Vec<(u64, Error)>,
    /// Lines read so far.
    n: u64,
    /// Records read so far (a line may hold several, or none).
    records: u64,
}

impl<'r> Lines<'r> {
    fn new(run: &'r mut Run, file: &'r Path, pb: &'r ProgressBar, buf: &'r mut Vec<u8>) -> Self {
        buf.clear();
        Lines {
            run,
            file,
            pb,
            buf,
            bad: Vec::new(),
            n: 0,
            records: 0,
        }
    }

    /// Enrich one line (without its line ending) into the buffer.
    fn line(&mut self, line: &[u8]) {
        self.n += 1;
        if self.run.window.is_some() {
            let n = self.hold(line);
            self.records += n;
            self.pb.inc(n);
            return;
        }
        let records = enrich_line(&mut self.run.enricher, line, self.buf, &mut self.bad);
        for (i, e) in self.bad.drain(..) {
            if matches!(e, Error::InvalidJson { .. }) {
                self.run.ndjson_hint(self.file, line);
            }
            let index = self.records + i + 1;
            self.run
                .note(self.file, self.n, Outcome::Malformed(e), index);
        }
        self.records += records;
        self.pb.inc(records);
    }

    /// With `--reorder-window`: the line's records (as [`enrich_line`] cuts
    /// them) go to the window; what it releases is enriched into the buffer.
    fn hold(&mut self, line: &[u8]) -> u64 {
        if line.iter().all(u8::is_ascii_whitespace) {
            return 0;
        }
        match credlineage::input::unroll_line(line) {
            Some(pieces) => {
                for (i, p) in pieces.iter().enumerate() {
                    let index = self.records + i as u64 + 1;
                    self.run.hold(self.file, self.n, index, &p.bytes, self.buf);
                }
                pieces.len() as u64
            }
            None => {
                self.run
                    .hold(self.file, self.n, self.records + 1, line, self.buf);
                1
            }
        }
    }

    /// A line over `--max-line-bytes`, skipped.
    fn too_long(&mut self) {
        self.n += 1;
        long_line(self.run, self.file, self.n);
    }

    /// Write what is buffered and flush it (the input is idle or done).
    fn write(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(self.buf)?;
        self.buf.clear();
        out.flush()
    }
}

/// Enrich one line of an NDJSON stream (without its newline) into `out`: one
/// output line, ending in `\n`, per record — several when the line is an S3
/// delivery file (`{"Records": [...]}`) or a CloudWatch Logs `DATA_MESSAGE`,
/// none when it is blank. The errors of
/// records that could not be read (passed through unchanged) are pushed to
/// `malformed`, each with the record's position in the line (from 0). Returns the number of records written. `enrich` on stdin and
/// `serve` both use it, so they give the same bytes.
fn enrich_line(
    e: &mut Enricher,
    line: &[u8],
    out: &mut Vec<u8>,
    malformed: &mut Vec<(u64, Error)>,
) -> u64 {
    if line.iter().all(u8::is_ascii_whitespace) {
        return 0;
    }
    let mut one = |i: usize, bytes: &[u8]| {
        if let Outcome::Malformed(err) = e.process_into(bytes, None, out) {
            malformed.push((i as u64, err));
        }
        out.push(b'\n');
    };
    if let Some(pieces) = credlineage::input::unroll_line(line) {
        for (i, p) in pieces.iter().enumerate() {
            one(i, &p.bytes);
        }
        return pieces.len() as u64;
    }
    one(0, line);
    1
}

/// `read_until(b'\n')` that keeps at most `cap` bytes of a line: the rest
/// of a longer line is read and dropped. Returns the bytes read (0 at the
/// end) and whether the line was cut.
fn read_line_capped<R: BufRead + ?Sized>(
    r: &mut R,
    buf: &mut Vec<u8>,
    cap: u64,
) -> io::Result<(u64, bool)> {
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    let mut total = 0u64;
    let mut cut = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok((total, cut));
        }
        let (take, done) = match memchr::memchr(b'\n', avail) {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        let room = cap.saturating_sub(buf.len());
        if !cut && take <= room {
            buf.extend_from_slice(avail.get(..take).unwrap_or_default());
        } else {
            cut = true;
        }
        r.consume(take);
        total += take as u64;
        if done {
            return Ok((total, cut));
        }
    }
}

/// `read_to_end` that refuses to hold more than `cap` bytes in `buf`.
fn read_to_end_capped<R: Read + ?Sized>(r: &mut R, buf: &mut Vec<u8>, cap: u64) -> io::Result<()> {
    let left = cap.saturating_sub(buf.len() as u64);
    r.take(left.saturating_add(1)).read_to_end(buf)?;
    if buf.len() as u64 > cap {
        buf.clear();
        buf.shrink_to_fit();
        return Err(too_large(cap));
    }
    Ok(())
}

fn too_large(cap: u64) -> io::Error {
    io::Error::other(format!(
        "larger than --max-document-bytes ({cap} bytes, counted decompressed); skipped, nothing from it written"
    ))
}

/// A line over `--max-line-bytes`: named, counted, skipped.
fn long_line(run: &mut Run, f: &Path, line: u64) {
    run.bad_input += 1;
    if !run.quiet {
        eprintln!(
            "credlineage: {}:{line}: longer than --max-line-bytes ({} bytes); skipped, nothing of it written",
            source_name(f),
            run.max_line
        );
    }
}

fn trim_line(l: &[u8]) -> &[u8] {
    let l = l.strip_suffix(b"\n").unwrap_or(l);
    l.strip_suffix(b"\r").unwrap_or(l)
}

fn process_doc(
    run: &mut Run,
    f: &Path,
    doc: &Doc,
    out: &mut dyn Write,
    buf: &mut Vec<u8>,
    pb: &ProgressBar,
) -> io::Result<()> {
    for d in &doc.damaged_records {
        note_damage(run, f, d);
    }
    for (i, piece) in doc.pieces.iter().enumerate() {
        let (bytes, line) = match piece {
            DocPiece::At(r, line) => (doc.bytes.get(r.clone()).unwrap_or_default(), *line),
            DocPiece::Owned(b, line) => (b.as_slice(), *line),
        };
        if run.window.is_some() {
            buf.clear();
            run.hold(f, line, i as u64 + 1, bytes, buf);
            out.write_all(buf)?;
            continue;
        }
        buf.clear();
        let o = run.enricher.process_into(bytes, None, buf);
        run.note(f, line, o, i as u64 + 1);
        buf.push(b'\n');
        out.write_all(buf)?;
    }
    pb.inc(doc.pieces.len() as u64);
    if let Some(d) = &doc.damage {
        note_damage(run, f, d);
    }
    Ok(())
}

/// Say how many CloudTrail-Digest files were skipped, if any.
fn digest_note(n: u64) {
    if n > 0 {
        eprintln!(
            "credlineage: {n} CloudTrail-Digest file{} skipped (integrity digests, not events)",
            if n == 1 { "" } else { "s" }
        );
    }
}

/// Say how many files of the input directories were skipped for their name
/// (all of them with `verbose`).
fn skip_note(skipped: &[PathBuf], verbose: bool) {
    if skipped.is_empty() {
        return;
    }
    if verbose {
        for p in skipped {
            eprintln!(
                "credlineage: skipped {} (not an input file by its name)",
                p.display()
            );
        }
    }
    eprintln!(
        "credlineage: {} file{} in input directories skipped (read: {READ_SUFFIXES}){}",
        skipped.len(),
        if skipped.len() == 1 { "" } else { "s" },
        if verbose { "" } else { "; -v names them" }
    );
}

/// How an input is named in messages: its path, `<stdin>` for `-`.
fn source_name(p: &Path) -> String {
    if p.as_os_str() == "-" {
        "<stdin>".into()
    } else {
        p.display().to_string()
    }
}

/// A damaged JSON document, or one damaged record of it: one error naming
/// the input, line and column (and the record, which is not named again).
fn note_damage(run: &mut Run, f: &Path, d: &credlineage::input::Damage) {
    if let Some(i) = d.record {
        run.told.insert((f.to_path_buf(), i as u64 + 1));
    }
    run.bad_input += 1;
    eprintln!("credlineage: {}", d.to_error(&source_name(f)));
}

fn summary(s: &Stats, secs: f64, bytes_in: u64) {
    let rate = if secs > 0.0 {
        s.records as f64 / secs
    } else {
        0.0
    };
    let mbs = if secs > 0.0 {
        bytes_in as f64 / secs / 1e6
    } else {
        0.0
    };
    eprintln!(
        "credlineage: {} records: {} annotated, {} passed through, {} malformed, {} with an unreadable or missing time | {} key collisions, {} off-host EC2 uses, {} issuances ({} chained) | {} tracked sets, {} evictions, {} expired | {:.2} s, {:.0} records/s, {:.1} MB/s",
        s.records,
        s.annotated,
        s.passed_through,
        s.malformed,
        s.bad_time,
        s.collisions,
        s.offhost,
        s.issuances,
        s.chained_issuances,
        s.tracked_sets,
        s.evictions,
        s.expired_purged,
        secs,
        rate,
        mbs
    );
}

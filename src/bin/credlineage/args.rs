//! Command-line arguments shared by several commands (engine, output shape, `--order`, batch memory) and building the engine's `Config` from them.
use super::*;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Order {
    /// Process records in arrival order, writing each as soon as it is read.
    Stream,
    /// Process in eventTime order (stable, two passes), write in input order; memory bounded by `--batch-memory`.
    Time,
}

/// Batch mode's (`--order time`) memory budget and spill directory, shared
/// by `enrich` and `report` (docs/batch.md).
#[derive(Args)]
pub(crate) struct BatchArgs {
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
    pub(crate) fn budget(&self) -> batch::Budget {
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
pub(crate) struct EngineArgs {
    /// Load state from FILE at start (if it exists); `enrich` and `serve` also save it there at exit (atomically), `report` only reads it.
    #[arg(long, value_name = "FILE")]
    pub(crate) state: Option<PathBuf>,
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

/// The configuration: the `--config` file, then the flags (`shape`: those
/// of commands that write records).
pub(crate) fn build_config(a: &EngineArgs, shape: Option<&OutputArgs>) -> Result<Config, Error> {
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

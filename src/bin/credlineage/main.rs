//! The `credlineage` command: enrich CloudTrail files, directories or stdin into annotated NDJSON, serve the same over TCP for Vector, and generate synthetic trails.

use clap::{Args, Parser, Subcommand, ValueEnum};
use credlineage::config::AwsIpRanges;
use credlineage::{AwsRanges, Config, Enricher, Error, Outcome, Stats};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{self, BufRead, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

mod args;
mod batch;
mod enrich;
mod generate;
mod inputs;
mod read;
mod reorder;
mod report;
mod run;
mod serve;
mod state;

use args::{BatchArgs, EngineArgs, Order, OutputArgs, build_config};
use enrich::{EnrichArgs, Inputs, enrich, enrich_inputs};
use generate::{GenerateArgs, generate};
use inputs::{
    CutDoc, Doc, DocPiece, Opened, READ_SUFFIXES, collect_files, looks_binary, not_text,
    open_input, source_name,
};
use read::{
    enrich_line, long_line, read_line_capped, read_to_end_capped, stream_file, too_large, trim_line,
};
use report::{ReportArgs, report};
use run::{Run, Window, digest_note, note_damage, progress, record_reason, skip_note, summary};
use state::{check_state_writable, load_state, save_state, save_state_with};

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

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish()
}

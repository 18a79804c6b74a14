//! `credlineage report`: its arguments, and reading the inputs into the report model before writing it as text, JSON or HTML.
use crate::*;

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
pub(crate) struct ReportArgs {
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

/// `report`: enrich the inputs as `enrich` would, into the report instead of an output.
pub(crate) fn report(a: ReportArgs) -> Result<ExitCode, Error> {
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

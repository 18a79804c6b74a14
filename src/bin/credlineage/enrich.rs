//! `credlineage enrich`: its arguments, the run over every input (stream order, or eventTime order through `batch`), and the exit code.
use super::*;

#[derive(Args)]
pub(crate) struct EnrichArgs {
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

/// What one run over the inputs left: the enricher (its state and
/// counters), how many inputs could not be read, bytes read and seconds taken.
pub(crate) struct Done {
    pub(crate) run: Run,
    bytes_in: u64,
    secs: f64,
}

/// What a run reads: the paths (`-` or none for stdin), in which order, and
/// the state file to start from.
pub(crate) struct Inputs<'a> {
    pub(crate) paths: &'a [PathBuf],
    pub(crate) order: Option<Order>,
    pub(crate) state: &'a Option<PathBuf>,
    pub(crate) budget: batch::Budget,
    /// `--reorder-window` (`enrich` only).
    pub(crate) window: Option<credlineage::reorder::Limits>,
}

/// Enrich every input into `out` (`out_name` names it in errors): the work
/// of `enrich`, also behind `report`.
pub(crate) fn enrich_inputs(
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
    pub(crate) fn exit_code(&self) -> ExitCode {
        if self.run.bad_input > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}

pub(crate) fn enrich(a: EnrichArgs) -> Result<ExitCode, Error> {
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
        let in_place = run.window.is_none();
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
                        open_input(f, max_document, in_place)
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
                    opened = open_input(f, run.max_document, run.window.is_none());
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

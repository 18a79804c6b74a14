//! `credlineage generate`: its arguments, and writing the synthetic trail as NDJSON.
use super::*;

#[derive(Args)]
pub(crate) struct GenerateArgs {
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

pub(crate) fn generate(a: GenerateArgs) -> Result<ExitCode, Error> {
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

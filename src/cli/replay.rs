//! `cairn replay`: rebuild, verify, or see the state as it was.

use std::path::PathBuf;
use std::process::ExitCode;

use super::DataArg;
use crate::replay::{self, Mode, Until};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    data: DataArg,
    /// Compare the rebuilt tables with the live ones and report each difference; change nothing
    #[arg(long, conflicts_with = "until")]
    verify: bool,
    /// Build the state as it was at this position or RFC 3339 time (needs --into)
    #[arg(long, value_name = "POS|TIME", requires = "into")]
    until: Option<Until>,
    /// The new database file that --until writes
    #[arg(long, value_name = "FILE", requires = "until")]
    into: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mode = match (args.verify, args.until, args.into) {
        (true, _, _) => Mode::Verify,
        (false, Some(until), Some(into)) => Mode::Until { until, into },
        _ => Mode::Swap,
    };
    let report = replay::replay(&args.data.data, &mode, |n| eprintln!("replayed {n} events…"))?;
    let rate = report.events as f64 / report.seconds.max(1e-9);
    match &mode {
        Mode::Swap => {
            println!(
                "rebuilt the read tables from {} events (head {}) in {:.2} s ({rate:.0} events/s)",
                report.events, report.head, report.seconds
            );
            Ok(ExitCode::SUCCESS)
        }
        Mode::Until { into, .. } => {
            println!(
                "wrote the state as of position {} ({} events) to {}",
                report.head,
                report.events,
                into.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Mode::Verify if report.differences.is_empty() => {
            println!(
                "ok: the read tables match a rebuild from {} events (head {})",
                report.events, report.head
            );
            Ok(ExitCode::SUCCESS)
        }
        Mode::Verify => {
            for d in &report.differences {
                println!("{d}");
            }
            eprintln!(
                "cairn: {} difference(s) between the live read tables and a rebuild at head {}",
                report.differences.len(),
                report.head
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

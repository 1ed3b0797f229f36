//! `cairn events`: print the audit trail.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use cairn_events::{reader, schema, EventFilter};

use super::DataArg;
use crate::datadir;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    data: DataArg,
    /// Only this stream (client-<uuid>, file-<uuid>, transfer-<uuid>, log, server)
    #[arg(long)]
    stream: Option<String>,
    /// Only this event type (ClientRegistered, FileStored, …)
    #[arg(long = "type", value_name = "TYPE")]
    event_type: Option<String>,
    /// Start at this position
    #[arg(long, value_name = "POS", default_value_t = 1)]
    from: i64,
    /// Print at most this many events (all when absent)
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// One JSON object per line
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(t) = &args.event_type {
        if !cairn_events::catalogue::EVENT_TYPES.contains(&t.as_str()) {
            anyhow::bail!(
                "unknown event type {t:?}; known: {}",
                cairn_events::catalogue::EVENT_TYPES.join(", ")
            );
        }
    }
    let db = datadir::db_path(&args.data.data);
    let conn = schema::open_read_only(&db).with_context(|| format!("cannot open {}", db.display()))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut left = args.limit.unwrap_or(usize::MAX);
    let mut filter = EventFilter {
        stream: args.stream,
        event_type: args.event_type,
        after: Some(args.from.max(1) - 1),
        limit: Some(cairn_events::reader::MAX_PAGE),
        ..EventFilter::default()
    };
    while left > 0 {
        filter.limit = Some(left.min(cairn_events::reader::MAX_PAGE));
        let page = reader::query(&conn, &filter)?;
        for e in &page.events {
            if args.json {
                writeln!(out, "{}", e.to_json())?;
            } else {
                writeln!(
                    out,
                    "{:>8}  {}  {:<44}  {:<20}  {:<44}  {}",
                    e.position,
                    e.recorded_at,
                    e.stream,
                    e.event_type,
                    e.metadata().actor,
                    e.data
                )?;
            }
        }
        left -= page.events.len();
        match page.next_after {
            Some(after) => filter.after = Some(after),
            None => break,
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

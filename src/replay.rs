//! `dropship replay`: the auditor's tools over the log. A stream's history and the
//! aggregate's state at any version or time (folded by the command side's own
//! `evolve`), an NDJSON export of the log, and a walk of every hash chain and position.

use std::io::{self, BufWriter, Write};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use eventlog::{LogFilter, read_filtered, read_stream, verify_log};
use schemas::public::render;
use sqlx::PgPool;
use uuid::Uuid;

/// Events per read of an export: enough to keep Postgres streaming, little memory.
const EXPORT_PAGE: i64 = 5_000;

#[derive(Debug, Subcommand)]
pub enum ReplayCommand {
    /// A stream's events as JSON lines, then the aggregate's state after the last one.
    Stream {
        stream_id: String,
        /// Stop after this version.
        #[arg(long, conflicts_with = "at")]
        to_version: Option<i32>,
        /// Stop at the last event recorded at or before this time (RFC 3339).
        #[arg(long)]
        at: Option<DateTime<Utc>>,
    },
    /// The log as NDJSON in log order, streamed.
    Log {
        #[arg(long)]
        store: Option<Uuid>,
        /// The first position to export.
        #[arg(long, conflicts_with_all = ["since", "until"])]
        from_position: Option<i64>,
        /// The last position to export.
        #[arg(long, conflicts_with_all = ["since", "until"])]
        to_position: Option<i64>,
        /// Events recorded at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<DateTime<Utc>>,
        /// Events recorded before this time (RFC 3339).
        #[arg(long)]
        until: Option<DateTime<Utc>>,
        /// Only events of this type; repeat for several.
        #[arg(long = "type")]
        types: Vec<String>,
        /// Only events this actor caused (`merchant:<id>`, `api_key:<id>`, …).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Walks every stream's hash chain (of one store's streams with --store) and, for the
    /// whole log, the positions; prints what it found and fails on any break.
    Verify {
        #[arg(long)]
        store: Option<Uuid>,
    },
}

pub async fn run(pool: &PgPool, command: ReplayCommand) -> anyhow::Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    let written = match command {
        ReplayCommand::Stream {
            stream_id,
            to_version,
            at,
        } => stream(pool, &mut out, &stream_id, to_version, at).await,
        ReplayCommand::Log {
            store,
            from_position,
            to_position,
            since,
            until,
            types,
            actor,
        } => {
            let filter = LogFilter {
                store_id: store,
                to_position,
                since,
                until,
                types,
                actor,
            };
            let after = from_position.map_or(0, |first| first.saturating_sub(1));
            export(pool, &mut out, after, &filter).await
        }
        ReplayCommand::Verify { store } => verify(pool, &mut out, store).await,
    };
    match written.and_then(|()| Ok(out.flush()?)) {
        // A reader that stopped early (`| head`) has all it wanted.
        Err(error) if is_broken_pipe(&error) => Ok(()),
        other => other,
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<io::Error>()
        .is_some_and(|error| error.kind() == io::ErrorKind::BrokenPipe)
}

async fn stream(
    pool: &PgPool,
    out: &mut impl Write,
    stream_id: &str,
    to_version: Option<i32>,
    at: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    let events = read_stream(pool, stream_id, 1).await?;
    if events.is_empty() {
        anyhow::bail!("the log has no stream `{stream_id}`");
    }
    let events: Vec<_> = events
        .into_iter()
        .take_while(|event| {
            to_version.is_none_or(|last| event.version <= last)
                && at.is_none_or(|at| event.recorded_at <= at)
        })
        .collect();
    let mut decoded = Vec::with_capacity(events.len());
    for event in &events {
        writeln!(out, "{}", render(event))?;
        decoded.push(
            event.decode().with_context(|| {
                format!("event at position {} cannot be decoded", event.position)
            })?,
        );
    }
    let state = domain::history::state_after(stream_id, &decoded);
    let line = serde_json::json!({
        "stream_id": stream_id,
        "version": events.last().map_or(0, |event| event.version),
        "state": state,
    });
    writeln!(out, "{line}")?;
    Ok(())
}

async fn export(
    pool: &PgPool,
    out: &mut impl Write,
    after: i64,
    filter: &LogFilter,
) -> anyhow::Result<()> {
    let mut after = after;
    loop {
        let page = read_filtered(pool, after, filter, EXPORT_PAGE).await?;
        for event in &page {
            writeln!(out, "{}", render(event))?;
        }
        match page.last() {
            Some(last) if page.len() as i64 == EXPORT_PAGE => after = last.position,
            _ => return Ok(()),
        }
        out.flush()?;
    }
}

async fn verify(pool: &PgPool, out: &mut impl Write, store: Option<Uuid>) -> anyhow::Result<()> {
    let report = verify_log(pool, store).await?;
    writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    out.flush()?;
    if let Some(first) = report.breaks.first() {
        anyhow::bail!(
            "the log is broken in {} place(s); the first: {}",
            report.breaks.len(),
            serde_json::to_string(first)?
        );
    }
    Ok(())
}

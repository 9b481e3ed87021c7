//! The workers role: process managers (durable consumers that turn events into commands
//! through the domain and the event log, never through our own HTTP API) and the
//! scheduler of periodic jobs, each run by one process at a time under a Postgres lease.

pub mod housekeeping;
pub mod order_expiry;
pub mod scheduler;
pub mod status;
pub mod store_deletion;

use eventlog::{EventLog, GroupCommitConfig};
use projections::{Projector, ProjectorConfig, run_projector};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{
    housekeeping::{RemoveStoreMedia, Retention, housekeeping_jobs},
    order_expiry::OrderDeadlines,
    scheduler::{SchedulerConfig, run_scheduler},
    store_deletion::StoreDeletion,
};

pub struct WorkersConfig {
    pub projector: ProjectorConfig,
    pub scheduler: SchedulerConfig,
    pub retention: Retention,
    pub remove_store_media: RemoveStoreMedia,
}

/// The process managers, all on one consumer named `workers`.
pub fn process_managers(log: EventLog) -> Projector {
    Projector::new("workers")
        .with(StoreDeletion::new(log))
        .with(OrderDeadlines)
}

/// Runs the process managers and the scheduler until `shutdown`; a running job is
/// given its drain time, then handed back.
pub async fn run_workers(
    pool: PgPool,
    client: async_nats::Client,
    config: WorkersConfig,
    shutdown: CancellationToken,
) {
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let managing = tokio::spawn(run_projector(
        pool.clone(),
        client,
        config.projector,
        process_managers(log.clone()),
        shutdown.clone(),
    ));
    let mut jobs = housekeeping_jobs(pool.clone(), config.retention, config.remove_store_media);
    jobs.push(order_expiry::job(log));
    run_scheduler(pool, jobs, config.scheduler, shutdown).await;
    let _ = managing.await;
}

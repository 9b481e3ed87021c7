//! A database of the run's own, and quiet between workloads.

use sqlx::{AssertSqlSafe, PgPool, postgres::PgPoolOptions};
use uuid::Uuid;

/// Flushes what earlier workloads left dirty, so that no workload pays for another's
/// checkpoint. Needs the right to CHECKPOINT; without it the run is only noisier.
pub async fn settle(pool: &PgPool) {
    let _ = sqlx::query("CHECKPOINT").execute(pool).await;
    let _ = sqlx::query("VACUUM ANALYZE").execute(pool).await;
}

/// A database of the run's own on the configured server, dropped at the end.
pub struct Scratch {
    admin: PgPool,
    name: String,
    pub url: String,
}

impl Scratch {
    pub async fn create(server: &str) -> anyhow::Result<Self> {
        let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&format!("{base}/postgres"))
            .await?;
        let name = format!("dropship_bench_{}", Uuid::new_v4().simple());
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await?;
        Ok(Self {
            url: format!("{base}/{name}"),
            admin,
            name,
        })
    }

    pub async fn drop(self) -> anyhow::Result<()> {
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE {} WITH (FORCE)",
            self.name
        )))
        .execute(&self.admin)
        .await?;
        Ok(())
    }
}

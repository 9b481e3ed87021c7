//! `store_activity`: per store, how many events it has had and the latest one. Small,
//! but a real dashboard figure, and the projection the runtime is proven with.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use schemas::RecordedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projection::{Projection, Target};

pub struct StoreActivity;

macro_rules! upsert_into {
    ($table:literal) => {
        concat!(
            "INSERT INTO ", $table, " (store_id, events_total, last_event_type, last_position, last_recorded_at) ",
            "SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bigint[], $5::timestamptz[]) ",
            "ON CONFLICT (store_id) DO UPDATE SET ",
            "events_total = ", $table, ".events_total + EXCLUDED.events_total, ",
            "last_event_type = EXCLUDED.last_event_type, last_position = EXCLUDED.last_position, ",
            "last_recorded_at = EXCLUDED.last_recorded_at ",
            // Replaying an already applied batch changes nothing.
            "WHERE ", $table, ".last_position < EXCLUDED.last_position"
        )
    };
}

struct Tally<'a> {
    events: i64,
    last: &'a RecordedEvent,
}

impl Projection for StoreActivity {
    const NAME: &'static str = "store_activity";
    const TABLES: &'static [&'static str] = &["store_activity"];

    fn reads(&self, event: &RecordedEvent) -> bool {
        event.store_id.is_some()
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: Target,
        events: &[RecordedEvent],
    ) -> Result<(), sqlx::Error> {
        let mut tallies: HashMap<Uuid, Tally<'_>> = HashMap::new();
        for event in events {
            let Some(store_id) = event.store_id else {
                continue;
            };
            tallies
                .entry(store_id)
                .and_modify(|tally| {
                    tally.events += 1;
                    tally.last = event;
                })
                .or_insert(Tally {
                    events: 1,
                    last: event,
                });
        }
        if tallies.is_empty() {
            return Ok(());
        }
        let mut store_ids = Vec::with_capacity(tallies.len());
        let mut totals = Vec::with_capacity(tallies.len());
        let mut types = Vec::with_capacity(tallies.len());
        let mut positions = Vec::with_capacity(tallies.len());
        let mut times: Vec<DateTime<Utc>> = Vec::with_capacity(tallies.len());
        for (store_id, tally) in &tallies {
            store_ids.push(*store_id);
            totals.push(tally.events);
            types.push(tally.last.event_type.as_str());
            positions.push(tally.last.position);
            times.push(tally.last.recorded_at);
        }
        let sql = match target {
            Target::Live => upsert_into!("store_activity"),
            Target::Shadow => upsert_into!("store_activity_shadow"),
        };
        sqlx::query(sql)
            .bind(&store_ids)
            .bind(&totals)
            .bind(&types)
            .bind(&positions)
            .bind(&times)
            .execute(conn)
            .await?;
        Ok(())
    }
}

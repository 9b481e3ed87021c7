//! The real `dropship` binary: start-up, roles, health, metrics, drain on SIGTERM, and
//! the one-line errors a newcomer sees when a dependency is missing.

#![allow(clippy::unwrap_used)]

use std::{
    net::TcpListener,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use eventlog::{EventLog, GroupCommitConfig, jetstream::StreamNames};
use sqlx::{PgPool, postgres::PgPoolOptions};
use testkit::{append_to_store, database_url, delete_stream, eventually, isolated_names};
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A database and a JetStream namespace of the test's own, removed at the end.
struct Environment {
    database: String,
    names: StreamNames,
}

impl Environment {
    fn new() -> Self {
        Self {
            database: format!("dropship_e2e_{}", Uuid::new_v4().simple()),
            names: isolated_names(),
        }
    }

    fn command(&self, port: u16) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dropship"));
        command
            .env("DATABASE_URL", database_url(&self.database))
            .env("NATS_URL", testkit::nats_url())
            .env("NATS_STREAM", &self.names.stream)
            .env("NATS_SUBJECT_PREFIX", &self.names.subject_prefix)
            .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
            // Split roles verify each other's tokens, so they share the signing key.
            .env("JWT_SECRET", "binary-test-secret-binary-test-secret-01")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    async fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .connect(&database_url(&self.database))
            .await
            .unwrap()
    }

    async fn remove(self) {
        let admin = PgPoolOptions::new()
            .connect(&database_url("postgres"))
            .await
            .unwrap();
        let drop = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.database);
        sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(&admin)
            .await
            .unwrap();
        let (client, _) = eventlog::jetstream::connect(&testkit::nats_url())
            .await
            .unwrap();
        delete_stream(&client, &self.names).await;
    }
}

async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let response = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .ok()?;
    Some((response.status().as_u16(), response.text().await.ok()?))
}

async fn ready(port: u16) -> bool {
    matches!(get(port, "/readyz").await, Some((200, _)))
}

fn terminate(child: &Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
}

async fn exit_of(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap()
}

async fn projection_lag(port: u16) -> Option<i64> {
    let (_, metrics) = get(port, "/metrics").await?;
    metrics
        .lines()
        .find(|l| l.starts_with("dropship_projection_lag"))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

#[tokio::test]
async fn serve_creates_its_database_publishes_projects_and_drains_on_sigterm() {
    let environment = Environment::new();
    let port = free_port();
    let child = environment.command(port).arg("serve").spawn().unwrap();
    assert!(
        eventually(PATIENCE, || ready(port)).await,
        "the platform never became ready"
    );
    assert_eq!(
        get(port, "/healthz").await.map(|(status, _)| status),
        Some(200)
    );

    let pool = environment.pool().await;
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    append_to_store(&log, Uuid::new_v4(), 250).await;
    assert!(eventually(PATIENCE, || async { projection_lag(port).await == Some(0) }).await);
    let projected: i64 = sqlx::query_scalar("SELECT sum(events_total)::bigint FROM store_activity")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(projected, 250);

    terminate(&child);
    let output = exit_of(child).await;
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    pool.close().await;
    environment.remove().await;
}

/// `dropship jobs` with its arguments against the environment's database.
fn jobs(environment: &Environment, arguments: &[&str]) -> Output {
    environment
        .command(free_port())
        .arg("jobs")
        .args(arguments)
        .stdout(Stdio::piped())
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_workers_run_every_periodic_job_and_dropship_jobs_shows_them() {
    let environment = Environment::new();
    let port = free_port();
    let child = environment
        .command(port)
        .args(["serve", "--role", "workers"])
        .spawn()
        .unwrap();
    assert!(eventually(PATIENCE, || ready(port)).await);
    let all_succeeded = || async {
        let listed = String::from_utf8_lossy(&jobs(&environment, &[]).stdout).into_owned();
        let rows: Vec<&str> = listed.lines().skip(1).collect();
        rows.len() == 5 && rows.iter().all(|row| row.contains("succeeded"))
    };
    assert!(eventually(PATIENCE, all_succeeded).await);
    let listed = String::from_utf8_lossy(&jobs(&environment, &[]).stdout).into_owned();
    assert!(listed.starts_with("JOB "), "{listed}");
    for job in [
        "expire_idempotency_keys",
        "remove_delivered_webhooks",
        "remove_expired_sessions",
        "remove_deleted_store_media",
        "expire_unpaid_orders",
    ] {
        assert!(listed.contains(job), "{job} in {listed}");
    }
    assert!(listed.contains("cron 0 15 * * * *"), "{listed}");

    let (_, metrics) = get(port, "/metrics").await.unwrap();
    assert!(
        metrics.contains("dropship_job_last_success{job=\"expire_idempotency_keys\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("dropship_job_runs_total{job=\"remove_expired_sessions\"}"));

    let run = jobs(&environment, &["run", "remove_expired_sessions"]);
    assert!(run.status.success());
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "remove_expired_sessions is due now\n"
    );
    let unknown = jobs(&environment, &["run", "tidy_everything"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no job named `tidy_everything`"));

    terminate(&child);
    assert!(exit_of(child).await.status.success());
    environment.remove().await;
}

#[tokio::test]
async fn split_roles_in_separate_processes_behave_as_all_in_one() {
    let environment = Environment::new();
    let (publisher_port, projector_port) = (free_port(), free_port());
    let migrate = environment
        .command(free_port())
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let publisher = environment
        .command(publisher_port)
        .args(["serve", "--role", "publisher"])
        .spawn()
        .unwrap();
    let projector = environment
        .command(projector_port)
        .args(["serve", "--role", "projector"])
        .spawn()
        .unwrap();
    assert!(eventually(PATIENCE, || ready(publisher_port)).await);
    assert!(eventually(PATIENCE, || ready(projector_port)).await);

    let pool = environment.pool().await;
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    append_to_store(&log, Uuid::new_v4(), 100).await;
    assert!(
        eventually(PATIENCE, || async {
            projection_lag(projector_port).await == Some(0)
        })
        .await
    );

    for child in [publisher, projector] {
        terminate(&child);
        assert!(exit_of(child).await.status.success());
    }
    pool.close().await;
    environment.remove().await;
}

#[tokio::test]
async fn a_write_through_one_process_is_read_through_another() {
    let environment = Environment::new();
    let ports = [free_port(), free_port(), free_port()];
    let roles: [&[&str]; 3] = [
        &["--role", "publisher", "--role", "projector"],
        &["--role", "command-api"],
        &["--role", "query-api"],
    ];
    let migrate = environment
        .command(free_port())
        .arg("migrate")
        .output()
        .unwrap();
    assert!(migrate.status.success());
    let children: Vec<Child> = ports
        .iter()
        .zip(roles)
        .map(|(port, roles)| {
            environment
                .command(*port)
                .arg("serve")
                .args(roles)
                .spawn()
                .unwrap()
        })
        .collect();
    for port in ports {
        assert!(eventually(PATIENCE, || ready(port)).await);
    }
    let (commands, queries) = (
        format!("http://127.0.0.1:{}", ports[1]),
        format!("http://127.0.0.1:{}", ports[2]),
    );
    let client = reqwest::Client::new();
    let registered: serde_json::Value = client
        .post(format!("{commands}/api/v1/auth/register"))
        .json(&serde_json::json!({"email": "split@example.com", "password": "split roles"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = registered["data"]["access_token"].as_str().unwrap();
    let created = client
        .post(format!("{commands}/api/v1/stores"))
        .bearer_auth(token)
        .json(&serde_json::json!({"name": "Split Store"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let position = created.headers()["x-position"].to_str().unwrap().to_owned();
    let read = client
        .get(format!("{queries}/api/v1/public/stores/split-store"))
        .header("x-min-position", position)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let unserved = client
        .get(format!("{queries}/api/v1/auth/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unserved.status(),
        404,
        "the query role does not serve commands"
    );

    for child in children {
        terminate(&child);
        assert!(exit_of(child).await.status.success());
    }
    environment.remove().await;
}

async fn single_error_line(mut command: Command) -> String {
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line, not a stack of errors: {stderr}");
    lines[0].to_owned()
}

#[tokio::test]
async fn an_unreachable_postgres_is_one_line_naming_it_and_how_to_start_it() {
    let environment = Environment::new();
    let mut command = environment.command(free_port());
    command
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/dropship")
        .arg("serve");
    let line = single_error_line(command).await;
    assert!(
        line.contains("cannot reach PostgreSQL at postgres://postgres@127.0.0.1:1/dropship"),
        "{line}"
    );
    assert!(line.contains("pg_ctlcluster"), "{line}");
}

#[tokio::test]
async fn an_unreachable_nats_is_one_line_naming_it_and_how_to_start_it() {
    let environment = Environment::new();
    let mut command = environment.command(free_port());
    command.env("NATS_URL", "nats://127.0.0.1:1").arg("serve");
    let line = single_error_line(command).await;
    assert!(
        line.contains("cannot reach NATS at nats://127.0.0.1:1"),
        "{line}"
    );
    assert!(line.contains("nats-server"), "{line}");
    environment.remove().await;
}

fn dropship(environment: &Environment, arguments: &[&str]) -> Output {
    environment
        .command(free_port())
        .args(arguments)
        .stdout(Stdio::piped())
        .output()
        .unwrap()
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn replay_shows_a_stream_at_any_version_exports_the_log_and_verify_names_tampering() {
    use eventlog::{AppendRequest, ExpectedVersion, NewEvent};
    use schemas::{
        Event,
        store::{StoreCreated, StorePaused},
    };

    let environment = Environment::new();
    let status = dropship(&environment, &["projections", "status"]);
    assert!(status.status.success());
    let listed = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(listed.starts_with("PROJECTION "), "{listed}");
    assert!(listed.contains("stores"), "{listed}");

    let pool = environment.pool().await;
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let store = Uuid::new_v4();
    let stream = format!("store-{store}");
    let created = Event::StoreCreated(StoreCreated {
        owner_id: Uuid::new_v4(),
        name: "Lamps".into(),
        slug: "lamps".into(),
        niche: None,
        description: None,
        currency: "USD".into(),
    });
    let paused = Event::StorePaused(StorePaused { reason: None });
    let request = AppendRequest::new(
        stream.clone(),
        ExpectedVersion::NoStream,
        vec![NewEvent::new(created), NewEvent::new(paused)],
    )
    .in_store(store)
    .with_metadata(schemas::EventMetadata {
        actor: Some("merchant:auditor".into()),
        ..Default::default()
    });
    log.append(request).await.unwrap();
    append_to_store(&log, store, 3).await;
    let other = Uuid::new_v4();
    append_to_store(&log, other, 4).await;

    let at_one = json_lines(&dropship(
        &environment,
        &["replay", "stream", &stream, "--to-version", "1"],
    ));
    assert_eq!(at_one.len(), 2, "one event, then the state");
    assert_eq!(at_one[0]["type"], "store.created");
    assert_eq!(at_one[1]["version"], 1);
    assert!(at_one[1]["state"].to_string().contains("Lamps"));
    let at_two = json_lines(&dropship(
        &environment,
        &["replay", "stream", &stream, "--to-version", "2"],
    ));
    assert_eq!(at_two.len(), 3);
    assert_ne!(
        at_two[2]["state"], at_one[1]["state"],
        "paused at version 2"
    );

    let store_log = json_lines(&dropship(
        &environment,
        &["replay", "log", "--store", &store.to_string()],
    ));
    let positions: Vec<i64> = store_log
        .iter()
        .map(|event| event["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, [1, 2, 3, 4, 5]);
    assert!(
        store_log
            .iter()
            .all(|event| event["store_id"] == store.to_string())
    );
    let updates = json_lines(&dropship(
        &environment,
        &[
            "replay",
            "log",
            "--type",
            "store.updated",
            "--from-position",
            "4",
            "--to-position",
            "7",
        ],
    ));
    let positions: Vec<i64> = updates
        .iter()
        .map(|event| event["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, [4, 5, 6, 7]);

    let by_auditor = json_lines(&dropship(
        &environment,
        &["replay", "log", "--actor", "merchant:auditor"],
    ));
    let positions: Vec<i64> = by_auditor
        .iter()
        .map(|event| event["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, [1, 2], "only what that actor did");

    let clean = dropship(&environment, &["replay", "verify"]);
    assert!(clean.status.success());
    let report: serde_json::Value = serde_json::from_slice(&clean.stdout).unwrap();
    assert_eq!(report["events_checked"], 9);
    assert_eq!(report["streams_checked"], 2);
    assert_eq!(report["breaks"], serde_json::json!([]));

    sqlx::query("UPDATE events SET payload = payload || '\\x00'::bytea WHERE position = 3")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM events WHERE position = 7")
        .execute(&pool)
        .await
        .unwrap();
    let broken = dropship(&environment, &["replay", "verify"]);
    assert!(!broken.status.success());
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("broken in 3 place(s)"),
        "{}",
        String::from_utf8_lossy(&broken.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&broken.stdout).unwrap();
    let breaks = report["breaks"].as_array().unwrap();
    assert_eq!(breaks[0]["kind"], "chain");
    assert_eq!(breaks[0]["position"], 3, "the edited event");
    assert_eq!(
        breaks[1],
        serde_json::json!({"kind": "hole", "first": 7, "last": 7})
    );
    assert_eq!(breaks[2]["kind"], "chain");
    assert_eq!(breaks[2]["position"], 8, "the event after the deleted one");
    assert_eq!(breaks[2]["stream_id"], format!("store-{other}"));

    let one_store = dropship(
        &environment,
        &["replay", "verify", "--store", &other.to_string()],
    );
    assert!(!one_store.status.success());
    let report: serde_json::Value = serde_json::from_slice(&one_store.stdout).unwrap();
    assert_eq!(report["events_checked"], 3);
    assert_eq!(report["breaks"].as_array().unwrap().len(), 1);
    environment.remove().await;
}

//! Where figures go: every line a suite measures is printed, and with `--record` also
//! appended to `bench/results/<suite>.jsonl` with the commit and the time, so that the
//! next regression shows in a diff and `bench compare` can set two commits' runs side
//! by side (minimum and median of each, as runs on these machines vary).

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use serde_json::{Map, Value, json};

/// The file the current suite records into, when recording.
static RECORDING: OnceLock<Recording> = OnceLock::new();

struct Recording {
    file: PathBuf,
    commit: String,
}

/// Fields that say what was measured rather than what came out.
const PARAMETERS: &[&str] = &[
    "workload",
    "writers",
    "payload_bytes",
    "batch",
    "projection",
    "projections",
    "clients",
    "endpoints",
    "roles",
];

pub fn results_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results")
}

/// From now on `emit` also appends to `<suite>.jsonl`.
pub fn record_into(suite: &str) {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    // The results files themselves change with every recorded run.
    let dirty = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ":(top)",
        ":(exclude,top)bench/results",
    ])
    .is_some_and(|changes| !changes.is_empty());
    let _ = RECORDING.set(Recording {
        file: results_dir().join(format!("{suite}.jsonl")),
        commit: if dirty {
            format!("{commit}-dirty")
        } else {
            commit
        },
    });
}

fn git(arguments: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(arguments)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Prints one measured line, and records it when recording.
pub fn emit(line: Value) {
    println!("{line}");
    let Some(recording) = RECORDING.get() else {
        return;
    };
    let mut recorded = Map::new();
    recorded.insert("commit".into(), json!(recording.commit));
    recorded.insert("recorded_at".into(), json!(chrono::Utc::now().to_rfc3339()));
    if let Value::Object(fields) = line {
        recorded.extend(fields);
    }
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&recording.file)
        .and_then(|mut file| writeln!(file, "{}", Value::Object(recorded)));
    if let Err(error) = appended {
        eprintln!("cannot record into {}: {error}", recording.file.display());
    }
}

/// One workload's runs at one commit: every figure's values.
type Runs = BTreeMap<String, Vec<f64>>;

/// Prints, for each workload, every figure of `older` and `newer` (default: the last two
/// commits recorded in `file`) as minimum / median, and the change of the medians.
pub fn compare(file: &Path, older: Option<&str>, newer: Option<&str>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)?;
    let mut commits: Vec<String> = Vec::new();
    let mut runs: BTreeMap<(String, String), Runs> = BTreeMap::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let Value::Object(fields) = serde_json::from_str::<Value>(line)? else {
            continue;
        };
        let commit = fields
            .get("commit")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        if !commits.contains(&commit) {
            commits.push(commit.clone());
        }
        let workload: Vec<String> = PARAMETERS
            .iter()
            .filter_map(|name| Some(format!("{name}={}", fields.get(*name)?)))
            .collect();
        let figures = runs.entry((workload.join(" "), commit)).or_default();
        for (name, value) in &fields {
            if let Some(value) = value
                .as_f64()
                .filter(|_| !PARAMETERS.contains(&name.as_str()))
            {
                figures.entry(name.clone()).or_default().push(value);
            }
        }
    }
    let pick = |chosen: Option<&str>, from_end: usize| {
        chosen
            .map(str::to_owned)
            .or_else(|| commits.iter().rev().nth(from_end).cloned())
    };
    let (Some(older), Some(newer)) = (pick(older, 1), pick(newer, 0)) else {
        anyhow::bail!("{} holds fewer than two commits' runs", file.display());
    };
    println!("{older} → {newer} (min / median of each commit's runs)");
    let workloads: Vec<&String> = runs.keys().map(|(workload, _)| workload).collect();
    let mut shown = Vec::new();
    for workload in workloads {
        if shown.contains(&workload) {
            continue;
        }
        shown.push(workload);
        let of = |commit: &str| runs.get(&(workload.clone(), commit.to_owned()));
        let (Some(before), Some(after)) = (of(&older), of(&newer)) else {
            continue;
        };
        println!("{workload}");
        for (figure, values) in after {
            let Some(previous) = before.get(figure) else {
                continue;
            };
            let (old_min, old_median) = min_median(previous);
            let (new_min, new_median) = min_median(values);
            let change = if old_median == 0.0 {
                String::from("-")
            } else {
                format!("{:+.1} %", (new_median / old_median - 1.0) * 100.0)
            };
            println!(
                "  {figure:<32} {old_min:>12.1} / {old_median:<12.1} → {new_min:>12.1} / {new_median:<12.1} {change}"
            );
        }
    }
    Ok(())
}

fn min_median(values: &[f64]) -> (f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    (sorted[0], sorted[sorted.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_three_is_the_middle_one() {
        assert_eq!(min_median(&[900.0, 700.0, 800.0]), (700.0, 800.0));
        assert_eq!(min_median(&[5.0]), (5.0, 5.0));
    }
}

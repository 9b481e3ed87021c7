//! The public event schemas are checked in under `schemas/json/`, so that a change to
//! what integrators read shows in review (`golden.rs` proves each event type's sample
//! valid under its schema). `UPDATE_SCHEMAS=1 cargo test -p schemas --test json_schemas` rewrites the files.

use std::path::PathBuf;

use schemas::public::event_schemas;

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("json")
}

#[test]
fn the_checked_in_schemas_are_the_generated_ones() {
    let generated = event_schemas();
    let mut expected_files: Vec<String> = Vec::new();
    for schema in &generated {
        let name = format!("{}.v{}.json", schema.event_type, schema.schema_version);
        let text = format!(
            "{}\n",
            serde_json::to_string_pretty(&schema.schema).unwrap_or_default()
        );
        let path = schema_dir().join(&name);
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            std::fs::create_dir_all(schema_dir()).expect("schema directory");
            std::fs::write(&path, &text).expect("schema written");
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{} missing ({e}); run with UPDATE_SCHEMAS=1",
                path.display()
            )
        });
        assert_eq!(
            checked_in, text,
            "{name} drifted from the code; run with UPDATE_SCHEMAS=1 and review"
        );
        expected_files.push(name);
    }
    let mut present: Vec<String> = std::fs::read_dir(schema_dir())
        .expect("schema directory")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    present.sort();
    expected_files.sort();
    assert_eq!(
        present, expected_files,
        "no schema of a type the platform no longer writes"
    );
}

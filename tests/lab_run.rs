//! The claim-driven lab end to end, in-process: `--only C2 --scale 0.05`
//! (two waits of 150 ms in four ways; about 2 s), through the library
//! entry point the lab example calls, then the files it writes.

#![cfg(feature = "lab")]

mod util;

use std::time::Duration;

use greenloop::lab::{self, ClaimId, Holds, Options};

use util::watchdog;

/// A hang, not a pace: the run takes about 2 s.
const LIMIT: Duration = Duration::from_secs(300);

#[test]
fn only_c2_at_a_tiny_scale_writes_a_complete_report() {
    watchdog(LIMIT, only_c2_at_a_tiny_scale_writes_a_complete_report_body);
}

fn only_c2_at_a_tiny_scale_writes_a_complete_report_body() {
    let out = std::env::temp_dir().join(format!("greenloop-lab-run-{}", std::process::id()));
    let opts = Options {
        scale: 0.05,
        only: Some(vec![ClaimId::C2]),
        out_dir: out.clone(),
        progress: false,
        charts: false,
        ..Options::default()
    };
    let report = lab::run(&opts).unwrap();
    assert_eq!(report.claims.len(), 1);
    assert_eq!(report.claims[0].id, "C2_two_tasks");
    assert_ne!(report.claims[0].holds, Holds::Unknown, "{}", report.claims[0].summary);
    assert!(report.table().contains("C2_two_tasks"));

    let text = std::fs::read_to_string(out.join("report.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let machine = &json["machine"];
    for field in ["cpus", "cpu_model", "kernel", "nofile_soft", "pinned", "scale"] {
        assert!(machine.get(field).is_some(), "machine.{field} missing: {machine}");
    }
    assert_eq!(machine["scale"], 0.05);
    let claims = json["claims"].as_array().unwrap();
    assert_eq!(claims.len(), 1);
    for field in ["id", "holds", "summary"] {
        assert!(claims[0].get(field).is_some(), "claims[0].{field} missing");
    }
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 8, "4 (runtime, style) pairs × sequential/concurrent");
    for run in runs {
        for field in greenloop::lab::RUN_FIELDS {
            assert!(run.get(field).is_some(), "runs[].{field} missing: {run}");
        }
        assert_eq!(run["claim"], "C2_two_tasks");
        assert_eq!(run["errors"], 0, "{run}");
        // Each pair's waits took at least one wait (150 ms).
        assert!(run["elapsed_ms"].as_f64().unwrap() >= 150.0, "{run}");
    }
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("C2_two_tasks"));
    let _ = std::fs::remove_dir_all(&out);
}

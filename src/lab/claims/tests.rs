//! Unit tests of the claim evaluations on synthetic runs: each claim holds
//! on numbers that bear it out, and fails on numbers that contradict it.

use std::time::Duration;

use super::*;
use crate::lab::measure::SLEEPS_PER_REQ;
use crate::lab::report::{ClaimReport, Machine, Report};

/// A synthetic load run of `spec` at `conns`.
fn run(claim: &str, spec: &str, conns: usize, req_per_s: f64, p50_ms: f64) -> Run {
    let cell = Cell::parse_spec(spec).unwrap();
    let mut r = Run::figure(claim, cell.runtime.name(), &cell.style.to_string(), "load");
    r.variant = None;
    r.cell = cell.to_spec();
    r.workers = cell.workers;
    r.offload = cell.offload_name().map(Into::into);
    r.conns = conns;
    r.req_per_s = req_per_s;
    r.p50_ms = p50_ms;
    r.p99_ms = p50_ms * 1.5;
    r
}

fn slept(mut r: Run, ms: f64) -> Run {
    r.extra.insert("sleep_ms".into(), ms);
    r
}

/// C1's four runs at a 100 ms sleep, with the pool at `pool_rate` req/s.
fn c1(pool_rate: f64, pool_p50: f64, green_rate: f64) -> Vec<Run> {
    vec![
        slept(run("C1", "threads-blocking-sleep-w4", 100, pool_rate, pool_p50), 100.0),
        slept(run("C1", "threads-blocking-sleep", 100, 950.0, 105.0), 100.0),
        slept(run("C1", "green-blocking-sleep", 100, green_rate, 102.0), 100.0),
        slept(run("C1", "stackless-async-sleep", 100, 1000.0, 101.0), 100.0),
    ]
}

#[test]
fn c1_holds_when_the_pool_queues_and_the_others_do_not() {
    let v = c1_evaluate(&c1(40.0, 700.0, 990.0));
    assert_eq!(v.holds, Holds::Yes, "{}", v.summary);
    assert!(v.summary.contains("pool W=4 40.0 req/s"), "{}", v.summary);
}

#[test]
fn c1_fails_when_the_pool_keeps_up() {
    // A pool answering ≈ 100 req/s at one sleep is not queueing.
    let v = c1_evaluate(&c1(100.0 * 10.0, 101.0, 990.0));
    assert_eq!(v.holds, Holds::No, "{}", v.summary);
    let v = c1_evaluate(&c1(100.0, 101.0, 990.0));
    assert_eq!(v.holds, Holds::No, "{}", v.summary);
}

#[test]
fn c1_is_partly_when_one_runtime_also_queues() {
    let v = c1_evaluate(&c1(40.0, 700.0, 300.0));
    assert_eq!(v.holds, Holds::Partly, "{}", v.summary);
    assert!(v.summary.contains("(not at once)"), "{}", v.summary);
}

#[test]
fn c1_without_runs_is_unknown() {
    assert_eq!(c1_evaluate(&[]).holds, Holds::Unknown);
}

fn c2(runtime: &str, style: &str, seq_ms: f64, conc_ms: f64) -> Vec<Run> {
    [("sequential", seq_ms), ("concurrent", conc_ms)]
        .into_iter()
        .map(|(variant, ms)| {
            let mut r = Run::figure("C2_two_tasks", runtime, style, variant);
            r.extra.insert("wait_ms".into(), 100.0);
            r.extra.insert("elapsed_ms".into(), ms);
            r
        })
        .collect()
}

#[test]
fn c2_two_waits() {
    let all = |conc: f64| -> Vec<Run> {
        inproc::C2_PAIRS.iter().flat_map(|(rt, st)| c2(rt, st, 201.0, conc)).collect()
    };
    assert_eq!(c2_evaluate(&all(101.0)).holds, Holds::Yes);
    // Concurrent waits that take as long as sequential ones: no.
    assert_eq!(c2_evaluate(&all(201.0)).holds, Holds::No);
    let mut some = all(101.0);
    some.extend(c2("green", "blocking", 201.0, 200.0));
    some.retain(|r| {
        !(r.runtime == "green" && r.style == "blocking" && r.get("elapsed_ms") == Some(101.0))
    });
    assert_eq!(c2_evaluate(&some).holds, Holds::Partly);
}

#[test]
fn c3_inline_must_serialize() {
    let runs = |inline: f64, rescued: f64| {
        vec![
            slept(run("C3", "stackless-blocking-sleep-inline", 10, inline, 700.0), 100.0),
            slept(run("C3", "stackless-blocking-sleep-pool", 10, rescued, 101.0), 100.0),
            slept(run("C3", "green-blocking-sleep", 10, rescued, 101.0), 100.0),
        ]
    };
    assert_eq!(c3_evaluate(&runs(10.0, 100.0)).holds, Holds::Yes);
    assert_eq!(c3_evaluate(&runs(100.0, 100.0)).holds, Holds::Partly);
    assert_eq!(c3_evaluate(&runs(100.0, 10.0)).holds, Holds::No);
}

#[test]
fn c4_pool_helps_then_queues() {
    let spec = "stackless-blocking-sleep-pool-w4";
    let runs = |big: f64| {
        vec![
            slept(run("C4", spec, 4, 40.0, 100.0), 100.0),
            slept(run("C4", spec, 8, big, 200.0), 100.0),
            slept(run("C4", spec, 16, big, 400.0), 100.0),
        ]
    };
    assert_eq!(c4_evaluate(&runs(40.0)).holds, Holds::Yes);
    // 160 req/s through a pool of 4 at 100 ms: it did not queue.
    assert_eq!(c4_evaluate(&runs(160.0)).holds, Holds::Partly);
    let none = vec![slept(run("C4", spec, 4, 5.0, 800.0), 100.0)];
    assert_eq!(c4_evaluate(&none).holds, Holds::No);
}

#[test]
fn c5_green_gaining_on_cpu_work_fails_it() {
    let runs = |green: f64, stackless: f64| {
        vec![
            run("C5", "threads-blocking-sleep", 8, 190.0, 40.0),
            run("C5", "green-blocking-sleep", 8, green, 40.0),
            run("C5", "stackless-async-sleep", 8, stackless, 40.0),
        ]
    };
    assert_eq!(c5_evaluate(&runs(185.0, 180.0)).holds, Holds::Yes);
    assert_eq!(c5_evaluate(&runs(400.0, 180.0)).holds, Holds::Partly);
    assert_eq!(c5_evaluate(&runs(400.0, 400.0)).holds, Holds::No);
}

fn sweep(at_one: [f64; 3], at_top: [f64; 3]) -> Vec<Run> {
    let mut runs = Vec::new();
    for (conns, rates) in [(1, at_one), (1000, at_top)] {
        for (spec, rate) in sweep::C6_CELLS.iter().zip(rates) {
            runs.push(slept(run("C6", spec, conns, rate, 100.0), 100.0));
        }
    }
    runs
}

#[test]
fn c6_threshold() {
    assert_eq!(c6_evaluate(&sweep([10.0; 3], [2000.0, 9000.0, 9500.0])).holds, Holds::Yes);
    assert_eq!(c6_evaluate(&sweep([10.0; 3], [5800.0, 4200.0, 4000.0])).holds, Holds::Partly);
    assert_eq!(c6_evaluate(&sweep([5.0, 10.0, 10.0], [5800.0, 4200.0, 4000.0])).holds, Holds::No);
}

#[test]
fn c7_same_within_five_percent() {
    let runs = |green: f64| {
        vec![
            run("C7", "green-blocking-sleep", 1000, green, 100.0),
            run("C7", "stackless-async-sleep", 1000, 9000.0, 100.0),
        ]
    };
    assert_eq!(c7_evaluate(&runs(8800.0)).holds, Holds::Yes);
    assert_eq!(c7_evaluate(&runs(8000.0)).holds, Holds::Partly);
    assert_eq!(c7_evaluate(&runs(4000.0)).holds, Holds::No);
}

fn c8(threads_kib: f64, thread_spawn_ns: f64) -> Vec<Run> {
    let mut runs = Vec::new();
    for (rt, kib, spawn) in [
        ("threads", threads_kib, thread_spawn_ns),
        ("green", 9.0, 200.0),
        ("stackless", 4.0, 100.0),
    ] {
        let mut idle = Run::figure("C8_memory", rt, "blocking", "idle");
        idle.conns = 1000;
        idle.extra.insert("rss_kib_per_conn".into(), kib);
        let mut cost = Run::figure("C8_memory", rt, "blocking", "spawn_join");
        cost.extra.insert("ns_per_op".into(), spawn);
        runs.extend([idle, cost]);
    }
    runs
}

#[test]
fn c8_threads_cost_more() {
    assert_eq!(c8_evaluate(&c8(40.0, 30_000.0)).holds, Holds::Yes);
    assert_eq!(c8_evaluate(&c8(10.0, 30_000.0)).holds, Holds::Partly);
    assert_eq!(c8_evaluate(&c8(10.0, 300.0)).holds, Holds::No);
}

#[test]
fn e1_cpu_per_message() {
    let runs = |green_ns: f64| {
        cpu::E1_CELLS
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let mut r = run("E1", spec, 50, 80_000.0, 0.5);
                let ns = if i == 0 { 8000.0 } else { green_ns };
                r.server_user_ns_per_req = Some(ns / 2.0);
                r.server_sys_ns_per_req = Some(ns / 2.0);
                r
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(e1_evaluate(&runs(4000.0)).holds, Holds::Yes);
    assert_eq!(e1_evaluate(&runs(9000.0)).holds, Holds::No);
    let mut no_cpu = runs(4000.0);
    no_cpu[0].server_user_ns_per_req = None;
    assert_eq!(e1_evaluate(&no_cpu).holds, Holds::Unknown);
}

#[test]
fn claim_ids_parse_by_id_or_prefix() {
    assert_eq!("C3".parse::<ClaimId>().unwrap(), ClaimId::C3);
    assert_eq!("e1_echo_cpu".parse::<ClaimId>().unwrap(), ClaimId::E1);
    assert_eq!(Options::parse_only("C3, E1").unwrap(), vec![ClaimId::C3, ClaimId::E1]);
    let e = "C99".parse::<ClaimId>().unwrap_err();
    assert!(e.to_string().contains("C1_sleep_queue"), "{e}");
    for (i, id) in ClaimId::ALL.iter().enumerate() {
        assert_eq!(*id as usize, i, "CLAIMS is indexed by ClaimId");
        assert!(id.id().starts_with(&format!("{id:?}_")), "{}", id.id());
    }
}

#[test]
fn scale_sets_sleeps_and_windows() {
    let default = Options::default();
    assert_eq!(default.scaled(Duration::from_secs(1)), Duration::from_millis(100));
    assert_eq!(default.window(), Duration::from_millis(700));
    assert_eq!(default.warmup(), Duration::from_millis(300));
    let full = Options { full: true, ..Options::default() };
    assert_eq!(full.scaled(Duration::from_secs(3)), Duration::from_secs(3));
    assert_eq!(full.window(), Duration::from_secs(5));
    let tiny = Options { scale: 0.001, ..Options::default() };
    assert_eq!(tiny.window(), Options::MIN_WINDOW);
    assert!(tiny.selects(ClaimId::C8));
    let only = Options { only: Some(vec![ClaimId::C2]), ..Options::default() };
    assert!(only.selects(ClaimId::C2) && !only.selects(ClaimId::C1));
    assert_eq!(total_steps(&only), inproc::C2_STEPS);
}

#[test]
fn report_json_has_exactly_the_documented_shape() {
    let opts = Options::default();
    let mut r = run("C1_sleep_queue", "stackless-blocking-sleep-inline", 10, 9.5, 700.0);
    r.server_user_ns_per_req = Some(1000.0);
    r.rss_kib = Some(4096);
    let report = Report {
        machine: Machine::probe(&opts),
        claims: vec![ClaimReport {
            id: "C1_sleep_queue".into(),
            holds: Holds::Partly,
            summary: "why".into(),
            measured: "what".into(),
            thresholds: "t".into(),
            seconds: 1.0,
        }],
        runs: vec![slept(r, 100.0)],
    };
    let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["claims", "machine", "runs"]);
    for field in ["cpus", "cpu_model", "kernel", "nofile_soft", "nofile_hard", "pinned", "scale"] {
        assert!(json["machine"].get(field).is_some(), "machine.{field}");
    }
    assert_eq!(json["claims"][0]["holds"], "partly");
    for field in ["id", "holds", "summary"] {
        assert!(json["claims"][0].get(field).is_some(), "claims[].{field}");
    }
    let row = &json["runs"][0];
    for field in [
        "claim",
        "runtime",
        "style",
        "offload",
        "conns",
        "req_per_s",
        "p50_ms",
        "p99_ms",
        "errors",
        "server_user_ns_per_req",
        "server_sys_ns_per_req",
        "rss_kib",
    ] {
        assert!(row.get(field).is_some(), "runs[].{field} missing: {row}");
    }
    assert_eq!(row["offload"], "inline");
    assert_eq!(row["sleep_ms"], 100.0, "extra figures are flattened into the row");
    // And it reads back.
    let back: Report = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
    let table = report.table();
    assert!(table.contains("C1_sleep_queue") && table.contains("partly"), "{table}");
    assert!(report.markdown().contains("| `C1_sleep_queue` |"));
}

/// S1's twelve runs on 2 cores: each pair at 1000 → 1500 req/s; green's
/// and stackless's CPU per message at 10 µs on one core, `many_ns` on two.
fn s1(many_ns: f64) -> Vec<Run> {
    let mut runs = Vec::new();
    for (spec, many) in [("green-blocking", "c2"), ("stackless-async", "c2"), ("tokio-async", "w2")]
    {
        for service in ["echo", "sleep"] {
            for (cores, suffix) in [(1.0, String::new()), (2.0, format!("-{many}"))] {
                let rate = if cores == 1.0 { 1000.0 } else { 1500.0 };
                let mut r = run("S1", &format!("{spec}-{service}{suffix}"), 50, rate, 1.0);
                r.service = service.into();
                r.extra.insert("cores".into(), cores);
                let sleeps = if cores == 1.0 { 0.05 } else { 0.25 };
                r.extra.insert(SLEEPS_PER_REQ.into(), sleeps);
                let ns = if cores == 1.0 { 10_000.0 } else { many_ns };
                r.server_user_ns_per_req = Some(ns / 2.0);
                r.server_sys_ns_per_req = Some(ns / 2.0);
                runs.push(r);
            }
        }
    }
    runs
}

#[test]
fn s1_holds_when_cpu_per_message_stays_flat() {
    let flat = s1_evaluate(&s1(10_500.0));
    assert_eq!(flat.holds, Holds::Yes, "{}", flat.summary);
    assert!(flat.summary.contains("green: echo"), "{}", flat.summary);
    assert!(
        flat.summary.contains(
            "1000→1500 req/s (×1.50), CPU/req 10.0→10.5 µs, sleeps/req 0.050→0.250, \
             server on 0.01→0.02 CPUs"
        ),
        "{}",
        flat.summary
    );
    assert_eq!(s1_evaluate(&s1(12_000.0)).holds, Holds::No);
    let mut no_cpu = s1(10_000.0);
    no_cpu[1].server_sys_ns_per_req = None;
    assert_eq!(s1_evaluate(&no_cpu).holds, Holds::Unknown);
    assert_eq!(s1_evaluate(&[]).holds, Holds::Unknown);
    let mut missing = s1(10_000.0);
    missing
        .retain(|r| !(r.runtime == "tokio" && r.service == "sleep" && r.get("cores") == Some(2.0)));
    assert_eq!(s1_evaluate(&missing).holds, Holds::Unknown);
}

#[test]
fn s1_averages_the_rounds_of_each_pair() {
    // A second round on 2 cores at 13 µs: the mean, 11.5 µs, is 15% up.
    let second = |ns: f64| {
        let mut runs = s1(10_000.0);
        let again: Vec<Run> = s1(ns).into_iter().filter(|r| r.get("cores") == Some(2.0)).collect();
        runs.extend(again);
        runs
    };
    let up = s1_evaluate(&second(13_000.0));
    assert_eq!(up.holds, Holds::No, "{}", up.summary);
    assert!(up.summary.contains("CPU/req 10.0→11.5 µs"), "{}", up.summary);
    assert_eq!(s1_evaluate(&second(11_000.0)).holds, Holds::Yes);
}

#[test]
fn c9_holds_when_only_the_unpatched_cell_serves_one_at_a_time() {
    let runs = |unpatched: f64, patched: f64| {
        vec![
            slept(run("C9", "green-std-blocking-sleep", 10, unpatched, 500.0), 100.0),
            slept(run("C9", "green-patched-blocking-sleep", 10, patched, 101.0), 100.0),
            slept(run("C9", "stackless-async-sleep", 10, 98.0, 101.0), 100.0),
        ]
    };
    assert_eq!(c9_evaluate(&runs(10.0, 97.0)).holds, Holds::Yes);
    assert_eq!(c9_evaluate(&runs(10.0, 10.0)).holds, Holds::Partly);
    assert_eq!(c9_evaluate(&runs(95.0, 97.0)).holds, Holds::Partly);
    assert_eq!(c9_evaluate(&runs(10.0, 97.0)[1..]).holds, Holds::Unknown);
}

//! Unit tests of the claim evaluations on synthetic runs: each claim holds
//! on numbers that bear it out, and fails on numbers that contradict it.

use std::time::Duration;

use super::rounds::ROUND;
use super::*;
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
    r.seconds = 1.0;
    r.requests = req_per_s.ceil() as u64;
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
    let v = judge_sleep_queue(&c1(40.0, 700.0, 990.0));
    assert_eq!(v.holds, Holds::Yes, "{}", v.summary);
    assert!(v.summary.contains("pool W=4 40.0 req/s"), "{}", v.summary);
}

#[test]
fn c1_fails_when_the_pool_keeps_up() {
    // A pool answering ≈ 100 req/s at one sleep is not queueing.
    let v = judge_sleep_queue(&c1(100.0 * 10.0, 101.0, 990.0));
    assert_eq!(v.holds, Holds::No, "{}", v.summary);
    let v = judge_sleep_queue(&c1(100.0, 101.0, 990.0));
    assert_eq!(v.holds, Holds::No, "{}", v.summary);
}

#[test]
fn c1_is_partly_when_one_runtime_also_queues() {
    let v = judge_sleep_queue(&c1(40.0, 700.0, 300.0));
    assert_eq!(v.holds, Holds::Partly, "{}", v.summary);
    assert!(v.summary.contains("(not at once)"), "{}", v.summary);
}

#[test]
fn c1_without_runs_is_unknown() {
    assert_eq!(judge_sleep_queue(&[]).holds, Holds::Unknown);
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
        WaitKind::ALL
            .iter()
            .flat_map(|k| c2(k.runtime().name(), &k.style().to_string(), 201.0, conc))
            .collect()
    };
    assert_eq!(judge_two_tasks(&all(101.0)).holds, Holds::Yes);
    // Concurrent waits that take as long as sequential ones: no.
    assert_eq!(judge_two_tasks(&all(201.0)).holds, Holds::No);
    let mut some = all(101.0);
    some.extend(c2("green", "blocking", 201.0, 200.0));
    some.retain(|r| {
        !(r.runtime == "green" && r.style == "blocking" && r.get("elapsed_ms") == Some(101.0))
    });
    assert_eq!(judge_two_tasks(&some).holds, Holds::Partly);
}

/// C3's runs: inline at `inline` req/s, pool and green at `rescued`.
fn c3(inline: f64, rescued: f64) -> Vec<Run> {
    vec![
        slept(run("C3", "stackless-blocking-sleep-inline", 10, inline, 700.0), 100.0),
        slept(run("C3", "stackless-blocking-sleep-pool", 10, rescued, 101.0), 100.0),
        slept(run("C3", "green-blocking-sleep", 10, rescued, 101.0), 100.0),
    ]
}

#[test]
fn c3_inline_must_serialize() {
    assert_eq!(judge_blocking_in_async(&c3(10.0, 100.0)).holds, Holds::Yes);
    assert_eq!(judge_blocking_in_async(&c3(100.0, 100.0)).holds, Holds::Partly);
    assert_eq!(judge_blocking_in_async(&c3(100.0, 10.0)).holds, Holds::No);
}

/// C4's runs at 4, 8, 16 conns: 40 req/s, then `big`.
fn c4(big: f64) -> Vec<Run> {
    let spec = "stackless-blocking-sleep-pool-w4";
    vec![
        slept(run("C4", spec, 4, 40.0, 100.0), 100.0),
        slept(run("C4", spec, 8, big, 200.0), 100.0),
        slept(run("C4", spec, 16, big, 400.0), 100.0),
    ]
}

#[test]
fn c4_pool_helps_then_queues() {
    let spec = "stackless-blocking-sleep-pool-w4";
    assert_eq!(judge_offload_rescues(&c4(40.0)).holds, Holds::Yes);
    // 160 req/s through a pool of 4 at 100 ms: it did not queue.
    assert_eq!(judge_offload_rescues(&c4(160.0)).holds, Holds::Partly);
    let none = vec![slept(run("C4", spec, 4, 5.0, 800.0), 100.0)];
    assert_eq!(judge_offload_rescues(&none).holds, Holds::No);
}

/// C5's runs: threads at 190 req/s, green and stackless as given.
fn c5(green: f64, stackless: f64) -> Vec<Run> {
    vec![
        run("C5", "threads-blocking-sleep", 8, 190.0, 40.0),
        run("C5", "green-blocking-sleep", 8, green, 40.0),
        run("C5", "stackless-async-sleep", 8, stackless, 40.0),
    ]
}

#[test]
fn c5_green_gaining_on_cpu_work_fails_it() {
    assert_eq!(judge_cpu_bound(&c5(185.0, 180.0)).holds, Holds::Yes);
    assert_eq!(judge_cpu_bound(&c5(400.0, 180.0)).holds, Holds::Partly);
    assert_eq!(judge_cpu_bound(&c5(400.0, 400.0)).holds, Holds::No);
}

/// C6's sweep at 1, 100 and 1000 conns: threads, green, stackless,
/// tokio's req/s at each.
fn sweep(at_one: [f64; 4], at_mid: [f64; 4], at_top: [f64; 4]) -> Vec<Run> {
    let mut runs = Vec::new();
    for (conns, rates) in [(1, at_one), (100, at_mid), (1000, at_top)] {
        for (spec, rate) in sweep::C6_CELLS.iter().zip(rates) {
            runs.push(slept(run("C6", spec, conns, rate, 100.0), 100.0));
        }
    }
    runs
}

#[test]
fn c6_finds_the_threshold_where_green_and_stackless_pull_ahead() {
    let mid = [1000.0, 990.0, 995.0, 990.0];
    let v = judge_concurrency_threshold(&sweep([10.0; 4], mid, [2000.0, 9000.0, 9500.0, 9400.0]));
    assert_eq!(v.holds, Holds::Yes, "{}", v.summary);
    assert!(v.summary.contains("threshold: 1000 conns"), "{}", v.summary);
    let ahead = [500.0, 990.0, 995.0, 990.0];
    let v = judge_concurrency_threshold(&sweep([10.0; 4], ahead, [2000.0, 9000.0, 9500.0, 9400.0]));
    assert!(v.summary.contains("threshold: 100 conns"), "{}", v.summary);
    let none = [5800.0, 4200.0, 4000.0, 4100.0];
    let v = judge_concurrency_threshold(&sweep([10.0; 4], mid, none));
    assert_eq!(v.holds, Holds::Partly, "{}", v.summary);
    assert!(v.summary.contains("no threshold up to 1000 conns"), "{}", v.summary);
    let v = judge_concurrency_threshold(&sweep([5.0, 10.0, 10.0, 10.0], mid, none));
    assert_eq!(v.holds, Holds::No, "{}", v.summary);
}

#[test]
fn c6_leaves_out_a_step_where_a_runtime_served_nothing_and_says_so() {
    let mid = [500.0, 990.0, 995.0, 990.0];
    let mut runs = sweep([10.0; 4], mid, [0.0, 9000.0, 9500.0, 9400.0]);
    let v = judge_concurrency_threshold(&runs);
    assert_eq!(v.holds, Holds::Yes, "{}", v.summary);
    assert!(v.summary.contains("threshold: 100 conns"), "{}", v.summary);
    assert!(
        v.summary
            .contains("1000 conns left out: run threads-blocking-sleep at 1000 conns served no"),
        "{}",
        v.summary
    );
    // Not at the fewest connections, and not with one step left.
    runs[0].requests = 0;
    assert_eq!(judge_concurrency_threshold(&runs).holds, Holds::Unknown);
    let two = sweep([10.0; 4], [0.0, 990.0, 995.0, 990.0], [0.0, 9000.0, 9500.0, 9400.0]);
    let v = judge_concurrency_threshold(&two);
    assert_eq!(v.holds, Holds::Unknown, "{}", v.summary);
    assert!(v.summary.starts_with("only 1 conns served"), "{}", v.summary);
}

/// C7's runs: green at `green` req/s, stackless at 9000.
fn c7(green: f64) -> Vec<Run> {
    vec![
        run("C7", "green-blocking-sleep", 1000, green, 100.0),
        run("C7", "stackless-async-sleep", 1000, 9000.0, 100.0),
    ]
}

#[test]
fn c7_same_within_five_percent() {
    assert_eq!(judge_green_for_blocking_code(&c7(8800.0)).holds, Holds::Yes);
    assert_eq!(judge_green_for_blocking_code(&c7(8000.0)).holds, Holds::Partly);
    assert_eq!(judge_green_for_blocking_code(&c7(4000.0)).holds, Holds::No);
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
    assert_eq!(judge_memory(&c8(40.0, 30_000.0)).holds, Holds::Yes);
    assert_eq!(judge_memory(&c8(10.0, 30_000.0)).holds, Holds::Partly);
    assert_eq!(judge_memory(&c8(10.0, 300.0)).holds, Holds::No);
}

/// E1's runs: threads at 8 µs CPU per message, the others at `green_ns`.
fn e1(green_ns: f64) -> Vec<Run> {
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
        .collect()
}

#[test]
fn e1_cpu_per_message() {
    assert_eq!(judge_echo_cpu(&e1(4000.0)).holds, Holds::Yes);
    assert_eq!(judge_echo_cpu(&e1(9000.0)).holds, Holds::No);
    let mut no_cpu = e1(4000.0);
    no_cpu[0].server_user_ns_per_req = None;
    assert_eq!(judge_echo_cpu(&no_cpu).holds, Holds::Unknown);
}

/// E1 in rounds: round `k` runs threads at `threads_ns[k]` and every
/// other cell at `others_ns[k]` server CPU per message.
fn e1_rounds(threads_ns: &[f64], others_ns: &[f64]) -> Vec<Run> {
    let mut runs = Vec::new();
    for (round, (&t, &o)) in threads_ns.iter().zip(others_ns).enumerate() {
        for mut r in e1(o) {
            if r.cell == cpu::E1_CELLS[0] {
                (r.server_user_ns_per_req, r.server_sys_ns_per_req) = (Some(t), Some(0.0));
            }
            r.extra.insert(ROUND.into(), round as f64);
            runs.push(r);
        }
    }
    runs
}

#[test]
fn e1_compares_cells_within_a_round() {
    // The host runs 1.4× slower in rounds 1 and 2, and its speed changes
    // inside round 3 (threads measured fast, the others slow): cells of
    // one round compare at 0.8×, and the median outvotes round 3.
    let threads = [7900.0, 11_060.0, 11_060.0, 7900.0, 7900.0];
    let others = [6320.0, 8850.0, 8850.0, 8000.0, 6320.0];
    let v = judge_echo_cpu(&e1_rounds(&threads, &others));
    assert_eq!(v.holds, Holds::Yes, "{}", v.summary);
    assert!(v.summary.starts_with("median of 5 rounds: threads"), "{}", v.summary);
    assert!(v.summary.contains("µs = 0.80×"), "{}", v.summary);
    // A cell at 0.95× the threads of its round does not hold, whatever
    // the round's speed.
    let close: Vec<f64> = threads.iter().map(|t| t * 0.95).collect();
    assert_eq!(judge_echo_cpu(&e1_rounds(&threads, &close)).holds, Holds::No);
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
    assert_eq!(total_steps(&only), WaitKind::ALL.len() as u64);
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
    for field in crate::lab::RUN_FIELDS {
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

/// S1's runs on 1, 2 and 4 cores: each runtime's req/s on N cores is
/// `1000 × N × efficiency`.
fn s1(efficiency: f64) -> Vec<Run> {
    let mut runs = Vec::new();
    for spec in ["green-blocking", "stackless-async", "tokio-async"] {
        for service in ["echo", "sleep"] {
            for cores in [1usize, 2, 4] {
                let suffix = match (cores, spec) {
                    (1, _) => String::new(),
                    (n, "tokio-async") => format!("-w{n}"),
                    (n, _) => format!("-c{n}"),
                };
                let e = if cores == 1 { 1.0 } else { efficiency };
                let rate = 1000.0 * cores as f64 * e;
                let mut r = run("S1", &format!("{spec}-{service}{suffix}"), 200, rate, 1.0);
                r.service = service.into();
                r.extra.insert("cores".into(), cores as f64);
                runs.push(r);
            }
        }
    }
    runs
}

#[test]
fn s1_holds_when_throughput_scales_with_cores() {
    let v = judge_multicore(&s1(0.9));
    assert_eq!(v.holds, Holds::Yes, "{}", v.summary);
    assert!(v.summary.contains("green: echo 1000 req/s on 1, 2: ×1.80 4: ×3.60"), "{}", v.summary);
    assert_eq!(judge_multicore(&s1(0.5)).holds, Holds::No);
    let mut missing = s1(0.9);
    missing.retain(|r| !(r.runtime == "tokio" && r.get("cores") == Some(2.0)));
    assert_eq!(judge_multicore(&missing).holds, Holds::Unknown);
}

#[test]
fn s1_without_four_cpus_is_unknown_and_says_why() {
    let v = judge_multicore(&[]);
    assert_eq!(v.holds, Holds::Unknown);
    assert!(v.summary.contains("needs ≥ 4 allowed CPUs"), "{}", v.summary);
}

// ------------------------------------------------ verdicts only from service

/// A set of runs on which `claim` holds (its own tests above show the
/// contrasts); every claim has one.
fn holding(claim: ClaimId) -> Vec<Run> {
    match claim {
        ClaimId::C1 => c1(40.0, 700.0, 990.0),
        ClaimId::C2 => WaitKind::ALL
            .iter()
            .flat_map(|k| c2(k.runtime().name(), &k.style().to_string(), 201.0, 101.0))
            .collect(),
        ClaimId::C3 => c3(10.0, 100.0),
        ClaimId::C4 => c4(40.0),
        ClaimId::C5 => c5(185.0, 180.0),
        ClaimId::C6 => {
            sweep([10.0; 4], [1000.0, 990.0, 995.0, 990.0], [2000.0, 9000.0, 9500.0, 9400.0])
        }
        ClaimId::C7 => c7(8800.0),
        ClaimId::C8 => c8(40.0, 30_000.0),
        ClaimId::C9 => c9(10.0, 97.0),
        ClaimId::E1 => e1(4000.0),
        ClaimId::S1 => s1(0.9),
    }
}

/// `runs` with the `i`th load run (or figure) spoiled by `spoil`.
fn spoiled(mut runs: Vec<Run>, i: usize, spoil: fn(&mut Run)) -> Vec<Run> {
    spoil(&mut runs[i]);
    runs
}

/// Nothing served: zero requests, zero rates, zero latencies (and, for
/// the figures of C2 and C8, zero times and memory).
fn zero(r: &mut Run) {
    r.requests = 0;
    r.req_per_s = 0.0;
    (r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms) = (0.0, 0.0, 0.0, 0.0);
    for figure in ["elapsed_ms", "rss_kib_per_conn", "ns_per_op"] {
        if let Some(x) = r.extra.get_mut(figure) {
            *x = 0.0;
        }
    }
}

/// Every request failed: no success, a hundred errors.
fn all_errors(r: &mut Run) {
    zero(r);
    r.errors = 100;
    r.first_error = Some("HTTP status 500".into());
}

/// Served, but 5% of the attempts failed.
fn some_errors(r: &mut Run) {
    r.errors = (r.requests / 19).max(1);
}

/// The rows an evaluation must see served: load runs, C2's waits, C8's
/// idle connections and spawn costs.
fn judged_rows(claim: ClaimId, runs: &[Run]) -> Vec<usize> {
    (0..runs.len())
        .filter(|&i| match claim {
            ClaimId::C8 => runs[i].variant.as_deref() != Some("switch"),
            _ => true,
        })
        .collect()
}

#[test]
fn every_claim_holds_on_its_own_good_runs() {
    for claim in ClaimId::ALL {
        let v = (claim.claim().evaluate)(&holding(claim));
        assert_eq!(v.holds, Holds::Yes, "{claim}: {}", v.summary);
    }
}

/// Whether `v` refuses to judge `run`: `unknown`, or (C6, above its
/// fewest connections) its step left out, naming the run.
fn refused(claim: ClaimId, v: &Verdict, run: &Run) -> bool {
    let left_out = format!("{} conns left out: run {} at", run.conns, run.cell);
    v.holds == Holds::Unknown || (claim == ClaimId::C6 && v.summary.contains(&left_out))
}

#[test]
fn every_claim_is_unknown_when_a_run_served_nothing() {
    for claim in ClaimId::ALL {
        let good = holding(claim);
        for i in judged_rows(claim, &good) {
            for (what, spoil) in [("zero", zero as fn(&mut Run)), ("all-errors", all_errors)] {
                let runs = spoiled(good.clone(), i, spoil);
                let v = (claim.claim().evaluate)(&runs);
                assert!(
                    refused(claim, &v, &runs[i]),
                    "{claim}, {what} run {}: {}",
                    runs[i].cell,
                    v.summary
                );
            }
        }
    }
}

#[test]
fn load_claims_name_the_run_that_did_not_serve() {
    for claim in ClaimId::ALL.into_iter().filter(|c| !matches!(c, ClaimId::C2 | ClaimId::C8)) {
        let good = holding(claim);
        let last = good.len() - 1;
        let v = (claim.claim().evaluate)(&spoiled(good.clone(), last, all_errors));
        let cell = &good[last].cell;
        assert!(v.summary.contains(&format!("run {cell} at")), "{claim}: {}", v.summary);
        assert!(v.summary.contains("HTTP status 500"), "{claim}: {}", v.summary);
        let v = (claim.claim().evaluate)(&spoiled(good.clone(), last, some_errors));
        assert!(refused(claim, &v, &good[last]), "{claim}, 5% errors: {}", v.summary);
        assert!(v.summary.contains("attempts failed"), "{claim}: {}", v.summary);
    }
}

#[test]
fn unfinished_requests_count_only_where_queueing_is_not_the_finding() {
    let mut r = run("E1", "green-blocking-echo", 100, 1000.0, 1.0);
    assert_eq!(unserved_reason(&r, Queueing::NotJudged), None);
    r.unfinished = 5;
    assert_eq!(unserved_reason(&r, Queueing::NotJudged), None, "5% is the bound");
    r.unfinished = 6;
    assert!(unserved_reason(&r, Queueing::NotJudged).unwrap().contains("6 of 100 conns"));
    assert_eq!(unserved_reason(&r, Queueing::Judged), None, "a queue is C1's finding");
    r.unfinished = 0;
    r.idle_conns = 50;
    assert!(unserved_reason(&r, Queueing::NotJudged).unwrap().contains("idle"));
    // E1 judges with NotJudged: a run with most connections idle is unknown.
    let mut runs = e1(4000.0);
    runs[2].idle_conns = 40;
    assert_eq!(judge_echo_cpu(&runs).holds, Holds::Unknown);
}

#[test]
fn c2_sequential_has_an_upper_bound_and_a_floor() {
    let all = |seq: f64, conc: f64| -> Vec<Run> {
        WaitKind::ALL
            .iter()
            .flat_map(|k| c2(k.runtime().name(), &k.style().to_string(), seq, conc))
            .collect()
    };
    assert_eq!(judge_two_tasks(&all(201.0, 101.0)).holds, Holds::Yes);
    // Three waits in sequence is not "2×".
    let v = judge_two_tasks(&all(300.0, 101.0));
    assert_eq!(v.holds, Holds::No, "{}", v.summary);
    // Waits shorter than the wait asked for did not wait.
    let v = judge_two_tasks(&all(201.0, 50.0));
    assert_eq!(v.holds, Holds::Unknown, "{}", v.summary);
}

/// A criterion result `group/bench` under `dir`, its estimates file last
/// modified at `when`.
fn criterion_file(dir: &std::path::Path, group: &str, bench: &str, when: std::time::SystemTime) {
    let new = dir.join(group).join(bench).join("new");
    std::fs::create_dir_all(&new).unwrap();
    let path = new.join("estimates.json");
    std::fs::write(&path, r#"{"mean": {"point_estimate": 250.0}}"#).unwrap();
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
}

#[test]
fn c8_reads_criterion_only_when_newer_than_the_build_and_says_how_old() {
    use std::time::SystemTime;
    let dir = std::env::temp_dir().join(format!("greenloop-c8-criterion-{}", std::process::id()));
    let hour = Duration::from_secs(3600);
    let now = SystemTime::now();
    criterion_file(&dir, "spawn_join", "green", now - hour);
    criterion_file(&dir, "spawn_join", "stale", now - 30 * hour);
    std::fs::create_dir_all(dir.join("yield/broken/new")).unwrap();
    std::fs::write(dir.join("yield/broken/new/estimates.json"), "{").unwrap();
    let built = Some(now - 2 * hour);

    let (ns, age) = criterion_ns(Some(&dir), "spawn_join", "green", built).unwrap();
    assert_eq!(ns, 250.0);
    assert!(age >= hour && age < 2 * hour, "{age:?}");
    let stale = criterion_ns(Some(&dir), "spawn_join", "stale", built).unwrap_err();
    assert!(stale.contains("older than the lab binary"), "{stale}");
    let broken = criterion_ns(Some(&dir), "yield", "broken", built).unwrap_err();
    assert!(broken.contains("estimates.json"), "{broken}");
    let absent = criterion_ns(Some(&dir), "yield", "green", built).unwrap_err();
    assert_eq!(absent, "no criterion result");
    assert_eq!(criterion_ns(None, "yield", "green", built).unwrap_err(), "no criterion directory");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn c8_lists_where_each_cost_came_from() {
    let mut runs = c8(40.0, 30_000.0);
    for r in &mut runs {
        if r.variant.as_deref() == Some("spawn_join") {
            r.note = Some(format!("criterion spawn_join/{}, 3.0 h old", r.runtime));
        }
    }
    let v = judge_memory(&runs);
    assert!(
        v.summary.contains("green spawn_join: criterion spawn_join/green, 3.0 h old"),
        "{}",
        v.summary
    );
    for r in &mut runs {
        r.note = Some("inline (no criterion result)".into());
    }
    let v = judge_memory(&runs);
    assert!(
        v.summary.contains(
            "sources: threads spawn_join, green spawn_join, stackless spawn_join: inline (no \
             criterion result); parked green threads: not measured"
        ),
        "{}",
        v.summary
    );
}

#[test]
fn c8_reads_hello_greens_line() {
    let out = "10 green threads ...\nhello_green: threads=10 stack_kib=16 ok=true live_peak=11 \
               rss_per_thread_kib=4.63 cold_spawn_cpu_median_ns=1571\n";
    let fields = parked::parse(out);
    assert!(fields.contains(&("ok".into(), "true".into())), "{fields:?}");
    assert!(fields.contains(&("rss_per_thread_kib".into(), "4.63".into())), "{fields:?}");
    assert_eq!(fields.len(), 6);
    assert!(parked::parse("no such line\n").is_empty());
}

#[test]
fn c8_quotes_parked_green_threads_without_judging_them() {
    let runs = c8(40.0, 30_000.0);
    let without = judge_memory(&runs);
    assert!(without.summary.ends_with("(`cargo build --release --example hello_green` first)"));

    let mut parked = Run::figure("C8_memory", "green", "blocking", parked::PARKED);
    parked.extra.insert("rss_kib_per_thread".into(), 4.63);
    parked.extra.insert("live_threads".into(), 10_001.0);
    parked.extra.insert("capacity".into(), 2_000_000.0);
    parked.extra.insert("mem_available_kib".into(), 2.0 * 1024.0 * 1024.0 * 4.63);
    let with = judge_memory(&[runs.clone(), vec![parked.clone()]].concat());
    assert_eq!(with.holds, without.holds);
    assert!(
        with.summary.ends_with(
            "parked green thread 4.63 KiB RSS (10001 live, 16 KiB stacks, hello_green), so \
             ~2000000 fit in the 9.26 GiB available"
        ),
        "{}",
        with.summary
    );

    let mut failed = Run::figure("C8_memory", "green", "blocking", parked::PARKED);
    failed.note = Some("hello_green failed (ok=false, 31000 threads live)".into());
    let v = judge_memory(&[runs, vec![failed]].concat());
    assert_eq!(v.holds, without.holds);
    assert!(
        v.summary
            .ends_with("parked green threads: hello_green failed (ok=false, 31000 threads live)")
    );
}

#[test]
fn typed_names_cover_every_runtime() {
    let names: Vec<&str> = CostRuntime::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(names, ["threads", "green", "stackless"]);
    assert_eq!([Cost::SpawnJoin.variant(), Cost::Switch.variant()], ["spawn_join", "switch"]);
    for kind in WaitKind::ALL {
        assert_ne!(kind.runtime(), crate::lab::CellRuntime::Threads);
    }
}

#[test]
fn c9_holds_when_only_the_unpatched_cell_serves_one_at_a_time() {
    assert_eq!(judge_patched_blocking_code(&c9(10.0, 97.0)).holds, Holds::Yes);
    assert_eq!(judge_patched_blocking_code(&c9(10.0, 10.0)).holds, Holds::Partly);
    assert_eq!(judge_patched_blocking_code(&c9(95.0, 97.0)).holds, Holds::Partly);
    assert_eq!(judge_patched_blocking_code(&c9(10.0, 97.0)[1..]).holds, Holds::Unknown);
}

/// C9's runs: the std-only handler unpatched and patched, and async, 10
/// connections sleeping 100 ms each.
fn c9(unpatched: f64, patched: f64) -> Vec<Run> {
    vec![
        slept(run("C9", "green-std-blocking-sleep", 10, unpatched, 500.0), 100.0),
        slept(run("C9", "green-patched-blocking-sleep", 10, patched, 101.0), 100.0),
        slept(run("C9", "stackless-async-sleep", 10, 98.0, 101.0), 100.0),
    ]
}

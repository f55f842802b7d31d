//! The lab's report: [`Report`] (machine, verdicts, runs), written as a
//! terminal table, `report.json` and `report.md`.
//!
//! `report.json` has exactly three keys:
//!
//! ```text
//! {"machine": {"cpus", "cpu_model", "kernel", "nofile_soft", "nofile_hard", "pinned", "scale", ...},
//!  "claims":  [{"id", "holds", "summary", "measured"}],
//!  "runs":    [{"claim", "runtime", "style", "offload", "conns", "req_per_s", "p50_ms", "p99_ms",
//!               "errors", "server_user_ns_per_req", "server_sys_ns_per_req", "rss_kib", ...}]}
//! ```

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::claims::{Holds, Options};
use super::measure::Run;
use super::{affinity, rlimit};

/// The machine the lab ran on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// CPUs this process may run on.
    pub cpus: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// The kernel release (`/proc/sys/kernel/osrelease`).
    pub kernel: String,
    /// The open-file limit after raising it: soft.
    pub nofile_soft: u64,
    /// The open-file limit: hard.
    pub nofile_hard: u64,
    /// Whether the server runs pinned to its own CPU, the client on the others.
    pub pinned: bool,
    /// The scale in force (1 with `--full`).
    pub scale: f64,
    /// Whether `--full` was given.
    pub full: bool,
    /// Warm-up before each measured window, seconds.
    pub warmup_s: f64,
    /// Each measured window, seconds.
    pub window_s: f64,
    /// Wall time of the whole run, seconds.
    pub wall_s: f64,
    /// The 1-minute load average when the run started (`/proc/loadavg`):
    /// other work on the machine makes the numbers noisier.
    #[serde(default)]
    pub load_avg: f64,
}

impl Machine {
    /// Reads this machine's facts; `wall_s` starts at 0.
    pub fn probe(opts: &Options) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".into(), |(_, m)| m.trim().to_string());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".into(), |k| k.trim().to_string());
        let (nofile_soft, nofile_hard) = rlimit::nofile_limit().unwrap_or((0, 0));
        Machine {
            cpus: affinity::allowed_cpus().map_or(1, <[usize]>::len),
            cpu_model,
            kernel,
            nofile_soft,
            nofile_hard,
            pinned: affinity::plan().is_some(),
            scale: opts.effective_scale(),
            full: opts.full,
            warmup_s: opts.warmup().as_secs_f64(),
            window_s: opts.window().as_secs_f64(),
            wall_s: 0.0,
            load_avg: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|l| l.split_whitespace().next()?.parse().ok())
                .unwrap_or(0.0),
        }
    }
}

/// One claim's line of the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimReport {
    /// The fixed id, e.g. `C1_sleep_queue`.
    pub id: String,
    /// Whether it holds.
    pub holds: Holds,
    /// Why, with the numbers.
    pub summary: String,
    /// What was measured.
    pub measured: String,
    /// The thresholds the verdict was computed with.
    #[serde(default)]
    pub thresholds: String,
    /// Wall time of its measurements, seconds.
    #[serde(default)]
    pub seconds: f64,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// One line per claim run.
    pub claims: Vec<ClaimReport>,
    /// Every run.
    pub runs: Vec<Run>,
}

impl Report {
    /// The JSON of `report.json`.
    ///
    /// # Errors
    ///
    /// Serialization errors (none are expected).
    pub fn to_json(&self) -> io::Result<String> {
        serde_json::to_string_pretty(self).map_err(io::Error::other)
    }

    /// The terminal table: claim, what was measured, holds, why.
    pub fn table(&self) -> String {
        let id_w = self.claims.iter().map(|c| c.id.len()).max().unwrap_or(5).max(5);
        let what_w = self.claims.iter().map(|c| c.measured.chars().count()).max().unwrap_or(8);
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.header_line());
        let _ = writeln!(out, "{:id_w$}  {:what_w$}  {:7}  why", "claim", "measured", "holds");
        let _ = writeln!(out, "{}", "-".repeat(id_w + what_w + 20));
        for c in &self.claims {
            let _ = writeln!(
                out,
                "{:id_w$}  {:what_w$}  {:7}  {}",
                c.id,
                c.measured,
                c.holds.to_string(),
                c.summary
            );
        }
        let holding = self.claims.iter().filter(|c| c.holds == Holds::Yes).count();
        let _ = writeln!(
            out,
            "{holding} of {} claims hold; {} runs, {} request errors; wall time {:.1} s",
            self.claims.len(),
            self.runs.len(),
            self.runs.iter().map(|r| r.errors).sum::<u64>(),
            self.machine.wall_s
        );
        out
    }

    fn header_line(&self) -> String {
        let m = &self.machine;
        format!(
            "greenloop lab: {} CPUs ({}), Linux {}, RLIMIT_NOFILE {}/{}, {}, load {:.2}; \
             scale {}{} (warm-up {:.2} s + window {:.2} s per run)",
            m.cpus,
            m.cpu_model,
            m.kernel,
            m.nofile_soft,
            m.nofile_hard,
            if m.pinned { "server pinned to CPU 0" } else { "not pinned" },
            m.load_avg,
            m.scale,
            if m.full { " (--full)" } else { "" },
            m.warmup_s,
            m.window_s
        )
    }

    /// `report.md`: the table, then every run.
    pub fn markdown(&self) -> String {
        let mut out = String::from("# greenloop lab report\n\n");
        let _ = writeln!(out, "{}\n", self.header_line());
        out.push_str("| claim | measured | holds | why | thresholds |\n|---|---|---|---|---|\n");
        for c in &self.claims {
            let _ = writeln!(
                out,
                "| `{}` | {} | **{}** | {} | {} |",
                c.id, c.measured, c.holds, c.summary, c.thresholds
            );
        }
        out.push_str(
            "\n## Runs\n\n| claim | cell | variant | conns | req/s | p50 ms | p99 ms | errors | \
             user µs/req | sys µs/req | RSS KiB | extra |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        let opt = |x: Option<f64>| x.map_or_else(|| "-".into(), |v| format!("{:.1}", v / 1e3));
        for r in &self.runs {
            let extra: Vec<String> = r.extra.iter().map(|(k, v)| format!("{k}={v:.2}")).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.1} | {:.2} | {:.2} | {} | {} | {} | {} | {}{} |",
                r.claim,
                r.cell,
                r.variant.as_deref().unwrap_or(""),
                r.conns,
                r.req_per_s,
                r.p50_ms,
                r.p99_ms,
                r.errors,
                opt(r.server_user_ns_per_req),
                opt(r.server_sys_ns_per_req),
                r.rss_kib.map_or_else(|| "-".into(), |k| k.to_string()),
                extra.join(" "),
                r.note.as_ref().map_or_else(String::new, |n| format!(" ({n})")),
            );
        }
        out
    }

    /// Writes `report.json` and `report.md` into `dir` (created if
    /// needed); returns their paths.
    ///
    /// # Errors
    ///
    /// When the directory or a file cannot be written.
    pub fn write(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
        })?;
        let json = dir.join("report.json");
        let md = dir.join("report.md");
        for (path, text) in [(&json, self.to_json()?), (&md, self.markdown())] {
            std::fs::write(path, text).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
            })?;
        }
        Ok(vec![json, md])
    }
}

//! criterion's results on disk, read back as one table.
//!
//! `cargo bench` leaves, for each benchmark `group/impl`, two files in
//! `target/criterion/<group>/<impl>/new/`: `estimates.json` (the last
//! run's statistics) and `benchmark.json` (its id and throughput); `base/`
//! beside it holds the run before, which is ignored here. A cell is
//! criterion's **mean** time per iteration (the figure the lab's C8 reads
//! too), divided by the throughput's element count where the group
//! declares one: a `timer_fire_10k` iteration fires 10,000 timers, so its
//! cell is per timer. [`Table::to_markdown`] writes rows = groups,
//! columns = impls, each cell with its ratio to tokio's in the same row;
//! `cargo run --release --example bench_table` prints it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// The suite's groups, in the order the table lists them; any other
/// group found follows, by name.
pub const GROUPS: [&str; 10] = [
    "context_switch",
    "spawn_join",
    "yield",
    "channel_roundtrip",
    "mutex_uncontended",
    "timer_arm_cancel",
    "timer_fire_10k",
    "wake_remote",
    "io_echo_roundtrip",
    "spawn_many_10k",
];

/// The impls, in column order; any other (`raw`, `std`) follows, by name.
pub const IMPLS: [&str; 5] = ["green", "stackless", "may", "tokio", "thread"];

/// The impl every row is compared with.
pub const BASELINE: &str = "tokio";

/// One benchmark's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// criterion's mean time per iteration, ns.
    pub ns_per_iter: f64,
    /// Operations per iteration (criterion's `Throughput::Elements`), if
    /// the group declares them.
    pub elements: Option<u64>,
}

impl Estimate {
    /// Time per operation, ns: per iteration, divided by the elements.
    pub fn ns_per_op(&self) -> f64 {
        match self.elements {
            Some(n) if n > 0 => self.ns_per_iter / n as f64,
            _ => self.ns_per_iter,
        }
    }
}

/// Reads `dir/<group>/<bench>/new/`: `Ok(None)` when it holds no
/// `estimates.json` (never run), an error when a file is unreadable or
/// not criterion's JSON.
pub fn read_estimate(dir: &Path, group: &str, bench: &str) -> io::Result<Option<Estimate>> {
    let new = dir.join(group).join(bench).join("new");
    let estimates = new.join("estimates.json");
    if !estimates.is_file() {
        return Ok(None);
    }
    let json = read_json(&estimates)?;
    let Some(ns_per_iter) = json["mean"]["point_estimate"].as_f64() else {
        return Err(invalid(&estimates, "no mean.point_estimate"));
    };
    let benchmark = new.join("benchmark.json");
    let elements = if benchmark.is_file() {
        read_json(&benchmark)?["throughput"]["Elements"].as_u64()
    } else {
        None
    };
    Ok(Some(Estimate { ns_per_iter, elements }))
}

fn read_json(path: &Path) -> io::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| invalid(path, &e.to_string()))
}

fn invalid(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{}: not criterion's JSON ({why}); delete it or re-run `cargo bench`",
            path.display()
        ),
    )
}

/// Every result under a criterion directory, by group then impl.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    cells: BTreeMap<String, BTreeMap<String, Estimate>>,
}

impl Table {
    /// Reads every `<group>/<impl>/new/estimates.json` under `dir`
    /// (usually `target/criterion`).
    ///
    /// # Errors
    ///
    /// `NotFound` when `dir` does not exist (run `cargo bench` first);
    /// any file that cannot be read or parsed, named.
    pub fn read(dir: &Path) -> io::Result<Table> {
        let listing = |d: &Path| -> io::Result<Vec<String>> {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(d)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", d.display())))?
            {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    names.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
            Ok(names)
        };
        let mut table = Table::default();
        for group in listing(dir)? {
            for bench in listing(&dir.join(&group))? {
                if let Some(estimate) = read_estimate(dir, &group, &bench)? {
                    table.insert(&group, &bench, estimate);
                }
            }
        }
        Ok(table)
    }

    /// Adds or replaces one cell.
    pub fn insert(&mut self, group: &str, bench: &str, estimate: Estimate) {
        self.cells.entry(group.into()).or_default().insert(bench.into(), estimate);
    }

    /// The result of `group/bench`, if any.
    pub fn get(&self, group: &str, bench: &str) -> Option<&Estimate> {
        self.cells.get(group)?.get(bench)
    }

    /// Whether no result was found.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The groups present: [`GROUPS`] order, then the others by name.
    pub fn groups(&self) -> Vec<&str> {
        ordered(self.cells.keys().map(String::as_str), &GROUPS)
    }

    /// The impls present in any group: [`IMPLS`] order, then the others.
    pub fn impls(&self) -> Vec<&str> {
        let mut all: Vec<&str> =
            self.cells.values().flat_map(|row| row.keys().map(String::as_str)).collect();
        all.sort_unstable();
        all.dedup();
        ordered(all.into_iter(), &IMPLS)
    }

    /// A Markdown table, then a legend: ns per operation, `(r×)` the
    /// ratio to [`BASELINE`] in the same row, `—` for a missing result.
    pub fn to_markdown(&self) -> String {
        let impls = self.impls();
        let mut out = String::from("| group |");
        for name in &impls {
            let _ = write!(out, " {name} |");
        }
        out.push_str("\n|---|");
        out.push_str(&"--:|".repeat(impls.len()));
        out.push('\n');
        for group in self.groups() {
            let row = &self.cells[group];
            let per = row.values().find_map(|e| e.elements.filter(|&n| n > 1));
            match per {
                Some(n) => {
                    let _ = write!(out, "| {group} (÷{n}) |");
                }
                None => {
                    let _ = write!(out, "| {group} |");
                }
            }
            let base = row.get(BASELINE).map(Estimate::ns_per_op);
            for name in &impls {
                let cell = match (row.get(*name).map(Estimate::ns_per_op), base) {
                    (None, _) => "—".to_string(),
                    (Some(ns), Some(base)) if base > 0.0 => {
                        format!("{} ({})", format_ns(ns), format_ratio(ns / base))
                    }
                    (Some(ns), _) => format_ns(ns),
                };
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
        out.push_str(
            "\nns per operation (criterion's mean); (r×) = that ÷ tokio's in the same row \
             (below 1: faster than tokio); — = missing: no result (not run, or the impl does \
             not apply); (÷N): one iteration is N operations, shown per operation.\n",
        );
        out
    }
}

/// `names` in `known` order first, then the rest by name.
fn ordered<'a>(names: impl Iterator<Item = &'a str>, known: &[&str]) -> Vec<&'a str> {
    let mut names: Vec<&str> = names.collect();
    names.sort_by_key(|n| (known.iter().position(|k| k == n).unwrap_or(known.len()), *n));
    names
}

/// `1.49 ns`, `26.3 ns`, `12,345 ns`.
fn format_ns(ns: f64) -> String {
    if ns < 10.0 {
        format!("{ns:.2} ns")
    } else if ns < 1000.0 {
        format!("{ns:.1} ns")
    } else {
        let digits = format!("{ns:.0}");
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{out} ns")
    }
}

/// `0.73×`, `17.2×`, `171×`.
fn format_ratio(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.2}×")
    } else if r < 100.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.0}×")
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// `tests/fixtures/criterion`: spawn_join/{green,tokio,thread} (thread
    /// without benchmark.json, green with an older `base/` that must be
    /// ignored), timer_fire_10k/{green,tokio} with 10,000 elements per
    /// iteration, yield/green alone (no tokio to compare with), and
    /// spawn_join/stale with an empty `new/` (never finished).
    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/criterion")
    }

    #[test]
    fn reads_new_estimates_per_operation() {
        let table = Table::read(&fixture()).unwrap();
        let ns = |g, b| table.get(g, b).map(Estimate::ns_per_op);
        assert_eq!(ns("spawn_join", "green"), Some(200.0), "new/, not base/");
        assert_eq!(ns("spawn_join", "tokio"), Some(400.0));
        assert_eq!(ns("spawn_join", "thread"), Some(40_000.0), "no benchmark.json: per iteration");
        assert_eq!(ns("timer_fire_10k", "green"), Some(100.0), "÷ 10,000 elements");
        assert_eq!(ns("timer_fire_10k", "tokio"), Some(250.0));
        assert_eq!(ns("yield", "green"), Some(25.5));
        assert_eq!(ns("yield", "tokio"), None);
        assert_eq!(ns("spawn_join", "stale"), None);
        assert_eq!(table.groups(), ["spawn_join", "yield", "timer_fire_10k"]);
        assert_eq!(table.impls(), ["green", "tokio", "thread"]);
    }

    #[test]
    fn markdown_has_ratios_and_shows_missing_cells() {
        let md = Table::read(&fixture()).unwrap().to_markdown();
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines[0], "| group | green | tokio | thread |");
        assert_eq!(lines[1], "|---|--:|--:|--:|");
        assert_eq!(
            lines[2],
            "| spawn_join | 200.0 ns (0.50×) | 400.0 ns (1.00×) | 40,000 ns (100×) |"
        );
        assert_eq!(lines[3], "| yield | 25.5 ns | — | — |", "no tokio: no ratio; missing: —");
        assert_eq!(
            lines[4],
            "| timer_fire_10k (÷10000) | 100.0 ns (0.40×) | 250.0 ns (1.00×) | — |"
        );
        assert!(!md.contains(" 0 ns") && !md.contains("0.00 ns"), "missing is never zero");
    }

    #[test]
    fn errors_name_the_path() {
        let missing = fixture().join("no-such-dir");
        let e = Table::read(&missing).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("no-such-dir"), "{e}");

        let dir = std::env::temp_dir().join(format!("greenloop-estimates-{}", std::process::id()));
        let new = dir.join("g/b/new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(new.join("estimates.json"), "{\"mean\": 3}").unwrap();
        let e = Table::read(&dir).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("estimates.json"), "{e}");
    }

    #[test]
    fn formats() {
        assert_eq!(format_ns(1.486), "1.49 ns");
        assert_eq!(format_ns(999.94), "999.9 ns");
        assert_eq!(format_ns(1234567.0), "1,234,567 ns");
        assert_eq!(format_ratio(0.5), "0.50×");
        assert_eq!(format_ratio(17.24), "17.2×");
    }
}

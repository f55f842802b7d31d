//! [`Options`]: what the claim run measures and for how long.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::ClaimId;

/// What the lab runs; see the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Multiplies the seeds' sleeps and waits (and, with floors, the
    /// measured windows). Ignored with `full`.
    pub scale: f64,
    /// Run the seeds' real durations (scale 1).
    pub full: bool,
    /// Only these claims (all when `None`).
    pub only: Option<Vec<ClaimId>>,
    /// Where `report.json`, `report.md` and the charts go.
    pub out_dir: PathBuf,
    /// Where criterion's results are looked for (C8 uses them if present).
    pub criterion_dir: Option<PathBuf>,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Draw the SVG charts.
    pub charts: bool,
    /// Also run the seeds' own Python apps that can run here
    /// (`lab/seeds/`; see [`crate::lab::seeds`]).
    pub seeds: bool,
}

impl Default for Options {
    fn default() -> Options {
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| "target".into(), Into::into);
        let target: PathBuf = target;
        Options {
            scale: Options::DEFAULT_SCALE,
            full: false,
            only: None,
            out_dir: target.join("lab"),
            criterion_dir: Some(target.join("criterion")),
            progress: true,
            charts: true,
            seeds: false,
        }
    }
}

impl Options {
    /// The default `--scale`: sleeps of 1000 ms become 100 ms, waits of 3 s
    /// become 300 ms, and the whole run takes about a minute on 2 cores.
    pub const DEFAULT_SCALE: f64 = 0.1;
    /// The shortest measured window, whatever the scale.
    pub const MIN_WINDOW: Duration = Duration::from_millis(300);
    /// The shortest warm-up, whatever the scale.
    pub const MIN_WARMUP: Duration = Duration::from_millis(150);

    /// The scale in force: 1 with `full`.
    pub fn effective_scale(&self) -> f64 {
        if self.full { 1.0 } else { self.scale }
    }

    /// A seed's sleep or wait, scaled (at least 1 ms).
    pub fn scaled(&self, seed: Duration) -> Duration {
        seed.mul_f64(self.effective_scale()).max(Duration::from_millis(1))
    }

    /// The warm-up before each measured window: 1 s at full scale, 0.3 s
    /// at the default.
    pub fn warmup(&self) -> Duration {
        Duration::from_secs(1)
            .mul_f64((self.effective_scale() * 3.0).min(1.0))
            .max(Self::MIN_WARMUP)
    }

    /// The measured window: 5 s at full scale, 0.7 s at the default.
    pub fn window(&self) -> Duration {
        Duration::from_secs(5)
            .mul_f64((self.effective_scale() * 1.4).min(1.0))
            .max(Self::MIN_WINDOW)
    }

    /// Whether `claim` is selected.
    pub fn selects(&self, claim: ClaimId) -> bool {
        self.only.as_ref().is_none_or(|only| only.contains(&claim))
    }

    /// `--only` parsed: ids or their prefixes (`C3`, `E1`), comma-separated.
    ///
    /// # Errors
    ///
    /// `InvalidInput` naming the unknown id and listing the known ones.
    pub fn parse_only(list: &str) -> io::Result<Vec<ClaimId>> {
        list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect()
    }
}

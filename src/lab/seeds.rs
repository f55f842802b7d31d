//! The seeds' own stacks (`--seeds`): the Python apps of `lab/seeds/`,
//! measured under the same load generator as greenloop's servers, as
//! extra rows of the claims they speak to.
//!
//! | app | what the seed says about it | started as |
//! |---|---|---|
//! | [`SeedApp::FlaskGunicornSync`] | WSGI: a pool of 4 sync workers queues | `gunicorn -w 4 -k sync --preload flask_sync:app` |
//! | [`SeedApp::FastapiAsyncSleep`] | async def + `asyncio.sleep`: all at once | `uvicorn fastapi_async:app` |
//! | [`SeedApp::FastapiAsyncBlocking`] | async def + `time.sleep`: serialized | `uvicorn fastapi_blocking:app` |
//! | [`SeedApp::FastapiSyncDef`] | plain def: the thread pool | `uvicorn fastapi_sync:app` |
//! | [`SeedApp::GeventMonkey`] | monkey-patched blocking code on greenlets | `python3 gevent_server.py` |
//!
//! Nothing here is needed: [`discover`] asks `python3 -c 'import ...'`
//! which apps can run, and the others are named with [`INSTALL`]. Each
//! app is started through `lab/seeds/launch.py`, which prints the
//! `listening on ADDR` line the lab reads and then becomes the server, so
//! the pid the lab reads `/proc` for is the server's (gunicorn's master:
//! its workers' CPU is not in the figures).
//!
//! Seed rows carry `variant = "seed"`; evaluations never judge them, they
//! are quoted beside the verdict.

use std::fmt;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::cell::Cell;
use super::load::LoadSpec;
use super::measure::{Run, measure_at};
use super::server::ServerProc;

/// The line that installs every seed stack.
pub const INSTALL: &str = "pip install -r lab/seeds/requirements.txt";
/// The interpreter the apps run on.
pub const PYTHON: &str = "python3";
/// The row variant of a seed app's run.
pub const SEED_VARIANT: &str = "seed";

/// One of the seeds' example apps; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedApp {
    /// Flask with `time.sleep` under gunicorn's sync workers.
    FlaskGunicornSync,
    /// FastAPI `async def` with `asyncio.sleep` under uvicorn.
    FastapiAsyncSleep,
    /// FastAPI `async def` with `time.sleep`: the blocking mistake.
    FastapiAsyncBlocking,
    /// FastAPI plain `def`: run on the thread pool.
    FastapiSyncDef,
    /// A gevent WSGI server with monkey-patching.
    GeventMonkey,
}

impl SeedApp {
    /// Every app, in report order.
    pub const ALL: [SeedApp; 5] = [
        SeedApp::FlaskGunicornSync,
        SeedApp::FastapiAsyncSleep,
        SeedApp::FastapiAsyncBlocking,
        SeedApp::FastapiSyncDef,
        SeedApp::GeventMonkey,
    ];

    /// gunicorn's sync workers: the pool W of the seed.
    pub const GUNICORN_WORKERS: usize = 4;

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            SeedApp::FlaskGunicornSync => "flask-gunicorn-sync",
            SeedApp::FastapiAsyncSleep => "fastapi-async-asyncio-sleep",
            SeedApp::FastapiAsyncBlocking => "fastapi-async-time-sleep",
            SeedApp::FastapiSyncDef => "fastapi-sync-def",
            SeedApp::GeventMonkey => "gevent-monkey-patched",
        }
    }

    /// The Python modules it needs.
    pub fn modules(self) -> &'static [&'static str] {
        match self {
            SeedApp::FlaskGunicornSync => &["flask", "gunicorn"],
            SeedApp::FastapiAsyncSleep
            | SeedApp::FastapiAsyncBlocking
            | SeedApp::FastapiSyncDef => &["fastapi", "uvicorn"],
            SeedApp::GeventMonkey => &["gevent"],
        }
    }

    /// The server's own command line, listening on 127.0.0.1:`port`,
    /// run in `lab/seeds/`.
    pub fn server_argv(self, port: u16) -> Vec<String> {
        let port = port.to_string();
        let uvicorn = |module: &str| {
            let app = format!("{module}:app");
            [PYTHON, "-m", "uvicorn", &app, "--host", "127.0.0.1", "--port", &port]
                .into_iter()
                .chain(["--log-level", "warning", "--timeout-graceful-shutdown", "1"])
                .map(String::from)
                .collect()
        };
        match self {
            SeedApp::FlaskGunicornSync => {
                let workers = SeedApp::GUNICORN_WORKERS.to_string();
                let bind = format!("127.0.0.1:{port}");
                [PYTHON, "-m", "gunicorn", "--workers", &workers, "--worker-class", "sync"]
                    .into_iter()
                    .chain(["--bind", &bind, "--graceful-timeout", "1", "--preload"])
                    .chain(["flask_sync:app"])
                    .map(String::from)
                    .collect()
            }
            SeedApp::FastapiAsyncSleep => uvicorn("fastapi_async"),
            SeedApp::FastapiAsyncBlocking => uvicorn("fastapi_blocking"),
            SeedApp::FastapiSyncDef => uvicorn("fastapi_sync"),
            SeedApp::GeventMonkey => [PYTHON, "gevent_server.py", &port].map(String::from).to_vec(),
        }
    }

    /// The whole command the lab runs: `launch.py PORT -- <server argv>`
    /// in `dir` (`lab/seeds/`).
    pub fn command(self, dir: &Path, port: u16) -> Command {
        let mut command = Command::new(PYTHON);
        command.current_dir(dir).arg("launch.py").arg(port.to_string()).arg("--");
        command.args(self.server_argv(port));
        command
    }
}

impl fmt::Display for SeedApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `lab/seeds/` of this repository (where the lab was built from).
pub fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lab").join("seeds")
}

/// Which apps can run here: those whose modules `python3` imports. The
/// others come back with the first module missing (or why `python3`
/// could not be asked).
pub fn discover() -> (Vec<SeedApp>, Vec<(SeedApp, String)>) {
    discover_with(|module| {
        let out = Command::new(PYTHON)
            .args(["-c", &format!("import {module}")])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{PYTHON}: {e}"))?;
        if out.status.success() { Ok(()) } else { Err(format!("no module {module}")) }
    })
}

/// [`discover`] with `import` as the test of a module.
pub fn discover_with(
    mut import: impl FnMut(&str) -> Result<(), String>,
) -> (Vec<SeedApp>, Vec<(SeedApp, String)>) {
    let mut ready = Vec::new();
    let mut missing = Vec::new();
    for app in SeedApp::ALL {
        match app.modules().iter().try_for_each(|m| import(m)) {
            Ok(()) => ready.push(app),
            Err(why) => missing.push((app, why)),
        }
    }
    (ready, missing)
}

/// One line naming the apps that cannot run and the install line.
pub fn missing_line(missing: &[(SeedApp, String)]) -> Option<String> {
    (!missing.is_empty()).then(|| {
        let names: Vec<String> = missing.iter().map(|(a, why)| format!("{a} ({why})")).collect();
        format!("seed apps skipped: {}; to run them: {INSTALL}", names.join(", "))
    })
}

/// A free loopback port (bound, read, released).
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Measures `app` under `load` (a sleep load), as a seed row labelled
/// with `claim`. A server that does not stop cleanly is noted on the row.
///
/// # Errors
///
/// When the app cannot start or the load cannot run.
pub fn measure_seed(app: SeedApp, load: &LoadSpec, claim: &str) -> io::Result<Run> {
    let port = free_port()?;
    let server = ServerProc::spawn_command(app.command(&seeds_dir(), port), app.name())?;
    // Labels only: the row is relabelled below.
    let stand_in = Cell::parse_spec("threads-blocking-sleep")?;
    let measured = measure_at(&stand_in, server.addr(), Some(server.pid()), load);
    let pinned = server.pinned();
    let stopped = server.stop();
    let mut run = measured?.for_claim(claim);
    run.cell = format!("seed:{app}");
    run.runtime = "python".into();
    run.style = app.name().into();
    run.workers = (app == SeedApp::FlaskGunicornSync).then_some(SeedApp::GUNICORN_WORKERS);
    run.variant = Some(SEED_VARIANT.into());
    run.pinned = pinned;
    match stopped {
        Ok(status) if status.success() => {}
        Ok(status) => run.note = Some(format!("stopped with {status}")),
        Err(e) => run.note = Some(format!("stopping it failed: {e}")),
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_splits_by_module_and_names_the_install_line() {
        let (ready, missing) = discover_with(|m| match m {
            "fastapi" | "uvicorn" => Ok(()),
            other => Err(format!("no module {other}")),
        });
        assert_eq!(
            ready,
            [SeedApp::FastapiAsyncSleep, SeedApp::FastapiAsyncBlocking, SeedApp::FastapiSyncDef]
        );
        let names: Vec<SeedApp> = missing.iter().map(|(a, _)| *a).collect();
        assert_eq!(names, [SeedApp::FlaskGunicornSync, SeedApp::GeventMonkey]);
        assert_eq!(missing[0].1, "no module flask");
        let line = missing_line(&missing).unwrap();
        assert!(line.contains("gevent-monkey-patched (no module gevent)"), "{line}");
        assert!(line.ends_with(INSTALL), "{line}");
        assert_eq!(missing_line(&[]), None);
        let (none, all) = discover_with(|_| Err("python3: not found".into()));
        assert!(none.is_empty() && all.len() == SeedApp::ALL.len());
    }

    #[test]
    fn each_app_has_its_command_line() {
        let argv = |app: SeedApp| app.server_argv(8123).join(" ");
        assert_eq!(
            argv(SeedApp::FlaskGunicornSync),
            "python3 -m gunicorn --workers 4 --worker-class sync --bind 127.0.0.1:8123 \
             --graceful-timeout 1 --preload flask_sync:app"
        );
        for (app, module) in [
            (SeedApp::FastapiAsyncSleep, "fastapi_async"),
            (SeedApp::FastapiAsyncBlocking, "fastapi_blocking"),
            (SeedApp::FastapiSyncDef, "fastapi_sync"),
        ] {
            assert_eq!(
                argv(app),
                format!(
                    "python3 -m uvicorn {module}:app --host 127.0.0.1 --port 8123 --log-level \
                     warning --timeout-graceful-shutdown 1"
                )
            );
        }
        assert_eq!(argv(SeedApp::GeventMonkey), "python3 gevent_server.py 8123");
        let command = SeedApp::GeventMonkey.command(Path::new("/x/seeds"), 8123);
        let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args.join(" "), "launch.py 8123 -- python3 gevent_server.py 8123");
        assert_eq!(command.get_current_dir(), Some(Path::new("/x/seeds")));
    }

    #[test]
    fn every_app_file_is_in_the_repository() {
        let dir = seeds_dir();
        for file in ["launch.py", "common.py", "requirements.txt"] {
            assert!(dir.join(file).is_file(), "{file}");
        }
        for app in SeedApp::ALL {
            let argv = app.server_argv(1);
            let file = argv
                .iter()
                .find_map(|a| a.strip_suffix(":app").map(|m| format!("{m}.py")))
                .or_else(|| argv.iter().find(|a| a.ends_with(".py")).cloned())
                .unwrap();
            assert!(dir.join(&file).is_file(), "{app}: {file}");
        }
        let requirements = std::fs::read_to_string(dir.join("requirements.txt")).unwrap();
        for app in SeedApp::ALL {
            for module in app.modules() {
                assert!(requirements.lines().any(|l| l == *module), "{module}");
            }
        }
    }
}

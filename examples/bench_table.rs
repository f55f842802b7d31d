//! criterion's results as one table: `cargo run --release --example bench_table`.
//!
//! Reads every `<group>/<impl>/new/estimates.json` under `--dir` (after
//! `cargo bench --bench scheduler --bench sync`), prints one Markdown
//! table (rows = groups, columns = impls, cells = ns per operation and the
//! ratio to tokio, `—` where a result is missing) and writes it to
//! `--out`. The reading and rendering live in `greenloop::lab::estimates`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use greenloop::lab::estimates::Table;

/// Prints criterion's results as one table of ns per operation.
#[derive(Debug, Parser)]
#[command(about = "Prints criterion's results as one table of ns per operation")]
struct Args {
    /// criterion's output directory.
    #[arg(long, default_value = "target/criterion")]
    dir: PathBuf,
    /// Where to write the table too [default: DIR/summary.md].
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let table = match Table::read(&args.dir) {
        Ok(table) if !table.is_empty() => table,
        Ok(_) => {
            eprintln!(
                "bench_table: no results under {}; run `cargo bench --bench scheduler --bench sync` first",
                args.dir.display()
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("bench_table: {e}");
            return ExitCode::FAILURE;
        }
    };
    let markdown = table.to_markdown();
    print!("{markdown}");
    let out = args.out.unwrap_or_else(|| args.dir.join("summary.md"));
    if let Err(e) = std::fs::write(&out, &markdown) {
        eprintln!("bench_table: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    eprintln!("bench_table: wrote {}", out.display());
    ExitCode::SUCCESS
}

//! The votewatch command line: flags, logging, and the exit status. The work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use votewatch::commands::{self, EXIT_FATAL};
use votewatch::config::Config;
use votewatch::ingest::IngestOptions;
use votewatch::warehouse::Warehouse;

/// Loads Stack Exchange vote files into a DuckDB warehouse exactly once.
#[derive(Parser)]
#[command(name = "votewatch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every command that opens the warehouse takes.
#[derive(clap::Args)]
struct WarehouseArgs {
    /// Configuration file [default: config/votewatch.toml when present, else built-in defaults]
    #[arg(long, global = true, env = "VOTEWATCH_CONFIG")]
    config: Option<PathBuf>,
    /// DuckDB warehouse file, overriding warehouse.path of the configuration
    #[arg(long)]
    warehouse: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Load files now, in the order given, exactly as the daemon would
    Ingest {
        #[command(flatten)]
        wh: WarehouseArgs,
        /// Load content that was loaded before (rows are still deduplicated by Id)
        #[arg(long)]
        force: bool,
        /// Files to load (.jsonl, .ndjson, .json, optionally .gz or .zst)
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Recreate blog_analysis.outlier_weeks and print its rows
    Outliers {
        #[command(flatten)]
        wh: WarehouseArgs,
    },
    /// List the ledger of ingested files, newest first
    History {
        #[command(flatten)]
        wh: WarehouseArgs,
        /// How many ledger rows to show
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VOTEWATCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("votewatch: {e:#}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}

fn open(args: &WarehouseArgs) -> anyhow::Result<(Config, Warehouse)> {
    let config = Config::load(args.config.as_deref())?;
    let path = args
        .warehouse
        .clone()
        .unwrap_or_else(|| config.warehouse.path.clone());
    let wh = Warehouse::open(&path)?;
    Ok((config, wh))
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    Ok(match cli.command {
        Command::Ingest { wh, force, files } => {
            let (config, mut wh) = open(&wh)?;
            let mut opts = IngestOptions::new(config.ingest);
            opts.force = force;
            commands::ingest(&mut wh, &files, &opts, &mut out)?
        }
        Command::Outliers { wh } => {
            let (_, wh) = open(&wh)?;
            commands::outliers(&wh, &mut out)?
        }
        Command::History { wh, limit } => {
            let (_, wh) = open(&wh)?;
            commands::history(&wh, limit, &mut out)?
        }
    })
}

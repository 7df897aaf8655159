//! The votewatch command line: flags, logging, and the exit status. The work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use votewatch::cli::{self, EXIT_FATAL, EXIT_OK};
use votewatch::config::Config;
use votewatch::datasets::Dataset;
use votewatch::pipeline::load::IngestOptions;
use votewatch::warehouse::Warehouse;

/// Loads Stack Exchange vote files into a DuckDB warehouse exactly once.
#[derive(Parser)]
#[command(name = "votewatch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A dataset's name, as `--dataset` takes it.
fn parse_dataset(name: &str) -> Result<Dataset, String> {
    Dataset::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Dataset::ALL.iter().map(|d| d.name()).collect();
        format!("no dataset {name:?}; there are {}", names.join(", "))
    })
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

/// Which ledger rows `history` and `status` show, and how.
#[derive(clap::Args)]
struct FilterArgs {
    /// Only arrivals with this status (loaded, partial, duplicate_file, rejected, failed)
    #[arg(long)]
    status: Option<String>,
    /// Only arrivals since then: a date (2026-11-01), a UTC date and time, or an age (36h, 7d)
    #[arg(long)]
    since: Option<String>,
    /// Only arrivals of a file of this name
    #[arg(long = "file")]
    file_name: Option<String>,
    /// Only arrivals of this dataset (votes, posts)
    #[arg(long, value_parser = parse_dataset)]
    dataset: Option<Dataset>,
    /// Output format
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

impl FilterArgs {
    fn filter(&self) -> anyhow::Result<votewatch::model::LedgerFilter> {
        Ok(votewatch::model::LedgerFilter {
            status: self.status.clone(),
            since_micros: self
                .since
                .as_deref()
                .map(|s| cli::parse_since(s, chrono::Utc::now()))
                .transpose()
                .map_err(|e| anyhow::anyhow!(e))?,
            file_name: self.file_name.clone(),
            dataset: self.dataset.map(|d| d.name().to_string()),
        })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Watch the landing folder and load every file dropped there, exactly once (the daemon)
    Run {
        /// Configuration file [default: config/votewatch.toml when present, else built-in defaults]
        #[arg(long, env = "VOTEWATCH_CONFIG")]
        config: Option<PathBuf>,
        /// Log format on stderr
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Load files now, in the order given, exactly as the daemon would
    Ingest {
        #[command(flatten)]
        wh: WarehouseArgs,
        /// Load content that was loaded before (rows are still deduplicated by Id)
        #[arg(long)]
        force: bool,
        /// Also send the status report of these files, as the daemon does
        #[arg(long)]
        report: bool,
        /// Load every file as this dataset (votes, posts) [default: by its name, as the daemon]
        #[arg(long, value_parser = parse_dataset)]
        dataset: Option<Dataset>,
        /// Files to load (.jsonl, .ndjson, .json, optionally .gz or .zst)
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the rows of blog_analysis.outlier_weeks (reads the warehouse, changes nothing)
    Outliers {
        #[command(flatten)]
        wh: WarehouseArgs,
    },
    /// Send one test message through the configured mail transport and say what happened
    SendTestEmail {
        /// Configuration file [default: config/votewatch.toml when present, else built-in defaults]
        #[arg(long, env = "VOTEWATCH_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Show the ledger by status and how many reports wait in the outbox
    Status {
        #[command(flatten)]
        wh: WarehouseArgs,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Check files against the data contract without touching the warehouse: what a load
    /// would report (records, rejects with line numbers and reasons, unknown fields, verdict);
    /// exits 1 when a file would not be loaded
    Check {
        /// Configuration file (its [ingest] limits apply) [default: config/votewatch.toml when present]
        #[arg(long, env = "VOTEWATCH_CONFIG")]
        config: Option<PathBuf>,
        /// Output format
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// Check every file as this dataset (votes, posts) [default: by its name]
        #[arg(long, value_parser = parse_dataset)]
        dataset: Option<Dataset>,
        /// Files to check
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check the configuration and what it points at (folders, warehouse, mail transport),
    /// one line per finding; exits 1 on an error (the unit runs it before the daemon)
    CheckConfig {
        /// Configuration file [default: config/votewatch.toml when present, else built-in defaults]
        #[arg(long, env = "VOTEWATCH_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Remove the votes a ledger row brought, in one transaction, recorded as an unload
    Unload {
        #[command(flatten)]
        wh: WarehouseArgs,
        /// The ledger id (see `votewatch history`)
        id: i64,
        /// Why, for the record
        #[arg(long)]
        reason: Option<String>,
        /// Load the freed Ids again from later files that carried them (first wins)
        #[arg(long)]
        reload_later: bool,
        /// Say what would happen and change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Load the stored file of a ledger row again, as a new arrival (after a rejection, a
    /// failure or an unload), once its bytes match the recorded SHA-256
    Reingest {
        #[command(flatten)]
        wh: WarehouseArgs,
        /// The ledger id (see `votewatch history`)
        id: i64,
    },
    /// Tidy the warehouse: on DuckLake merge small files, expire old snapshots and delete
    /// files no snapshot needs; on a DuckDB file, checkpoint
    Maintain {
        #[command(flatten)]
        wh: WarehouseArgs,
        /// Keep snapshots and unreferenced files this many days [default: warehouse.ducklake.retention_days]
        #[arg(long)]
        retention_days: Option<u32>,
        /// Also recompute the weekly counts (weekly_votes) from votes, say any difference and
        /// repair it (exit status 1 when there was one)
        #[arg(long)]
        verify: bool,
    },
    /// Re-create a lost DuckDB warehouse from the archive journal: every archived file loaded
    /// again, in arrival order, as it was loaded the first time; exits 1 when a file is
    /// missing or changed
    Rebuild {
        #[command(flatten)]
        wh: WarehouseArgs,
        /// Build a new DuckDB file here instead of the configured warehouse (which may exist)
        #[arg(long)]
        into: Option<PathBuf>,
    },
    /// List the ledger of ingested files, newest first
    History {
        #[command(flatten)]
        wh: WarehouseArgs,
        /// How many ledger rows to show
        #[arg(long, default_value_t = 20)]
        limit: u64,
        #[command(flatten)]
        filter: FilterArgs,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VOTEWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colour only for a person at a terminal: journald and files store escape codes as is.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon catches its signals before anything else (see `EarlySignals`).
    let early = match &cli.command {
        Command::Run { .. } => match votewatch::daemon::EarlySignals::catch() {
            Ok(early) => early,
            Err(e) => {
                eprintln!("votewatch: cannot install signal handlers: {e}");
                return ExitCode::from(EXIT_FATAL);
            }
        },
        _ => votewatch::daemon::EarlySignals::default(),
    };
    match &cli.command {
        Command::Run { log_format, .. } => init_logging(*log_format, "info"),
        _ => init_logging(LogFormat::Text, "warn"),
    }
    match run(cli, early) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("votewatch: {}", chain(&e));
            ExitCode::from(EXIT_FATAL)
        }
    }
}

/// An error and its causes on one line, a cause left out when the message says it already
/// (the warehouse's errors quote DuckDB's).
fn chain(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line
}

fn open(args: &WarehouseArgs) -> anyhow::Result<(Config, Warehouse)> {
    let config = Config::load(args.config.as_deref())?;
    let wh = Warehouse::open(&warehouse_config(&config, args))?;
    Ok((config, wh))
}

/// The warehouse to read, opened read-only: a missing one is an error naming the path and the
/// configuration, and nothing is created.
fn open_read_only(args: &WarehouseArgs) -> anyhow::Result<Warehouse> {
    let config = Config::load(args.config.as_deref())?;
    Ok(Warehouse::open_read_only(
        &warehouse_config(&config, args),
        &config_label(args),
    )?)
}

/// Which configuration a command read, in words.
fn config_label(args: &WarehouseArgs) -> String {
    match &args.config {
        Some(p) => p.display().to_string(),
        None if std::path::Path::new(votewatch::config::DEFAULT_CONFIG_PATH).exists() => {
            votewatch::config::DEFAULT_CONFIG_PATH.to_string()
        }
        None => format!(
            "the built-in defaults (no --config, and no {} here)",
            votewatch::config::DEFAULT_CONFIG_PATH
        ),
    }
}

/// The configured warehouse, or the one `--warehouse` names with the same settings.
fn warehouse_config(config: &Config, args: &WarehouseArgs) -> votewatch::config::WarehouseConfig {
    match &args.warehouse {
        Some(path) => config.warehouse.with_path(path),
        None => config.warehouse.clone(),
    }
}

fn run(cli: Cli, early: votewatch::daemon::EarlySignals) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    Ok(match cli.command {
        Command::Run { config, .. } => {
            votewatch::daemon::run(votewatch::daemon::ConfigSource { path: config }, early)?;
            EXIT_OK
        }
        Command::Ingest {
            wh,
            force,
            report,
            dataset,
            files,
        } => {
            let (config, mut wh) = open(&wh)?;
            let mut opts = IngestOptions::new(config.ingest);
            opts.force = force;
            opts.dataset = dataset;
            opts.names = Some(std::sync::Arc::new(config.dataset_names()));
            let report = report.then_some(&config.report);
            cli::ingest(&mut wh, &files, &opts, report, &mut out)?
        }
        Command::SendTestEmail { config } => {
            let config = Config::load(config.as_deref())?;
            cli::send_test_email(&config.report, &mut out)
        }
        Command::Status { wh, filter } => {
            let config = Config::load(wh.config.as_deref())?;
            cli::status(
                &warehouse_config(&config, &wh),
                &config_label(&wh),
                &config.report,
                &filter.filter()?,
                filter.format == OutputFormat::Json,
                &mut out,
            )
        }
        Command::Outliers { wh } => {
            let wh = open_read_only(&wh)?;
            cli::outliers(&wh, &mut out)?
        }
        Command::Check {
            config,
            format,
            dataset,
            files,
        } => {
            let config = Config::load(config.as_deref())?;
            let json = format == OutputFormat::Json;
            cli::check(&config, &files, dataset, json, &mut out)?
        }
        Command::Unload {
            wh,
            id,
            reason,
            reload_later,
            dry_run,
        } => {
            let (config, mut wh) = open(&wh)?;
            cli::unload(
                &mut wh,
                &config,
                id,
                reason.as_deref(),
                reload_later,
                dry_run,
                &mut out,
            )?
        }
        Command::Reingest { wh, id } => {
            let (config, mut wh) = open(&wh)?;
            let opts = IngestOptions::new(config.ingest);
            cli::reingest(&mut wh, id, &opts, &config.report, &mut out)?
        }
        Command::CheckConfig { config } => cli::check_config(config.as_deref(), &mut out),
        Command::Rebuild { wh, into } => {
            let config = Config::load(wh.config.as_deref())?;
            let cfg = warehouse_config(&config, &wh);
            let target = into.unwrap_or_else(|| cfg.path.clone());
            cli::rebuild(&config, &cfg, &target, &mut out)?
        }
        Command::Maintain {
            wh,
            retention_days,
            verify,
        } => {
            let (config, wh) = open(&wh)?;
            let days = retention_days.unwrap_or(config.warehouse.ducklake.retention_days);
            cli::maintain(
                &wh,
                days,
                config.ingest.reject_retention_days,
                verify,
                &mut out,
            )?
        }
        Command::History { wh, limit, filter } => {
            let wh = open_read_only(&wh)?;
            let json = filter.format == OutputFormat::Json;
            cli::history(&wh, limit, &filter.filter()?, json, &mut out)?
        }
    })
}

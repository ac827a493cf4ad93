//! The command line of `tribune`: serve, import, export, backup and migrate-data.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use indicatif::{HumanCount, ProgressBar};

use crate::config::{Config, DEFAULT_DATABASE_URL, normalise_base_url};
pub use crate::export::ExportFormat;
use crate::export::Exported;
use crate::proxy::{ProxyRange, TrustedProxies};
use crate::telemetry::LogFormat;
use crate::{content, progress, store};

#[derive(Debug, Parser)]
#[command(
    name = "tribune",
    version,
    about = "Publishes an article with a live poll"
)]
pub struct Cli {
    /// SQLite database, created with its folder when missing.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,

    /// How log lines are written on stderr.
    #[arg(long, env = "TRIBUNE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the site (the default).
    Serve(ServeArgs),
    /// Import or update the content, then exit.
    Import {
        #[arg(long, env = "TRIBUNE_CONTENT", default_value = "content")]
        content: PathBuf,
    },
    /// Write a poll's results and anonymised votes to stdout.
    Export {
        /// The poll's id.
        poll: String,
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
    },
    /// Write a consistent copy of the live database to PATH.
    Backup { path: PathBuf },
    /// Move a SQLite database's data, exactly, into an empty PostgreSQL database.
    MigrateData {
        /// The SQLite database to move, e.g. sqlite://data/tribune.db (read, never written).
        #[arg(long, value_name = "URL")]
        from: String,
        /// The empty PostgreSQL database to move it into, e.g. postgres://USER:PASSWORD@HOST:5432/DATABASE.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TRIBUNE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Folder with site.toml and articles/.
    #[arg(long, env = "TRIBUNE_CONTENT", default_value = "content")]
    pub content: PathBuf,
    /// Absolute URL of the site, for share links and canonical URLs (default: http://BIND).
    #[arg(long, env = "TRIBUNE_BASE_URL")]
    pub base_url: Option<String>,
    /// Votes one address may cast per poll per hour; 0 turns the cap off.
    #[arg(long, env = "TRIBUNE_MAX_VOTES_PER_ADDRESS", default_value_t = 20)]
    pub max_votes_per_address: u32,
    /// Live event streams one address (IPv4, or IPv6 /64) may hold open; 0 turns the cap off.
    #[arg(long, env = "TRIBUNE_MAX_STREAMS_PER_ADDRESS", default_value_t = 64)]
    pub max_streams_per_address: u32,
    /// Requests per second one address (IPv4, or IPv6 /64) may make, in bursts of as many; 0 turns the limit off.
    #[arg(long, env = "TRIBUNE_RATE_LIMIT", default_value_t = 0)]
    pub rate_limit: u32,
    /// Proxies whose X-Forwarded-For is believed: addresses or CIDR ranges (comma-separated).
    #[arg(
        long = "trusted-proxy",
        env = "TRIBUNE_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<ProxyRange>,
    /// Secret that signs reader cookies and keys address hashes (default: made once, kept in the database).
    #[arg(long, env = "TRIBUNE_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Most votes and ratings committed together in one transaction (1 commits each alone).
    #[arg(long, env = "TRIBUNE_WRITE_BATCH", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub write_batch: u32,
}

impl ServeArgs {
    fn into_config(self, database_url: String) -> anyhow::Result<Config> {
        let base_url = match self.base_url {
            Some(url) => normalise_base_url(&url).map_err(anyhow::Error::msg)?,
            None => format!("http://{}", self.bind),
        };
        let mut config = Config::new(database_url, self.content);
        config.bind = self.bind;
        config.base_url = base_url;
        config.max_votes_per_address =
            (self.max_votes_per_address > 0).then_some(self.max_votes_per_address);
        config.max_streams_per_address =
            (self.max_streams_per_address > 0).then_some(self.max_streams_per_address);
        config.trusted_proxies = TrustedProxies::new(self.trusted_proxies);
        config.rate_limit = (self.rate_limit > 0).then_some(self.rate_limit);
        config.secret = self.secret;
        config.write_batch = self.write_batch as usize;
        Ok(config)
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(cli.serve, cli.database_url).await,
        Some(Command::Serve(args)) => serve(args, cli.database_url).await,
        Some(Command::Import { content }) => {
            let db = store::Db::open(&cli.database_url).await?;
            let report = content::import(&db, &content).await?;
            println!("{report}");
            db.close().await;
            Ok(())
        }
        Some(Command::Export { poll, format }) => export(&cli.database_url, &poll, format).await,
        Some(Command::Backup { path }) => backup(&cli.database_url, &path).await,
        Some(Command::MigrateData { from, to }) => migrate_data(&from, &to).await,
    }
}

/// Streams the export to stdout. A bar on stderr shows the votes written
/// when stderr is a terminal and stdout is not: on a terminal the rows
/// themselves show the progress, and the bar would be drawn over them.
async fn export(database_url: &str, poll: &str, format: ExportFormat) -> anyhow::Result<()> {
    let db = store::Db::open(database_url).await?;
    let bar = progress::bar(
        0,
        progress::VOTES,
        "exporting",
        !std::io::stdout().is_terminal(),
    );
    let exported =
        crate::export::export_poll(&db, poll, format, std::io::stdout(), bar.clone()).await;
    db.close().await;
    match exported {
        Ok(Some(Exported::Complete { .. })) => {
            bar.finish();
            Ok(())
        }
        // The reader has what it wanted (`| head`): not an error.
        Ok(Some(Exported::OutputClosed { .. })) => {
            bar.abandon();
            Ok(())
        }
        Ok(None) => {
            bar.finish_and_clear();
            anyhow::bail!("no poll with id {poll:?}")
        }
        Err(e) => {
            bar.abandon();
            Err(e)
        }
    }
}

/// Writes the backup; on a terminal, a bar on stderr shows the copy's size
/// on disk as it grows, against the source's size.
async fn backup(database_url: &str, path: &std::path::Path) -> anyhow::Result<()> {
    let backup = store::Backup::prepare(database_url, path).await?;
    let bar = progress::bar(backup.bytes_estimate(), progress::BYTES, "backing up", true);
    let copying = backup.run();
    tokio::pin!(copying);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    // Ends when the copy does.
    let copied = loop {
        tokio::select! {
            copied = &mut copying => break copied,
            _ = tick.tick(), if !bar.is_hidden() => {
                if let Ok(meta) = tokio::fs::metadata(path).await {
                    // The estimate is the source's pages in use; a copy that
                    // outgrows it moves the end of the bar, never past it.
                    let size = meta.len();
                    if size > bar.length().unwrap_or(0) {
                        bar.set_length(size);
                    }
                    bar.set_position(size);
                }
            }
        }
    };
    match copied {
        Ok(size) => {
            bar.set_length(size);
            bar.set_position(size);
            bar.finish();
            println!("backed up to {}", path.display());
            Ok(())
        }
        Err(e) => {
            bar.abandon();
            Err(e)
        }
    }
}

/// Moves the data; on a terminal, a bar on stderr shows the votes moved.
/// The bar appears once both databases have been checked, so that a refusal
/// is a lone line.
async fn migrate_data(from: &str, to: &str) -> anyhow::Result<()> {
    let mut bar: Option<ProgressBar> = None;
    let moved = store::migrate::move_data(from, to, |done, total| {
        bar.get_or_insert_with(|| progress::bar(total, progress::VOTES, "moving", true))
            .set_position(done);
    })
    .await;
    match moved {
        Ok(moved) => {
            if let Some(bar) = bar {
                bar.finish();
            }
            println!("{}", moved_sentence(&moved));
            Ok(())
        }
        Err(e) => {
            if let Some(bar) = bar {
                bar.abandon();
            }
            Err(e)
        }
    }
}

/// "moved 1 article, 1 poll with 4 options, 1,000,000 votes, … into postgres://host:port/db".
fn moved_sentence(moved: &store::migrate::Moved) -> String {
    let count = |table: &str, one: &str, many: &str| {
        let n = moved.rows(table);
        format!("{} {}", HumanCount(n), if n == 1 { one } else { many })
    };
    let mut parts = vec![
        count("articles", "article", "articles"),
        format!(
            "{} with {}",
            count("polls", "poll", "polls"),
            count("poll_options", "option", "options")
        ),
        count("votes", "vote", "votes"),
        count("ratings", "rating", "ratings"),
        count("address_uses", "address use", "address uses"),
        count("idempotency_keys", "idempotency key", "idempotency keys"),
    ];
    if moved.rows("site") > 0 {
        parts.push("the site's settings".to_owned());
    }
    if moved.rows("server_secret") > 0 {
        parts.push("the server secret".to_owned());
    }
    let last = parts.pop().unwrap_or_default();
    format!(
        "moved {} and {last} into {}",
        parts.join(", "),
        moved.target
    )
}

async fn serve(args: ServeArgs, database_url: String) -> anyhow::Result<()> {
    let config = args.into_config(database_url)?;
    let app = crate::Application::build(config).await?;
    tracing::info!("serving {} on http://{}", app.base_url(), app.local_addr());
    app.run_until_stopped(crate::app::shutdown_signal()).await
}

//! The command line of `tribune`: serve, import, export and backup.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Config, DEFAULT_DATABASE_URL, normalise_base_url};
use crate::proxy::{ProxyRange, TrustedProxies};
use crate::telemetry::LogFormat;
use crate::{content, store};

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
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
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
        Some(Command::Export { poll, format }) => {
            let db = store::Db::open(&cli.database_url).await?;
            let export = store::export::poll_export(&db, &poll)
                .await?
                .with_context(|| format!("no poll with id {poll:?}"))?;
            let text = match format {
                ExportFormat::Csv => export.to_csv(),
                ExportFormat::Json => serde_json::to_string_pretty(&export)? + "\n",
            };
            print!("{text}");
            db.close().await;
            Ok(())
        }
        Some(Command::Backup { path }) => {
            store::backup(&cli.database_url, &path).await?;
            println!("backed up to {}", path.display());
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs, database_url: String) -> anyhow::Result<()> {
    let config = args.into_config(database_url)?;
    let app = crate::Application::build(config).await?;
    tracing::info!("serving {} on http://{}", app.base_url(), app.local_addr());
    app.run_until_stopped(crate::app::shutdown_signal()).await
}

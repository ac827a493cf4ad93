//! The vote flood and the GET /healthz load, run by wrk as a child process.
//!
//! The votes are bench/vote.lua's: POSTs from new readers for `seconds`, then
//! `drain` seconds of GET /healthz so every vote in flight gets its answer;
//! the script prints its counts in done(). The child is awaited on the
//! tool's thread, so the streams keep being read while wrk runs.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::Command;

#[derive(Clone, Debug)]
pub struct Wrk {
    pub program: String,
    pub vote_lua: PathBuf,
    pub base: String,
    pub poll: String,
    pub connections: u32,
    pub seconds: u64,
    pub drain: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Run {
    /// Acknowledged votes/s, or healthz req/s.
    pub rate: f64,
    /// What to show about the answers: statuses and socket errors.
    pub notes: String,
}

impl Wrk {
    /// Acknowledged (201) votes per second of the vote window.
    pub async fn votes(&self) -> Result<Run> {
        let out = self
            .run(
                self.seconds + self.drain,
                &["-s", &self.vote_lua.display().to_string(), &self.base],
            )
            .await?;
        let field = |name: &str| -> Option<f64> {
            out.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        };
        let (Some(acked), Some(window)) =
            (field("votes_acknowledged"), field("vote_window_seconds"))
        else {
            bail!("wrk did not print vote.lua's counts:\n{out}");
        };
        if window <= 0.0 {
            bail!("the vote window never closed (wrk ran shorter than the vote phase?):\n{out}");
        }
        let statuses: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("status "))
            .collect();
        let errors = out
            .lines()
            .find_map(|l| l.strip_prefix("errors "))
            .unwrap_or("?");
        Ok(Run {
            rate: acked / window,
            notes: format!("statuses {}; errors {errors}", statuses.join(", ")),
        })
    }

    /// GET /healthz requests per second.
    pub async fn healthz(&self) -> Result<Run> {
        let url = format!("{}/healthz", self.base);
        let out = self.run(self.seconds, &[&url]).await?;
        let rate = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no Requests/sec in wrk's output:\n{out}"))?;
        let mut notes: Vec<&str> = out
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("Non-2xx") || l.starts_with("Socket errors"))
            .collect();
        if notes.is_empty() {
            notes.push("all 2xx, no socket errors");
        }
        Ok(Run {
            rate,
            notes: notes.join("; "),
        })
    }

    async fn run(&self, seconds: u64, args: &[&str]) -> Result<String> {
        let mut command = Command::new(&self.program);
        command
            .args([
                "-t1",
                &format!("-c{}", self.connections),
                &format!("-d{seconds}s"),
                "--timeout",
                "30s",
            ])
            .args(args)
            .env("POLL", &self.poll)
            .env("VOTE_SECONDS", self.seconds.to_string())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        // wrk stops by itself after -d; the bound is for a wrk that hangs.
        let limit = Duration::from_secs(seconds + 60);
        let output = tokio::time::timeout(limit, command.output())
            .await
            .with_context(|| format!("wrk still running after {limit:?}"))?
            .with_context(|| format!("cannot run {}", self.program))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() {
            bail!("wrk failed ({}):\n{text}", output.status);
        }
        Ok(text)
    }
}

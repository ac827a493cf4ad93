//! tribune-live: what N open event streams cost a Tribune server.
//!
//! Against a server already running on 127.0.0.1:PORT it measures, in order
//! (after a short run of each load, to warm the server up): the server's
//! memory per open stream; how long a lone vote takes to reach
//! every stream; then `--rounds` rounds of two loads (wrk): a vote flood,
//! while it times how stale the streams run, and GET /healthz, each with
//! the streams open and right after with none (the tool closes them, waits
//! until the server has let them go, and opens them again for the next
//! round). A load's ratio is the median of the rounds': one run of each
//! kind, minutes apart, is at the mercy of whatever else the machine does
//! meanwhile.
//! It prints one table, then a `result key=value …` line, and exits 0 when
//! the goals hold, 1 when not, 2 when it could not measure.
//!
//! Delays are on one clock. A lone vote's runs from just before its request
//! is written until a stream shows a `total_votes` at least the one in the
//! 201 answer. Staleness runs from just before a read of the poll is written
//! until a stream shows a total at least the one read (0 when it already
//! did); a stream still short of it when the flood's wrk run ends counts as
//! stale until then.
//!
//! One thread drives every stream: the tool shares the machine's cores with
//! the server, and a single thread keeps its share small and easy to see.
//!
//! Several instances of Tribune on one database: `--stream-ports A,B` spreads
//! the streams over those ports in turn while the votes still go to `--port`,
//! and `--lone-only` measures only the streams and the lone votes (no wrk
//! load runs), with the lone-vote goal set by `--lone-goal-ms`. Without
//! these options the tool behaves as described above.

#![forbid(unsafe_code)]

mod board;
mod http;
mod procfs;
mod report;
mod scan;
mod streams;
mod wrk;

use std::cell::{Cell, RefCell};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::Parser;
use tokio::task::{JoinSet, LocalSet};
use tokio::time::{MissedTickBehavior, sleep, sleep_until, timeout};

use crate::board::Board;
use crate::report::{Cpu, CpuUse, Figures, Instance, Lone, Ms, Pair, Round};
use crate::streams::Opener;
use crate::wrk::Wrk;

/// Load tool for Tribune's live poll streams (Server-Sent Events).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Port of the server on 127.0.0.1 (the tool talks to loopback only).
    #[arg(long)]
    port: u16,
    /// The server's process id, for its memory (VmRSS) and CPU time; with
    /// several servers, their ids in the order of --stream-ports
    /// (comma-separated; the first is the one on --port).
    #[arg(long, value_delimiter = ',', required = true)]
    server_pid: Vec<u32>,
    /// Ports on 127.0.0.1 to spread the streams over, in turn (comma-separated;
    /// default: --port alone). Votes and reads still go to --port.
    #[arg(long, value_delimiter = ',')]
    stream_ports: Vec<u16>,
    /// Only open the streams and time the lone votes: no wrk load runs.
    #[arg(long)]
    lone_only: bool,
    /// The goal for a lone vote on every stream, p99 in milliseconds.
    #[arg(long, default_value_t = 100.0)]
    lone_goal_ms: f64,
    /// Event streams to open.
    #[arg(long, default_value_t = 1000)]
    streams: usize,
    /// The poll whose events are followed and voted on.
    #[arg(long, default_value = "us-long-term-goals")]
    poll: String,
    /// A page that must still answer 200 while the streams are open.
    #[arg(long, default_value = "/")]
    page: String,
    /// Seconds of each load run (the vote window, and GET /healthz).
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Rounds of the loads (the vote flood, GET /healthz), each with the
    /// streams open and then with none (closed, and opened again for the
    /// next round); a load's ratio is the median of the rounds'.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Seconds after the vote window for the answers in flight (vote.lua's drain).
    #[arg(long, default_value_t = 2)]
    drain: u64,
    /// wrk's connections (one wrk thread).
    #[arg(long, default_value_t = 32)]
    wrk_connections: u32,
    /// The wrk program.
    #[arg(long, default_value = "wrk")]
    wrk: String,
    /// bench/vote.lua, the vote flood's script.
    #[arg(long, default_value = "bench/vote.lua")]
    vote_lua: PathBuf,
    /// Lone votes to time.
    #[arg(long, default_value_t = 30)]
    lone_votes: usize,
    /// Milliseconds from one lone vote to the next.
    #[arg(long, default_value_t = 1500)]
    lone_gap_ms: u64,
    /// How long a lone vote waits for every stream to show it.
    #[arg(long, default_value_t = 5000)]
    lone_timeout_ms: u64,
    /// Also time the lone votes with the streams left unread for this many
    /// milliseconds after each vote is sent (0: not), so that the tool takes
    /// no CPU from the server while it fans the vote out, as readers on
    /// other machines do not; the kernel's receive timestamps still date
    /// each delivery. The lone-vote goal is then held to these figures.
    #[arg(long, default_value_t = 0)]
    hold_reads_ms: u64,
    /// Milliseconds between reads of the poll's true total during the flood.
    #[arg(long, default_value_t = 200)]
    sample_ms: u64,
    /// Streams per source address (127.0.0.2, 127.0.0.3, …).
    #[arg(long, default_value_t = 2000)]
    per_source: usize,
    /// Streams being opened at once.
    #[arg(long, default_value_t = 64)]
    open_concurrency: usize,
    /// Seconds one stream may take to open.
    #[arg(long, default_value_t = 10)]
    open_timeout: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match LocalSet::new().block_on(&runtime, run(args)) {
        Ok(figures) => {
            figures.print();
            ExitCode::from(if figures.pass() { 0 } else { 1 })
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn progress(what: &str) {
    eprintln!("tribune-live: {what}");
}

async fn run(args: Args) -> Result<Figures> {
    ensure!(args.streams > 0, "--streams must be at least 1");
    ensure!(
        args.per_source > 0 && args.open_concurrency > 0,
        "--per-source and --open-concurrency must be at least 1"
    );
    ensure!(
        args.seconds > 0 && args.sample_ms > 0,
        "--seconds and --sample-ms must be at least 1"
    );
    let sources = args.streams.div_ceil(args.per_source);
    ensure!(
        streams::FIRST_SOURCE + sources <= 65_535,
        "{sources} source addresses do not fit in 127.0.0.2-127.0.255.255"
    );
    ensure!(
        args.lone_only || args.vote_lua.is_file(),
        "no vote script at {}",
        args.vote_lua.display()
    );
    let ports = if args.stream_ports.is_empty() {
        vec![args.port]
    } else {
        args.stream_ports.clone()
    };
    ensure!(
        args.server_pid.len() <= ports.len(),
        "{} server ids for {} stream port(s)",
        args.server_pid.len(),
        ports.len()
    );

    let files = raise_open_files(args.streams)?;
    let server = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let poll_path = format!("/api/v1/polls/{}", args.poll);
    let hz = procfs::clock_ticks();
    let server_pid = args.server_pid[0];
    let pid = server_pid.to_string();
    for &p in &args.server_pid {
        procfs::rss_kib(p)?;
    }
    let first = timeout(
        Duration::from_secs(5),
        http::one_shot(server, "GET", &poll_path, None, || {}),
    )
    .await
    .context("the server did not answer in 5 s")?
    .with_context(|| format!("cannot reach the server at {server}"))?;
    ensure!(
        first.status == 200 && first.total.is_some(),
        "GET {poll_path} answered {} without total_votes",
        first.status
    );

    let wrk = Wrk {
        program: args.wrk.clone(),
        vote_lua: args.vote_lua.clone(),
        base: format!("http://{server}"),
        poll: args.poll.clone(),
        connections: args.wrk_connections,
        seconds: args.seconds,
        drain: args.drain,
    };
    let mut figures = Figures {
        streams: args.streams,
        sources,
        files,
        seconds: args.seconds,
        lone_only: args.lone_only,
        lone_goal_ms: args.lone_goal_ms,
        ports: ports.clone(),
        ..Figures::default()
    };

    // 1. No stream open. A short run of each load first, so that what the
    // server keeps for votes and pages (its database's caches, buffers, its
    // allocator's pools) is in place before its memory is taken: what grows
    // after is the streams'.
    if !args.lone_only {
        progress("warming up: a short vote flood and GET /healthz");
        let warm = Wrk {
            seconds: 2,
            drain: 1,
            ..wrk.clone()
        };
        warm.votes().await?;
        warm.healthz().await?;
    }
    figures.rss_before = procfs::rss_kib(server_pid)?;
    let files_before = args
        .server_pid
        .iter()
        .map(|&p| procfs::open_files(p))
        .collect::<Result<Vec<_>>>()?;
    for &p in &args.server_pid {
        figures.instances.push(Instance {
            pid: p,
            rss_before: procfs::rss_kib(p)?,
            ..Instance::default()
        });
    }

    // 2. Open the streams.
    let board = Rc::new(RefCell::new(Board::with_groups(args.streams, ports.len())));
    let servers: Vec<(SocketAddr, Rc<[u8]>)> = ports
        .iter()
        .map(|&p| {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, p));
            (addr, http::stream_request(addr, &args.poll).into())
        })
        .collect();
    let mut streams = Streams {
        board: board.clone(),
        buffers: Rc::new(RefCell::new(streams::ReadBuffers::new())),
        opener: Opener {
            servers: servers.into(),
            per_source: args.per_source,
            concurrency: args.open_concurrency,
            timeout: Duration::from_secs(args.open_timeout),
        },
        count: args.streams,
        tasks: JoinSet::new(),
    };
    progress(&format!(
        "opening {} streams from {sources} source address(es) to {} port(s)",
        args.streams,
        ports.len()
    ));
    (figures.open_seconds, figures.first_event_seconds) = streams.open().await;
    figures.with_first_event = board.borrow().open_with_first_event();
    sleep(Duration::from_secs(1)).await;
    figures.rss_with = procfs::rss_kib(server_pid)?;
    for instance in &mut figures.instances {
        instance.rss_with = procfs::rss_kib(instance.pid)?;
    }
    figures.opened = board.borrow().open;
    figures.opened_by_group = board.borrow().open_by_group();
    {
        let b = board.borrow();
        (figures.refused, figures.failed, figures.first_failure) =
            (b.refused, b.failed, b.first_failure.clone());
    }
    if figures.opened == 0 {
        bail!(
            "no stream opened ({} refused with 503, {} failed{})",
            figures.refused,
            figures.failed,
            figures
                .first_failure
                .as_deref()
                .map(|f| format!(": {f}"))
                .unwrap_or_default()
        );
    }

    // 3. Lone votes.
    progress(&format!(
        "{} lone votes, {} ms apart",
        args.lone_votes, args.lone_gap_ms
    ));
    board.borrow_mut().lag_max = 0;
    let ticks = |p: u32| procfs::cpu_ticks(&p.to_string()).map_or(0, |t| t.0);
    let cpu_now = || -> Vec<u64> { args.server_pid.iter().map(|&p| ticks(p)).collect() };
    let cpu_since = |before: Vec<u64>| -> Vec<f64> {
        let now = cpu_now();
        now.iter()
            .zip(before)
            .map(|(&n, b)| n.saturating_sub(b) as f64 / hz)
            .collect()
    };
    let cpu_before = cpu_now();
    let tool_before = procfs::cpu_ticks("self").map_or(0, |t| t.0);
    let lone_started = Instant::now();
    figures.lone = lone_votes(&args, server, &board, None).await;
    figures.lone_wall = lone_started.elapsed().as_secs_f64();
    figures.lone_tool_cpu = procfs::cpu_ticks("self")
        .map_or(0, |t| t.0)
        .saturating_sub(tool_before) as f64
        / hz;
    for (instance, cpu) in figures.instances.iter_mut().zip(cpu_since(cpu_before)) {
        instance.lone_cpu = cpu;
    }
    figures.lag_lone = board.borrow().lag_max;
    if args.hold_reads_ms > 0 {
        progress(&format!(
            "{} lone votes again, each stream read {} ms after the vote",
            args.lone_votes, args.hold_reads_ms
        ));
        let hold = Duration::from_millis(args.hold_reads_ms);
        figures.hold_ms = args.hold_reads_ms;
        let cpu_before = cpu_now();
        figures.lone_held = Some(lone_votes(&args, server, &board, Some(hold)).await);
        for (instance, cpu) in figures.instances.iter_mut().zip(cpu_since(cpu_before)) {
            instance.held_cpu = cpu;
        }
    }
    figures.page_status = timeout(
        Duration::from_secs(5),
        http::one_shot(server, "GET", &args.page, None, || {}),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .map(|r| r.status);
    figures.page = args.page.clone();
    if args.lone_only {
        streams.count_losses(&mut figures);
        return Ok(figures);
    }

    // 4. The loads, in rounds: with the streams open, then with none.
    board.borrow_mut().lag_max = 0;
    let mut stale = Vec::new();
    let mut rates = Vec::new();
    let rounds = args.rounds.max(1);
    for round in 1..=rounds {
        let open = board.borrow().open;
        progress(&format!("round {round}: vote flood, {open} streams open"));
        let cpu = Cpu::start(&pid);
        let events_before: u64 = board.borrow().events().iter().sum();
        let sampler = sample(&args, server, &poll_path, &board);
        let (live, sampled) = tokio::join!(wrk.votes(), sampler);
        figures.cpu_live = add_cpu(figures.cpu_live, cpu.stop(&pid, hz));
        figures.flood_events += board.borrow().events().iter().sum::<u64>() - events_before;
        {
            let mut b = board.borrow_mut();
            let end = b.now();
            b.close_targets(end);
            let targets = b.take_targets();
            figures.samples += targets.len();
            figures.stale_censored += targets.iter().map(|t| t.censored).sum::<usize>();
            stale.extend(targets.into_iter().flat_map(|t| t.delays));
        }
        figures.read_failures += sampled.failures;
        figures.slowest_read = figures.slowest_read.max(sampled.slowest);
        rates.extend(sampled.rates);
        figures.lag_flood = figures.lag_flood.max(board.borrow().lag_max);
        progress(&format!("round {round}: GET /healthz, {open} streams open"));
        let healthz_live = wrk.healthz().await?;
        if round == 1 {
            figures.rss_after_flood = procfs::rss_kib(server_pid)?;
        }

        progress(&format!("round {round}: closing the streams"));
        let closed = Instant::now();
        streams.close(&mut figures).await;
        wait_released(&args.server_pid, &files_before).await?;
        let released = closed.elapsed().as_secs_f64();
        progress(&format!("round {round}: vote flood, no streams"));
        let cpu = Cpu::start(&pid);
        let votes_base = wrk.votes().await?;
        figures.cpu_base = add_cpu(figures.cpu_base, cpu.stop(&pid, hz));
        progress(&format!("round {round}: GET /healthz, no streams"));
        let healthz_base = wrk.healthz().await?;
        figures.rounds.push(Round {
            votes: Pair {
                live: live?,
                base: votes_base,
            },
            healthz: Pair {
                live: healthz_live,
                base: healthz_base,
            },
            open,
            released,
        });
        if round < rounds {
            progress(&format!("round {round}: opening the streams again"));
            streams.open().await;
        }
    }
    figures.stale = Ms::of(&mut stale);
    figures.events_per_second = spread(&rates);
    // The last round closed the streams: what went wrong with them is counted.
    Ok(figures)
}

/// The tool's streams, and what it takes to open them again.
struct Streams {
    board: Rc<RefCell<Board>>,
    buffers: Rc<RefCell<streams::ReadBuffers>>,
    opener: Opener,
    count: usize,
    tasks: JoinSet<()>,
}

impl Streams {
    /// Opens every stream and waits until each is open, refused or failed,
    /// and every open one has had its first event: gives the seconds to each.
    async fn open(&mut self) -> (f64, f64) {
        let opening = Instant::now();
        self.tasks = streams::open_all(
            self.board.clone(),
            self.buffers.clone(),
            self.opener.clone(),
            self.count,
        )
        .await;
        let limit = Instant::now() + self.opener.timeout + Duration::from_secs(5);
        while self.board.borrow().settled() < self.count && Instant::now() < limit {
            sleep(Duration::from_millis(10)).await;
        }
        let settled = opening.elapsed().as_secs_f64();
        // Each stream's first event is the poll as it is now.
        let limit = Instant::now() + Duration::from_secs(10);
        while self.board.borrow().open_with_first_event() < self.board.borrow().open
            && Instant::now() < limit
        {
            sleep(Duration::from_millis(10)).await;
        }
        (settled, opening.elapsed().as_secs_f64())
    }

    /// Closes every stream (the tool's end of each connection), counting
    /// what went wrong with them first, and leaves the board ready to open
    /// them again.
    async fn close(&mut self, figures: &mut Figures) {
        self.tasks.shutdown().await;
        self.count_losses(figures);
        self.board.borrow_mut().reopen();
    }

    /// Adds what went wrong with the streams since they were opened.
    fn count_losses(&self, figures: &mut Figures) {
        let b = self.board.borrow();
        figures.dropped += b.dropped;
        figures.bad_bodies += b.bad_bodies;
        figures.reads_without_stamp += b.reads_without_stamp;
    }
}

/// Waits until every server holds no more files than it did before the
/// streams were first opened (a few more, for the database and the like):
/// a server that kept the connections of closed streams would spend the next
/// flood without streams writing to them.
async fn wait_released(pids: &[u32], before: &[usize]) -> Result<()> {
    const SLACK: usize = 64;
    const LIMIT: Duration = Duration::from_secs(30);
    let started = Instant::now();
    loop {
        let mut held = Vec::new();
        for (&pid, &was) in pids.iter().zip(before) {
            let now = procfs::open_files(pid)?;
            if now > was + SLACK {
                held.push(format!("{pid}: {now} files, {was} before the streams"));
            }
        }
        if held.is_empty() {
            return Ok(());
        }
        if started.elapsed() > LIMIT {
            bail!(
                "{LIMIT:?} after the tool closed its streams, the server still holds them ({})",
                held.join("; ")
            );
        }
        sleep(Duration::from_millis(50)).await;
    }
}

fn add_cpu(total: Option<CpuUse>, more: Option<CpuUse>) -> Option<CpuUse> {
    match (total, more) {
        (Some(t), Some(m)) => Some(t.plus(m)),
        (t, m) => t.or(m),
    }
}

/// Mean, min and max of some rates.
fn spread(rates: &[f64]) -> Option<(f64, f64, f64)> {
    if rates.is_empty() {
        return None;
    }
    let mean = rates.iter().sum::<f64>() / rates.len() as f64;
    let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let max = rates.iter().copied().fold(0.0, f64::max);
    Some((mean, min, max))
}

/// Raises the soft open-file limit to the hard one; says what it did.
fn raise_open_files(streams: usize) -> Result<String> {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).context("getrlimit")?;
    let now = rlimit::increase_nofile_limit(hard).context("raising the open-file limit")?;
    let mut said = format!("open files: soft limit {soft} -> {now} (hard {hard})");
    // A stream is one file; the runtime, wrk's pipes and the votes need a few more.
    if (now as usize) < streams + 64 {
        said.push_str(&format!(
            "; WARNING: too few for {streams} streams, the last ones will fail"
        ));
    }
    Ok(said)
}

/// Votes one at a time and times how long each takes to reach every stream.
/// With `hold`, the tool's thread reads no stream until `hold` after each
/// vote was sent (see `vote_holding_reads`).
async fn lone_votes(
    args: &Args,
    server: SocketAddr,
    board: &Rc<RefCell<Board>>,
    hold: Option<Duration>,
) -> Lone {
    let path = format!("/api/v1/polls/{}/votes", args.poll);
    let wait = Duration::from_millis(args.lone_timeout_ms);
    let mut lone = Lone {
        votes: args.lone_votes,
        ..Lone::default()
    };
    let mut everyone = Vec::new();
    let mut by_group: Vec<Vec<u32>> = Vec::new();
    let mut each = Vec::new();
    for k in 0..args.lone_votes {
        let started = Instant::now();
        let json = format!("{{\"option\": {}}}", k % 4 + 1);
        let (reply, sent) = match hold {
            Some(hold) => vote_holding_reads(server, &path, &json, wait, hold),
            None => cast_vote(server, &path, &json, wait).await,
        };
        match reply {
            Ok(http::Reply {
                status: 201,
                total: Some(total),
            }) => {
                let at = board.borrow().since_epoch(sent);
                let index = board.borrow_mut().add_target(at, total);
                let deadline = started + wait;
                while board.borrow().target(index).pending > 0 && Instant::now() < deadline {
                    sleep(Duration::from_millis(2)).await;
                }
                let mut b = board.borrow_mut();
                let end = b.now();
                b.close_targets(end);
                let target = b.target(index);
                lone.missed += target.censored;
                if let Some(&slowest) = target.delays.iter().max() {
                    everyone.push(slowest);
                }
                by_group.resize(target.group_max.len(), Vec::new());
                for (group, slowest) in by_group.iter_mut().zip(&target.group_max) {
                    group.extend(*slowest);
                }
                each.extend_from_slice(&target.delays);
                lone.acked += 1;
            }
            Ok(reply) => lone.refused.push(reply.status),
            Err(_) => lone.refused.push(0),
        }
        sleep_until((started + Duration::from_millis(args.lone_gap_ms)).into()).await;
    }
    board.borrow_mut().take_targets();
    lone.all = Ms::of(&mut everyone);
    lone.groups = by_group.iter_mut().map(|g| Ms::of(g)).collect();
    lone.each = Ms::of(&mut each);
    lone
}

/// Casts a vote from a thread of its own while this one, the thread that
/// reads every stream, waits: for the answer, then until `hold` has passed
/// since the vote was sent. No stream is read meanwhile, so the server fans
/// the vote out with the machine's cores to itself, and the kernel's receive
/// timestamps say when each stream had it. Gives the answer and the wall
/// clock when the vote was sent.
fn vote_holding_reads(
    server: SocketAddr,
    path: &str,
    json: &str,
    wait: Duration,
    hold: Duration,
) -> (Result<http::Reply>, Duration) {
    std::thread::scope(|scope| {
        let voter = scope.spawn(|| {
            let (reply, sent) = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(cast_vote(server, path, json, wait)),
                Err(e) => return (Err(e.into()), Duration::ZERO),
            };
            let since = board::wall_clock().saturating_sub(sent);
            std::thread::sleep(hold.saturating_sub(since));
            (reply, sent)
        });
        voter
            .join()
            .unwrap_or_else(|_| (Err(anyhow!("the voting thread panicked")), Duration::ZERO))
    })
}

/// Casts one vote on a new connection; gives the answer and the wall clock
/// just before the request was written.
async fn cast_vote(
    server: SocketAddr,
    path: &str,
    json: &str,
    wait: Duration,
) -> (Result<http::Reply>, Duration) {
    let sent = Cell::new(Duration::ZERO);
    let reply = timeout(
        wait,
        http::one_shot(server, "POST", path, Some(json), || {
            sent.set(board::wall_clock())
        }),
    )
    .await
    .unwrap_or_else(|_| Err(anyhow!("no answer in {wait:?}")));
    (reply, sent.get())
}

struct Sampled {
    failures: usize,
    slowest: Duration,
    /// Events per second of each stream open all through the vote window.
    rates: Vec<f64>,
}

/// During the vote window, reads the poll's true total every `sample_ms` as
/// a target for the streams, and counts the events they get meanwhile.
async fn sample(
    args: &Args,
    server: SocketAddr,
    path: &str,
    board: &Rc<RefCell<Board>>,
) -> Sampled {
    let start = Instant::now();
    let window = Duration::from_secs(args.seconds);
    let (events_before, open_before) = {
        let b = board.borrow();
        (b.events(), b.open_mask())
    };
    let mut sampled = Sampled {
        failures: 0,
        slowest: Duration::ZERO,
        rates: Vec::new(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(args.sample_ms));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if start.elapsed() >= window {
            break;
        }
        let asked = Instant::now();
        let at = Cell::new(0);
        let read = timeout(
            Duration::from_secs(2),
            http::one_shot(server, "GET", path, None, || at.set(board.borrow().now())),
        )
        .await;
        sampled.slowest = sampled.slowest.max(asked.elapsed());
        match read {
            Ok(Ok(http::Reply {
                status: 200,
                total: Some(total),
            })) => {
                board.borrow_mut().add_target(at.get(), total);
            }
            _ => sampled.failures += 1,
        }
    }
    sleep_until((start + window).into()).await;
    let b = board.borrow();
    let events_after = b.events();
    let open_after = b.open_mask();
    sampled.rates = events_after
        .iter()
        .zip(&events_before)
        .zip(open_before.iter().zip(&open_after))
        .filter(|(_, (before, after))| **before && **after)
        .map(|((after, before), _)| (after - before) as f64 / window.as_secs_f64())
        .collect();
    sampled
}

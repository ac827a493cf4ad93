//! The figures of one run, the goals they are held to, and the report.

use std::time::{Duration, Instant};

use crate::procfs;
use crate::wrk::Run;

/// The goals for live streams (bench/live.sh's header says why these; the
/// lone vote's, 100 ms there, is `--lone-goal-ms`).
const MIN_RATIO: f64 = 0.80;
const STALE_P99_MS: f64 = 1000.0;
const MAX_KIB_PER_STREAM: f64 = 24.0;

/// p50, p99 and max of some durations, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct Ms {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub count: usize,
}

impl Ms {
    /// From microseconds; nearest-rank percentiles. None when there are none.
    pub fn of(micros: &mut [u32]) -> Option<Self> {
        if micros.is_empty() {
            return None;
        }
        micros.sort_unstable();
        let rank = |p: f64| {
            let i = ((p / 100.0) * micros.len() as f64).ceil() as usize;
            f64::from(micros[i.clamp(1, micros.len()) - 1]) / 1000.0
        };
        Some(Self {
            p50: rank(50.0),
            p99: rank(99.0),
            max: rank(100.0),
            count: micros.len(),
        })
    }

    fn show(&self) -> String {
        format!(
            "p50 {:.1}  p99 {:.1}  max {:.1} ms",
            self.p50, self.p99, self.max
        )
    }
}

/// CPU seconds used during a load run.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    pub server: f64,
    pub tool: f64,
    pub wrk: f64,
    pub wall: f64,
}

impl CpuUse {
    /// The CPU of two load runs together.
    pub fn plus(self, other: Self) -> Self {
        Self {
            server: self.server + other.server,
            tool: self.tool + other.tool,
            wrk: self.wrk + other.wrk,
            wall: self.wall + other.wall,
        }
    }
}

/// CPU counters at the start of a load run.
pub struct Cpu {
    server: u64,
    tool: (u64, u64),
    at: Instant,
}

impl Cpu {
    pub fn start(server_pid: &str) -> Self {
        Self {
            server: procfs::cpu_ticks(server_pid).map(|t| t.0).unwrap_or(0),
            tool: procfs::cpu_ticks("self").unwrap_or((0, 0)),
            at: Instant::now(),
        }
    }

    /// The tool's children are wrk alone, and it has been waited for.
    pub fn stop(&self, server_pid: &str, hz: f64) -> Option<CpuUse> {
        let server = procfs::cpu_ticks(server_pid).ok()?.0;
        let tool = procfs::cpu_ticks("self").ok()?;
        Some(CpuUse {
            server: server.saturating_sub(self.server) as f64 / hz,
            tool: tool.0.saturating_sub(self.tool.0) as f64 / hz,
            wrk: tool.1.saturating_sub(self.tool.1) as f64 / hz,
            wall: self.at.elapsed().as_secs_f64(),
        })
    }
}

/// One server's memory, and its CPU during the lone votes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Instance {
    pub pid: u32,
    pub rss_before: u64,
    pub rss_with: u64,
    pub lone_cpu: f64,
    /// Its CPU during the lone votes with the reads held back.
    pub held_cpu: f64,
}

/// Lone votes, one at a time, and how long each took to reach the streams.
#[derive(Debug, Default)]
pub struct Lone {
    pub votes: usize,
    pub acked: usize,
    /// Statuses of lone votes not answered 201 (0: no answer).
    pub refused: Vec<u16>,
    /// Deliveries of lone votes that never came within the wait.
    pub missed: usize,
    /// Per vote: until every stream had it.
    pub all: Option<Ms>,
    /// Per vote and stream.
    pub each: Option<Ms>,
    /// Per port: per vote, until every stream on it had it.
    pub groups: Vec<Option<Ms>>,
}

impl Lone {
    /// The delay until every stream had a vote, and how many votes.
    fn all_value(&self) -> String {
        self.all.map_or("-".into(), |m| {
            let missed = if self.missed > 0 {
                format!(", {} deliveries never came", self.missed)
            } else {
                String::new()
            };
            format!("{}  ({} votes{missed})", m.show(), m.count)
        })
    }

    fn answered(&self) -> bool {
        self.acked == self.votes && self.votes > 0
    }
}

/// One load, run with the streams open and then with none.
#[derive(Clone, Debug, Default)]
pub struct Pair {
    pub live: Run,
    pub base: Run,
}

impl Pair {
    fn ratio(&self) -> f64 {
        Figures::ratio(&self.base, &self.live)
    }
}

/// One round of the loads: the vote flood and then GET /healthz with the
/// streams open, the same two right after with none, so that what the
/// machine does besides (its other tenants, its clock speed) weighs on both
/// alike.
#[derive(Clone, Debug, Default)]
pub struct Round {
    pub votes: Pair,
    pub healthz: Pair,
    /// Streams open during the loads with streams.
    pub open: usize,
    /// Seconds the server took to let the closed streams go.
    pub released: f64,
}

/// The rounds' medians of one load: without, with the streams, and of the
/// rounds' ratios (each round's two runs back to back: the fairest ratio
/// this machine can give).
#[derive(Clone, Copy, Debug, Default)]
struct Medians {
    base: f64,
    live: f64,
    ratio: f64,
}

/// The median of some figures (the mean of the middle two when their number is even).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[derive(Debug, Default)]
pub struct Figures {
    /// Only the streams and the lone votes were measured (no load runs).
    pub lone_only: bool,
    pub lone_goal_ms: f64,
    /// The ports the streams were spread over, in turn.
    pub ports: Vec<u16>,
    /// The servers given (`--server-pid`), in the order of `ports`.
    pub instances: Vec<Instance>,
    pub opened_by_group: Vec<usize>,
    /// The lone votes, the streams read as their bytes come.
    pub lone: Lone,
    /// The lone votes again, each stream read `hold_ms` after the vote.
    pub lone_held: Option<Lone>,
    pub hold_ms: u64,
    /// Seconds the lone votes took, and the tool's CPU seconds meanwhile.
    pub lone_wall: f64,
    pub lone_tool_cpu: f64,
    pub streams: usize,
    pub sources: usize,
    pub files: String,
    pub seconds: u64,
    /// The loads' rounds, in order.
    pub rounds: Vec<Round>,
    /// CPU over every round's flood without and with the streams.
    pub cpu_base: Option<CpuUse>,
    pub cpu_live: Option<CpuUse>,
    pub rss_before: u64,
    pub rss_with: u64,
    /// With the streams open, after the first round's loads.
    pub rss_after_flood: u64,
    pub open_seconds: f64,
    pub first_event_seconds: f64,
    pub with_first_event: usize,
    pub opened: usize,
    pub refused: usize,
    pub failed: usize,
    pub first_failure: Option<String>,
    pub dropped: usize,
    pub bad_bodies: usize,
    pub page: String,
    pub page_status: Option<u16>,
    pub samples: usize,
    pub stale_censored: usize,
    pub stale: Option<Ms>,
    pub read_failures: usize,
    pub slowest_read: Duration,
    pub events_per_second: Option<(f64, f64, f64)>,
    pub flood_events: u64,
    /// The longest bytes waited in a socket for the tool, µs.
    pub lag_lone: u64,
    pub lag_flood: u64,
    pub reads_without_stamp: u64,
}

struct Check {
    name: &'static str,
    ok: bool,
}

/// `ok` when the check `name` passed, `FAIL` otherwise.
fn mark_of(checks: &[Check], name: &str) -> &'static str {
    if checks.iter().any(|c| c.name == name && c.ok) {
        "ok"
    } else {
        "FAIL"
    }
}

/// Prints the verdict; gives the checks that failed.
fn print_verdict(checks: &[Check]) -> Vec<&'static str> {
    let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
    if failed.is_empty() {
        println!("verdict: PASS");
    } else {
        println!("verdict: FAIL ({})", failed.join(", "));
    }
    failed
}

/// One figure of a measure, for the `result` line; `NA` when there is none.
fn ms(m: Option<Ms>, f: fn(&Ms) -> f64) -> String {
    m.map_or("NA".into(), |m| format!("{:.1}", f(&m)))
}

impl Figures {
    /// The lone votes the goal is held to: those with the reads held back,
    /// when they were timed.
    fn timed(&self) -> &Lone {
        self.lone_held.as_ref().unwrap_or(&self.lone)
    }

    /// The rows of the lone votes until every stream had them (on `to`):
    /// read at once, and with the reads held back when they were timed; the
    /// goal's mark on the figure it is held to.
    fn lone_rows(&self, to: &str, checks: &[Check]) -> Vec<[String; 4]> {
        let goal = format!("p99 <= {:.0} ms", self.lone_goal_ms);
        let mark = mark_of(checks, "lone-vote latency");
        let Some(held) = &self.lone_held else {
            return vec![[
                format!("lone vote{to}: until every stream has it"),
                self.lone.all_value(),
                goal,
                mark.into(),
            ]];
        };
        vec![
            [
                format!("lone vote{to}, streams read at once: until every stream has it"),
                self.lone.all_value(),
                "(shown)".into(),
                String::new(),
            ],
            [
                format!(
                    "lone vote{to}, streams read {} ms later: until every stream has it",
                    self.hold_ms
                ),
                held.all_value(),
                goal,
                mark.into(),
            ],
        ]
    }

    /// The row of the servers' CPU time per lone vote, with the streams read
    /// at once and held back: what one fan-out costs them.
    /// The lone votes' delay to each stream, every delivery counted.
    fn each_stream_row(&self) -> [String; 4] {
        [
            "lone vote: each stream".into(),
            self.lone.each.map_or("-".into(), |m| {
                format!("{}  ({} deliveries)", m.show(), m.count)
            }),
            String::new(),
            String::new(),
        ]
    }

    fn cpu_per_vote_row(&self) -> [String; 4] {
        let per_vote = |cpu: f64, lone: &Lone| {
            if lone.votes > 0 {
                format!("{:.1}", cpu * 1000.0 / lone.votes as f64)
            } else {
                "-".into()
            }
        };
        let at_once: f64 = self.instances.iter().map(|i| i.lone_cpu).sum();
        let held: f64 = self.instances.iter().map(|i| i.held_cpu).sum();
        [
            "server CPU ms per lone vote: read at once / held".into(),
            format!(
                "{} / {} (the gap between votes included)",
                per_vote(at_once, &self.lone),
                self.lone_held
                    .as_ref()
                    .map_or("-".into(), |h| per_vote(held, h))
            ),
            String::new(),
            String::new(),
        ]
    }

    /// The `result` line's figures of the lone votes read `hold_ms` later.
    fn held_result(&self) -> String {
        let held = self.lone_held.as_ref();
        format!(
            "held_ms={} held_all_p50_ms={} held_all_p99_ms={} held_all_max_ms={} held_each_p99_ms={} held_missed={}",
            self.hold_ms,
            ms(held.and_then(|h| h.all), |m| m.p50),
            ms(held.and_then(|h| h.all), |m| m.p99),
            ms(held.and_then(|h| h.all), |m| m.max),
            ms(held.and_then(|h| h.each), |m| m.p99),
            held.map_or(0, |h| h.missed),
        )
    }

    /// The row of the lone votes' and the page's answers.
    fn answered_row(&self, checks: &[Check]) -> [String; 4] {
        let others = if self.lone.refused.is_empty() {
            String::new()
        } else {
            format!(" (others: {:?}, 0 = no answer)", self.lone.refused)
        };
        [
            "votes and a page, streams open".into(),
            format!(
                "{}/{} lone votes 201{others}; GET {} {}",
                self.lone.acked,
                self.lone.votes,
                self.page,
                self.page_status
                    .map_or("no answer".into(), |s| s.to_string())
            ),
            "all answered".into(),
            mark_of(checks, "votes and page answered").into(),
        ]
    }

    /// The row of the streams that had their first event.
    fn first_event_row(&self) -> [String; 4] {
        [
            "first event (the current poll)".into(),
            format!(
                "{} of {} open streams, by {:.1} s",
                self.with_first_event, self.opened, self.first_event_seconds
            ),
            String::new(),
            String::new(),
        ]
    }

    /// The row of the streams that ended before the run did.
    fn dropped_row(&self, checks: &[Check]) -> [String; 4] {
        let malformed = if self.bad_bodies > 0 {
            format!(" ({} with a malformed body)", self.bad_bodies)
        } else {
            String::new()
        };
        [
            "streams dropped before the end".into(),
            format!("{}{malformed}", self.dropped),
            "0".into(),
            mark_of(checks, "no stream dropped").into(),
        ]
    }

    /// What the reader of the table should know about how it was read.
    fn print_reading_notes(&self) {
        if self.reads_without_stamp > 0 {
            println!(
                "{} reads came without a kernel timestamp and were dated when read",
                self.reads_without_stamp
            );
        }
        if let Some(why) = &self.first_failure {
            println!("first stream that failed to open: {why}");
        }
    }

    fn kib_per_stream(&self) -> Option<f64> {
        if self.instances.len() > 1 {
            // Several servers: what they grew by together, over every stream.
            let grew: f64 = self
                .instances
                .iter()
                .map(|i| i.rss_with as f64 - i.rss_before as f64)
                .sum();
            return (self.opened > 0).then(|| grew / self.opened as f64);
        }
        (self.opened > 0)
            .then(|| (self.rss_with as f64 - self.rss_before as f64) / self.opened as f64)
    }

    fn ratio(base: &Run, live: &Run) -> f64 {
        if base.rate > 0.0 {
            live.rate / base.rate
        } else {
            0.0
        }
    }

    fn medians(&self, load: fn(&Round) -> &Pair) -> Medians {
        let of = |figure: fn(&Pair) -> f64| {
            median(self.rounds.iter().map(|r| figure(load(r))).collect())
        };
        Medians {
            base: of(|p| p.base.rate),
            live: of(|p| p.live.rate),
            ratio: of(Pair::ratio),
        }
    }

    fn votes(&self) -> Medians {
        self.medians(|r| &r.votes)
    }

    fn healthz(&self) -> Medians {
        self.medians(|r| &r.healthz)
    }

    /// A load's ratio in each round, for the result line.
    fn ratios(&self, load: fn(&Round) -> &Pair) -> String {
        let each: Vec<String> = self
            .rounds
            .iter()
            .map(|r| format!("{:.3}", load(r).ratio()))
            .collect();
        each.join(",")
    }

    /// A load's row and its rounds' row.
    fn load_rows(&self, name: &str, load: fn(&Round) -> &Pair, verdict: &str) -> [[String; 4]; 2] {
        let m = self.medians(load);
        let each: Vec<String> = self
            .rounds
            .iter()
            .map(|r| {
                let pair = load(r);
                format!(
                    "{:.0}/{:.0} {:.2}x",
                    pair.live.rate,
                    pair.base.rate,
                    pair.ratio()
                )
            })
            .collect();
        [
            [
                format!("{name}: none -> open ({} rounds)", self.rounds.len()),
                format!(
                    "{:.0} -> {:.0}  (median of the rounds' ratios {:.2}x)",
                    m.base, m.live, m.ratio
                ),
                format!(">= {MIN_RATIO:.2}x"),
                verdict.into(),
            ],
            [
                "  each round: open / none".into(),
                each.join(", "),
                String::new(),
                String::new(),
            ],
        ]
    }

    fn checks(&self) -> Vec<Check> {
        let answered = self.lone.answered()
            && self.lone_held.as_ref().is_none_or(Lone::answered)
            && self.page_status == Some(200);
        let timed = self.timed();
        let lone = Check {
            name: "lone-vote latency",
            ok: timed.missed == 0 && timed.all.is_some_and(|m| m.p99 <= self.lone_goal_ms),
        };
        if self.lone_only {
            return vec![
                Check {
                    name: "every stream open",
                    ok: self.opened == self.streams,
                },
                lone,
                Check {
                    name: "votes and page answered",
                    ok: answered,
                },
                Check {
                    name: "no stream dropped",
                    ok: self.dropped == 0,
                },
            ];
        }
        vec![
            Check {
                name: "memory",
                ok: self
                    .kib_per_stream()
                    .is_some_and(|k| k <= MAX_KIB_PER_STREAM),
            },
            lone,
            Check {
                name: "votes/s",
                ok: !self.rounds.is_empty() && self.votes().ratio >= MIN_RATIO,
            },
            Check {
                name: "healthz req/s",
                ok: !self.rounds.is_empty() && self.healthz().ratio >= MIN_RATIO,
            },
            Check {
                name: "staleness",
                ok: self.stale.is_some_and(|m| m.p99 <= STALE_P99_MS),
            },
            Check {
                name: "votes and page answered",
                ok: answered,
            },
            Check {
                name: "no stream dropped",
                ok: self.dropped == 0,
            },
        ]
    }

    pub fn pass(&self) -> bool {
        self.checks().iter().all(|c| c.ok)
    }

    pub fn print(&self) {
        if self.lone_only {
            self.print_lone();
            return;
        }
        let checks = self.checks();
        let mark = |name: &str| mark_of(&checks, name);
        let mib = |kib: u64| kib as f64 / 1024.0;
        let (votes, healthz) = (self.votes(), self.healthz());
        let kib = self.kib_per_stream();
        let mut rows: Vec<[String; 4]> = vec![
            [
                "streams open / refused (503) / failed".into(),
                format!(
                    "{} / {} / {} of {}, in {:.1} s",
                    self.opened, self.refused, self.failed, self.streams, self.open_seconds
                ),
                String::new(),
                String::new(),
            ],
            self.first_event_row(),
            [
                "server RSS before / with streams / after a flood".into(),
                format!(
                    "{:.1} / {:.1} / {:.1} MiB",
                    mib(self.rss_before),
                    mib(self.rss_with),
                    mib(self.rss_after_flood)
                ),
                String::new(),
                String::new(),
            ],
            [
                "server RSS per open stream".into(),
                kib.map_or("-".into(), |k| format!("{k:.1} KiB")),
                format!("<= {MAX_KIB_PER_STREAM:.0} KiB"),
                mark("memory").into(),
            ],
        ];
        rows.extend(self.lone_rows("", &checks));
        rows.push(self.cpu_per_vote_row());
        rows.push(self.each_stream_row());
        rows.extend(self.load_rows("votes/s", |r| &r.votes, mark("votes/s")));
        rows.extend(self.load_rows("GET /healthz req/s", |r| &r.healthz, mark("healthz req/s")));
        rows.extend([
            [
                "staleness during the vote flood".into(),
                self.stale
                    .map_or("- (no read of the poll succeeded)".into(), |m| {
                        format!(
                            "{}  ({} reads; {} late to the end)",
                            m.show(),
                            self.samples,
                            self.stale_censored
                        )
                    }),
                format!("p99 <= {STALE_P99_MS:.0} ms"),
                mark("staleness").into(),
            ],
            [
                "events per stream per second (flood)".into(),
                self.events_per_second
                    .map_or("-".into(), |(mean, min, max)| {
                        format!("mean {mean:.1}  (min {min:.1}, max {max:.1})")
                    }),
                String::new(),
                String::new(),
            ],
            self.answered_row(&checks),
            self.dropped_row(&checks),
            [
                "tool's read lag: lone votes / flood".into(),
                format!(
                    "max {:.1} / {:.1} ms (not counted in the delays above)",
                    self.lag_lone as f64 / 1000.0,
                    self.lag_flood as f64 / 1000.0
                ),
                String::new(),
                String::new(),
            ],
            [
                "CPU s in the vote flood: server/tool/wrk".into(),
                format!(
                    "{}  ->  {}{}",
                    show_cpu(self.cpu_base),
                    show_cpu(self.cpu_live),
                    self.cpu_live.filter(|_| self.flood_events > 0).map_or(
                        String::new(),
                        |c| format!(
                            "; tool {:.1} us/event",
                            c.tool * 1e6 / self.flood_events as f64
                        )
                    )
                ),
                String::new(),
                String::new(),
            ],
        ]);
        println!();
        println!(
            "tribune-live: {} streams from {} source address(es); load runs of {} s; {}",
            self.streams, self.sources, self.seconds, self.files
        );
        print_table(&rows);
        for (k, round) in self.rounds.iter().enumerate() {
            println!(
                "round {}: {} streams open: votes {}; healthz {}",
                k + 1,
                round.open,
                round.votes.live.notes,
                round.healthz.live.notes
            );
            println!(
                "round {}: none ({:.1} s after closing them): votes {}; healthz {}",
                k + 1,
                round.released,
                round.votes.base.notes,
                round.healthz.base.notes
            );
        }
        self.print_reading_notes();
        println!(
            "reads of the poll during the flood: {} ok, {} failed, slowest {:.0} ms",
            self.samples,
            self.read_failures,
            self.slowest_read.as_secs_f64() * 1000.0
        );
        let failed = print_verdict(&checks);
        println!(
            "result streams={} open={} refused={} failed={} dropped={} rss_kib_per_stream={} \
             lone_all_p50_ms={} lone_all_p99_ms={} lone_all_max_ms={} lone_each_p50_ms={} lone_each_p99_ms={} lone_each_max_ms={} lone_missed={} \
             votes_base={:.0} votes_live={:.0} votes_ratio={:.3} votes_ratios={} healthz_base={:.0} healthz_live={:.0} healthz_ratio={:.3} healthz_ratios={} \
             stale_p50_ms={} stale_p99_ms={} stale_max_ms={} events_per_s={} {} pass={}",
            self.streams,
            self.opened,
            self.refused,
            self.failed,
            self.dropped,
            kib.map_or("NA".into(), |k| format!("{k:.1}")),
            ms(self.lone.all, |m| m.p50),
            ms(self.lone.all, |m| m.p99),
            ms(self.lone.all, |m| m.max),
            ms(self.lone.each, |m| m.p50),
            ms(self.lone.each, |m| m.p99),
            ms(self.lone.each, |m| m.max),
            self.lone.missed,
            votes.base,
            votes.live,
            votes.ratio,
            self.ratios(|r| &r.votes),
            healthz.base,
            healthz.live,
            healthz.ratio,
            self.ratios(|r| &r.healthz),
            ms(self.stale, |m| m.p50),
            ms(self.stale, |m| m.p99),
            ms(self.stale, |m| m.max),
            self.events_per_second
                .map_or("NA".into(), |(mean, _, _)| format!("{mean:.1}")),
            self.held_result(),
            u8::from(failed.is_empty()),
        );
    }
}

impl Figures {
    /// The report of `--lone-only`: the streams, spread over `ports`, and
    /// the lone votes; no load runs, so no votes/s, healthz or staleness.
    fn print_lone(&self) {
        let checks = self.checks();
        let mark = |name: &str| mark_of(&checks, name);
        let mib = |kib: u64| kib as f64 / 1024.0;
        let port = |k: usize| self.ports.get(k).map_or("?".into(), |p| format!(":{p}"));
        let mut rows: Vec<[String; 4]> = vec![
            [
                "streams open / refused (503) / failed".into(),
                format!(
                    "{} / {} / {} of {}, in {:.1} s",
                    self.opened, self.refused, self.failed, self.streams, self.open_seconds
                ),
                "all open".into(),
                mark("every stream open").into(),
            ],
            [
                "streams open per port".into(),
                self.opened_by_group
                    .iter()
                    .enumerate()
                    .map(|(k, n)| format!("{} {n}", port(k)))
                    .collect::<Vec<_>>()
                    .join(", "),
                String::new(),
                String::new(),
            ],
            self.first_event_row(),
        ];
        for (k, instance) in self.instances.iter().enumerate() {
            let open = self.opened_by_group.get(k).copied().unwrap_or(0);
            rows.push([
                format!("server {} RSS before / with streams", port(k)),
                format!(
                    "{:.1} / {:.1} MiB{}",
                    mib(instance.rss_before),
                    mib(instance.rss_with),
                    if open > 0 {
                        format!(
                            ", {:.1} KiB per stream",
                            (instance.rss_with as f64 - instance.rss_before as f64) / open as f64
                        )
                    } else {
                        String::new()
                    }
                ),
                String::new(),
                String::new(),
            ]);
        }
        rows.extend(self.lone_rows(&format!(" (to {})", port(0)), &checks));
        rows.push(self.cpu_per_vote_row());
        if self.lone.groups.len() > 1 {
            for (k, group) in self.lone.groups.iter().enumerate() {
                rows.push([
                    format!("  ... every stream on {}", port(k)),
                    group.map_or("-".into(), |m| m.show()),
                    String::new(),
                    String::new(),
                ]);
            }
        }
        rows.push(self.each_stream_row());
        rows.push(self.answered_row(&checks));
        rows.push(self.dropped_row(&checks));
        rows.push([
            "tool's read lag: lone votes".into(),
            format!(
                "max {:.1} ms (not counted in the delays above)",
                self.lag_lone as f64 / 1000.0
            ),
            String::new(),
            String::new(),
        ]);
        rows.push([
            "CPU s in the lone votes: servers / tool".into(),
            format!(
                "{} / {:.2} in {:.0} s",
                self.instances
                    .iter()
                    .enumerate()
                    .map(|(k, i)| format!("{} {:.2}", port(k), i.lone_cpu))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.lone_tool_cpu,
                self.lone_wall
            ),
            String::new(),
            String::new(),
        ]);
        println!();
        println!(
            "tribune-live: {} streams from {} source address(es) over {} port(s), lone votes only (no load runs); {}",
            self.streams,
            self.sources,
            self.ports.len(),
            self.files
        );
        print_table(&rows);
        self.print_reading_notes();
        let failed = print_verdict(&checks);
        let per_port: String = self
            .lone
            .groups
            .iter()
            .enumerate()
            .map(|(k, g)| {
                let p = self.ports.get(k).copied().unwrap_or(0);
                format!(
                    " lone_port{p}_p50_ms={} lone_port{p}_p99_ms={} lone_port{p}_max_ms={}",
                    ms(*g, |m| m.p50),
                    ms(*g, |m| m.p99),
                    ms(*g, |m| m.max)
                )
            })
            .collect();
        println!(
            "result mode=lone streams={} ports={} open={} refused={} failed={} dropped={} \
             lone_all_p50_ms={} lone_all_p99_ms={} lone_all_max_ms={}{per_port} \
             lone_each_p50_ms={} lone_each_p99_ms={} lone_each_max_ms={} lone_missed={} lone_acked={} {} pass={}",
            self.streams,
            self.ports.len(),
            self.opened,
            self.refused,
            self.failed,
            self.dropped,
            ms(self.lone.all, |m| m.p50),
            ms(self.lone.all, |m| m.p99),
            ms(self.lone.all, |m| m.max),
            ms(self.lone.each, |m| m.p50),
            ms(self.lone.each, |m| m.p99),
            ms(self.lone.each, |m| m.max),
            self.lone.missed,
            self.lone.acked,
            self.held_result(),
            u8::from(failed.is_empty()),
        );
    }
}

/// The table: measure, value, goal, verdict.
fn print_table(rows: &[[String; 4]]) {
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    println!(
        "{:<w0$}  {:<w1$}  {:<w2$}  verdict",
        "measure", "value", "goal"
    );
    println!("{}", "-".repeat(w0 + w1 + w2 + 13));
    for [name, value, goal, verdict] in rows {
        println!("{name:<w0$}  {value:<w1$}  {goal:<w2$}  {verdict}");
    }
}

fn show_cpu(cpu: Option<CpuUse>) -> String {
    cpu.map_or("-".into(), |c| {
        format!(
            "{:.1}/{:.1}/{:.1} in {:.0} s",
            c.server, c.tool, c.wrk, c.wall
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<u32> = (1..=100).map(|x| x * 1000).collect();
        let m = Ms::of(&mut v).unwrap_or_else(|| panic!("none"));
        assert_eq!((m.p50, m.p99, m.max, m.count), (50.0, 99.0, 100.0, 100));
        let m = Ms::of(&mut [7000]).unwrap_or_else(|| panic!("none"));
        assert_eq!((m.p50, m.p99, m.max), (7.0, 7.0, 7.0));
        assert!(Ms::of(&mut []).is_none());
    }
}

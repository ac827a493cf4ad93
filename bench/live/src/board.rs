//! What every stream has seen, and when, against the totals it must reach.
//!
//! A *target* is a total the tool knows the poll had at a moment `at`: the
//! answer to a lone vote, or a read of the poll during the flood. For each
//! open stream the board records how long after `at` the stream first showed
//! a total at least that high. Totals only grow, so each stream walks the
//! targets in order with one index, and one event resolves every target it
//! reaches.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Recent events kept per stream, to date a total the stream had already
/// reached when its target was added (the answer to a vote or a read can
/// arrive after the event it causes).
const RECENT: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamState {
    Opening,
    Open,
    /// The server answered 503: over its cap.
    Refused,
    /// Connecting or the response failed, or another status came.
    Failed,
    /// It was open, then ended or broke.
    Dropped,
}

#[derive(Clone, Debug)]
struct Slot {
    state: StreamState,
    /// The stream's group (the server it is open on, when there are several).
    group: usize,
    events: u64,
    /// The first target this stream has not reached yet.
    next: usize,
    /// (total, µs) of the last events, oldest first once full; `len` valid.
    recent: [(u64, u64); RECENT],
    len: usize,
}

impl Slot {
    fn new(group: usize) -> Self {
        Self {
            state: StreamState::Opening,
            group,
            events: 0,
            next: 0,
            recent: [(0, 0); RECENT],
            len: 0,
        }
    }

    /// When this stream first showed `total` or more, as far as the recent
    /// events tell; when they all do, the oldest one's time (an upper bound).
    fn first_at_least(&self, total: u64) -> Option<u64> {
        self.recent[..self.len]
            .iter()
            .find(|(t, _)| *t >= total)
            .map(|(_, at)| *at)
    }

    fn push(&mut self, total: u64, at: u64) {
        if self.len == RECENT {
            self.recent.rotate_left(1);
            self.len -= 1;
        }
        self.recent[self.len] = (total, at);
        self.len += 1;
    }
}

#[derive(Debug)]
pub struct Target {
    pub at: u64,
    pub total: u64,
    /// Open streams that have not reached it yet.
    pub pending: usize,
    /// Per stream: µs from `at` until it showed the total.
    pub delays: Vec<u32>,
    /// Streams that never reached it before it was closed (their delay is
    /// the time until the close, a lower bound).
    pub censored: usize,
    /// Per group of streams: the longest delay in `delays` (None: no stream
    /// of that group has reached it or been closed yet).
    pub group_max: Vec<Option<u32>>,
}

impl Target {
    fn record(&mut self, group: usize, delay: u32) {
        self.delays.push(delay);
        if let Some(max) = self.group_max.get_mut(group) {
            *max = Some(max.map_or(delay, |m| m.max(delay)));
        }
    }
}

#[derive(Debug)]
pub struct Board {
    /// The wall clock when the board was made: the kernel dates packets by
    /// the wall clock, so the tool's own times are taken on it too.
    epoch: Duration,
    /// The longest a stream's bytes waited in its socket for the tool, in µs.
    pub lag_max: u64,
    slots: Vec<Slot>,
    groups: usize,
    targets: Vec<Target>,
    pub open: usize,
    pub refused: usize,
    pub failed: usize,
    pub dropped: usize,
    /// The first failure's reason, to tell the reader why.
    pub first_failure: Option<String>,
    /// Streams whose body did not parse (counted in `dropped`).
    pub bad_bodies: usize,
    /// Reads the kernel did not date (then the tool's clock dates them).
    pub reads_without_stamp: u64,
}

impl Board {
    #[cfg(test)]
    pub fn new(streams: usize) -> Self {
        Self::with_groups(streams, 1)
    }

    /// Streams in `groups` groups, taken in turn: stream `i` is in group
    /// `i % groups` (the tool spreads streams over servers the same way).
    pub fn with_groups(streams: usize, groups: usize) -> Self {
        let groups = groups.max(1);
        Self {
            epoch: wall_clock(),
            lag_max: 0,
            slots: (0..streams).map(|i| Slot::new(i % groups)).collect(),
            groups,
            targets: Vec::new(),
            open: 0,
            refused: 0,
            failed: 0,
            dropped: 0,
            first_failure: None,
            bad_bodies: 0,
            reads_without_stamp: 0,
        }
    }

    /// A fresh board for the same streams on the same clock, for opening
    /// them again once the tool has closed them all (their tasks are gone).
    pub fn reopen(&mut self) {
        let epoch = self.epoch;
        *self = Self {
            epoch,
            ..Self::with_groups(self.slots.len(), self.groups)
        };
    }

    /// Microseconds since the board was made: the tool's one clock.
    pub fn now(&self) -> u64 {
        self.since_epoch(wall_clock())
    }

    /// A wall-clock time (since 1970) on the board's clock.
    pub fn since_epoch(&self, wall: Duration) -> u64 {
        u64::try_from(wall.saturating_sub(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    pub fn note_lag(&mut self, micros: u64) {
        self.lag_max = self.lag_max.max(micros);
    }

    pub fn settled(&self) -> usize {
        self.open + self.refused + self.failed + self.dropped
    }

    pub fn set_state(&mut self, stream: usize, state: StreamState, why: Option<String>) {
        let old = self.slots[stream].state;
        match old {
            StreamState::Open => self.open -= 1,
            StreamState::Opening => {}
            _ => return,
        }
        match state {
            StreamState::Open => self.open += 1,
            StreamState::Refused => self.refused += 1,
            StreamState::Failed => self.failed += 1,
            StreamState::Dropped => self.dropped += 1,
            StreamState::Opening => {}
        }
        if state == StreamState::Failed && self.first_failure.is_none() {
            self.first_failure = why;
        }
        let slot = &mut self.slots[stream];
        slot.state = state;
        if old == StreamState::Open && state != StreamState::Open {
            // It will never reach the targets it still owed.
            for target in &mut self.targets[slot.next..] {
                target.pending = target.pending.saturating_sub(1);
            }
            slot.next = self.targets.len();
        }
        if state == StreamState::Open {
            slot.next = self.targets.len();
        }
    }

    /// A stream showed `total` at `at`.
    pub fn saw(&mut self, stream: usize, total: u64, at: u64) {
        let slot = &mut self.slots[stream];
        slot.events += 1;
        slot.push(total, at);
        while let Some(target) = self.targets.get_mut(slot.next) {
            if target.total > total {
                break;
            }
            target.record(slot.group, delay(at, target.at));
            target.pending = target.pending.saturating_sub(1);
            slot.next += 1;
        }
    }

    /// The poll had `total` at `at`; streams that already show it are dated now.
    pub fn add_target(&mut self, at: u64, total: u64) -> usize {
        let index = self.targets.len();
        let mut target = Target {
            at,
            total,
            pending: 0,
            delays: Vec::new(),
            censored: 0,
            group_max: vec![None; self.groups],
        };
        for slot in &mut self.slots {
            if slot.state != StreamState::Open || slot.next != index {
                // Behind on an earlier target, so below this one too.
                if slot.state == StreamState::Open {
                    target.pending += 1;
                }
                continue;
            }
            match slot.first_at_least(total) {
                Some(seen) => {
                    target.record(slot.group, delay(seen, at));
                    slot.next += 1;
                }
                _ => target.pending += 1,
            }
        }
        self.targets.push(target);
        index
    }

    pub fn target(&self, index: usize) -> &Target {
        &self.targets[index]
    }

    /// Closes every target at `at`: streams that never reached one count as
    /// late by `at - target.at`.
    pub fn close_targets(&mut self, at: u64) {
        let len = self.targets.len();
        for slot in &mut self.slots {
            if slot.state != StreamState::Open {
                continue;
            }
            for target in &mut self.targets[slot.next..len] {
                target.record(slot.group, delay(at, target.at));
                target.censored += 1;
                target.pending = 0;
            }
            slot.next = len;
        }
    }

    /// Takes the targets of a phase, leaving none.
    pub fn take_targets(&mut self) -> Vec<Target> {
        for slot in &mut self.slots {
            slot.next = 0;
        }
        std::mem::take(&mut self.targets)
    }

    /// Events each stream has had so far (0 for streams never open).
    pub fn events(&self) -> Vec<u64> {
        self.slots.iter().map(|s| s.events).collect()
    }

    /// Which streams are open now.
    pub fn open_mask(&self) -> Vec<bool> {
        self.slots
            .iter()
            .map(|s| s.state == StreamState::Open)
            .collect()
    }

    /// Open streams per group.
    pub fn open_by_group(&self) -> Vec<usize> {
        let mut open = vec![0; self.groups];
        for slot in &self.slots {
            if slot.state == StreamState::Open {
                open[slot.group] += 1;
            }
        }
        open
    }

    /// Open streams that have had at least one event (the current state).
    pub fn open_with_first_event(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.state == StreamState::Open && s.events > 0)
            .count()
    }
}

pub fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn delay(seen: u64, at: u64) -> u32 {
    u32::try_from(seen.saturating_sub(at)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(n: usize) -> Board {
        let mut b = Board::new(n);
        for i in 0..n {
            b.set_state(i, StreamState::Open, None);
        }
        b
    }

    #[test]
    fn a_reopened_board_keeps_its_clock_and_forgets_the_streams() {
        let mut b = board(3);
        b.saw(0, 10, 0);
        b.set_state(2, StreamState::Dropped, None);
        b.add_target(1_000, 11);
        let epoch = b.epoch;
        b.reopen();
        assert_eq!(b.epoch, epoch);
        assert_eq!((b.open, b.dropped, b.settled()), (0, 0, 0));
        assert_eq!(b.events(), vec![0, 0, 0]);
        b.set_state(2, StreamState::Open, None);
        assert_eq!(b.add_target(2_000, 5), 0);
        assert_eq!(b.target(0).pending, 1);
    }

    #[test]
    fn an_event_resolves_every_target_it_reaches() {
        let mut b = board(2);
        b.saw(0, 10, 0);
        b.saw(1, 10, 0);
        let t1 = b.add_target(1_000, 11);
        let t2 = b.add_target(2_000, 12);
        assert_eq!(b.target(t1).pending, 2);
        b.saw(0, 12, 2_500);
        assert_eq!(b.target(t1).delays, vec![1_500]);
        assert_eq!(b.target(t2).delays, vec![500]);
        assert_eq!(b.target(t2).pending, 1);
        b.close_targets(4_000);
        assert_eq!(b.target(t1).delays, vec![1_500, 3_000]);
        assert_eq!(b.target(t2).censored, 1);
    }

    #[test]
    fn a_total_seen_before_its_target_is_dated_by_the_event() {
        let mut b = board(2);
        b.saw(0, 10, 0);
        b.saw(0, 11, 700);
        b.saw(0, 12, 900);
        b.saw(1, 10, 0);
        // The vote was sent at 500; its answer (total 11) arrived after stream 0 had it.
        let t = b.add_target(500, 11);
        assert_eq!(b.target(t).delays, vec![200]);
        assert_eq!(b.target(t).pending, 1);
        // Seen before the read was sent: no staleness.
        let u = b.add_target(5_000, 12);
        assert_eq!(b.target(u).delays, vec![0]);
    }

    #[test]
    fn the_slowest_stream_of_each_group() {
        let mut b = Board::with_groups(4, 2);
        for i in 0..4 {
            b.set_state(i, StreamState::Open, None);
        }
        let t = b.add_target(1_000, 5);
        b.saw(0, 5, 1_100);
        b.saw(2, 5, 1_300);
        b.saw(1, 5, 1_200);
        assert_eq!(b.target(t).group_max, vec![Some(300), Some(200)]);
        b.close_targets(2_000);
        assert_eq!(b.target(t).group_max, vec![Some(300), Some(1_000)]);
        assert_eq!(b.target(t).censored, 1);
    }

    #[test]
    fn a_stream_that_drops_owes_nothing() {
        let mut b = board(2);
        let t = b.add_target(0, 5);
        assert_eq!(b.target(t).pending, 2);
        b.set_state(1, StreamState::Dropped, None);
        assert_eq!(b.target(t).pending, 1);
        assert_eq!((b.open, b.dropped), (1, 1));
        b.saw(0, 5, 10);
        assert_eq!(b.target(t).pending, 0);
        let targets = b.take_targets();
        assert_eq!(targets.len(), 1);
        assert_eq!(b.add_target(20, 5), 0);
    }
}

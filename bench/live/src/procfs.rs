//! Memory and CPU time of processes, from /proc.

use anyhow::{Context, Result};

/// Resident set size of `pid` in KiB (`VmRSS` in /proc/PID/status).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status (is the server's pid right?)"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// CPU time used, in clock ticks: (the process's own user+system, its
/// waited-for children's user+system).
pub fn cpu_ticks(pid: &str) -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces: count fields after it.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(1)
        .take(16)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // utime, stime, cutime, cstime: fields 14-17 of the line, and `fields` starts at field 4.
    let get = |i: usize| fields.get(i).copied().unwrap_or(0);
    Ok((get(10) + get(11), get(12) + get(13)))
}

/// Files `pid` has open (entries in /proc/PID/fd): a server's streams are
/// among them until it lets their connections go.
pub fn open_files(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("cannot read /proc/{pid}/fd"))?
        .count())
}

/// Clock ticks per second (`getconf CLK_TCK`); 100, Linux's USER_HZ, when it cannot say.
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_figures() {
        let rss = rss_kib(std::process::id()).unwrap_or_else(|e| panic!("{e}"));
        assert!(rss > 0);
        assert!(cpu_ticks("self").is_ok());
        assert!(open_files(std::process::id()).is_ok_and(|n| n >= 3));
        assert!(clock_ticks() > 0.0);
    }
}

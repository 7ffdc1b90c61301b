//! CPU pinning, and how much CPU the server's and the generator's threads used.
//!
//! Pinning a thread before it builds a runtime pins the whole runtime: on Linux a new
//! thread inherits its creator's affinity mask, so the runtime's workers, its blocking pool
//! and any thread an engine starts (the SQLite writer) all stay on the chosen core.

use std::collections::HashMap;
use std::path::Path;

/// Pins the calling thread to CPU `core`. Returns false (and leaves the thread unpinned) when
/// the core does not exist or the OS refuses.
pub fn pin_current_thread(core: usize) -> bool {
    let Some(ids) = core_affinity::get_core_ids() else {
        return false;
    };
    match ids.into_iter().find(|c| c.id == core) {
        Some(id) => core_affinity::set_for_current(id),
        None => false,
    }
}

/// How many CPUs the OS lets this process use.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Which threads count as one side (server or generator) in CPU accounting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSet {
    /// The process.
    pub pid: u32,
    /// Thread names (as the kernel keeps them, 15 bytes at most) that belong to the side;
    /// empty means every thread of `pid`.
    pub name_prefixes: Vec<String>,
}

impl ThreadSet {
    /// Threads of this process whose names start with one of `prefixes`.
    pub fn own(prefixes: &[&str]) -> Self {
        Self {
            pid: std::process::id(),
            name_prefixes: prefixes.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Every thread of another process.
    pub fn process(pid: u32) -> Self {
        Self {
            pid,
            name_prefixes: Vec::new(),
        }
    }

    /// CPU time (user + system) used so far by each matching thread, in clock ticks, by
    /// thread id. Threads that end between two samples simply drop out (their time is lost,
    /// which only understates CPU use).
    pub fn sample(&self) -> HashMap<u32, u64> {
        let mut out = HashMap::new();
        let dir = format!("/proc/{}/task", self.pid);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return out;
        };
        for entry in entries.flatten() {
            let Some(tid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some((name, ticks)) = read_stat(&entry.path().join("stat")) {
                if self.name_prefixes.is_empty()
                    || self.name_prefixes.iter().any(|p| name.starts_with(p))
                {
                    out.insert(tid, ticks);
                }
            }
        }
        out
    }
}

/// `(comm, utime + stime)` of one `/proc/.../stat` file.
fn read_stat(path: &Path) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    // The name is in parentheses and may itself contain spaces or parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text[open + 1..close].to_string();
    let fields: Vec<&str> = text[close + 2..].split_whitespace().collect();
    // After the name: state is field 3 (index 0 here); utime and stime are fields 14, 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

/// CPU used between two samples of the same [`ThreadSet`], as a fraction of one core over
/// `seconds` (1.0 = one core fully busy).
pub fn busy_fraction(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>, seconds: f64) -> f64 {
    // USER_HZ is 100 on every Linux that matters here; sysconf needs unsafe code.
    const TICKS_PER_SECOND: f64 = 100.0;
    let ticks: u64 = after
        .iter()
        .map(|(tid, t)| t.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    if seconds <= 0.0 {
        return 0.0;
    }
    ticks as f64 / TICKS_PER_SECOND / seconds
}

/// This process's resident set size in bytes (from `/proc/self/statm`).
pub fn rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_threads_are_sampled() {
        let set = ThreadSet::process(std::process::id());
        assert!(!set.sample().is_empty());
        assert!(rss_bytes().unwrap() > 0);
    }
}

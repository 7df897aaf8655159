//! Readiness: which files in landing/ are complete and may be taken. A file is eligible once
//! it was closed after writing, moved in, or found by a scan; it is ready once its size and
//! modification time have then stayed the same for the settle time. A file that never gets a
//! close (published with `ln`, or by a tool that leaves no close event) becomes ready once it
//! had no event and no change for the quiet time. Pure state: the caller feeds events and the
//! clock, and says how to look at a file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// What a file looked like: size and modification time.
pub type Stamp = (u64, SystemTime);

#[derive(Debug)]
struct Watched {
    /// When the file was first seen (an event or a scan): the start of its drop-to-commit time.
    seen_at: Instant,
    /// Closed after writing, moved in, or found by a scan (no event to wait for).
    eligible: bool,
    last: Option<Stamp>,
    /// When `last` was last seen to change.
    changed_at: Instant,
}

#[derive(Debug)]
pub struct Readiness {
    settle: Duration,
    /// How long a file that was written but never closed must stay without events and
    /// unchanged before it is taken all the same.
    quiet: Duration,
    files: HashMap<PathBuf, Watched>,
}

/// The quiet time until the caller sets one.
const DEFAULT_QUIET: Duration = Duration::from_secs(300);

impl Readiness {
    pub fn new(settle: Duration) -> Self {
        Readiness {
            settle,
            quiet: DEFAULT_QUIET,
            files: HashMap::new(),
        }
    }

    pub fn set_settle(&mut self, settle: Duration) {
        self.settle = settle;
    }

    pub fn set_quiet(&mut self, quiet: Duration) {
        self.quiet = quiet;
    }

    /// Forgets every file not in `present` (the latest listing of landing/), so that entries
    /// whose events were lost cannot pile up.
    pub fn retain(&mut self, present: &std::collections::HashSet<PathBuf>) {
        self.files.retain(|p, _| present.contains(p));
    }

    fn entry(&mut self, path: &Path, now: Instant) -> &mut Watched {
        self.files
            .entry(path.to_path_buf())
            .or_insert_with(|| Watched {
                seen_at: now,
                eligible: false,
                last: None,
                changed_at: now,
            })
    }

    /// The file was created or written to: it is not complete until closed.
    pub fn written(&mut self, path: &Path, now: Instant) {
        let w = self.entry(path, now);
        w.eligible = false;
        w.changed_at = now;
    }

    /// The file was closed after writing, or renamed into landing.
    pub fn completed(&mut self, path: &Path, now: Instant) {
        let w = self.entry(path, now);
        w.eligible = true;
        w.changed_at = now;
    }

    /// A scan saw the file. A file seen for the first time is eligible (its events, if any,
    /// were missed); one already known keeps what its events said.
    pub fn found(&mut self, path: &Path, now: Instant) {
        if !self.files.contains_key(path) {
            self.completed(path, now);
        }
    }

    pub fn forget(&mut self, path: &Path) {
        self.files.remove(path);
    }

    pub fn is_known(&self, path: &Path) -> bool {
        self.files.contains_key(path)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Returns the files that are ready (and stops watching them), oldest modification first,
    /// each with when it was first seen. `stat` gives a file's stamp, or `None` when it is gone.
    pub fn take_ready(
        &mut self,
        now: Instant,
        mut stat: impl FnMut(&Path) -> Option<Stamp>,
    ) -> Vec<(PathBuf, Instant)> {
        let mut ready = Vec::new();
        let mut gone = Vec::new();
        for (path, w) in &mut self.files {
            if !w.eligible {
                // Never closed: taken only after the quiet time without events or changes.
                if now.duration_since(w.changed_at) < self.quiet {
                    continue;
                }
                match stat(path) {
                    None => gone.push(path.clone()),
                    Some(stamp) if w.last == Some(stamp) => ready.push((stamp.1, path.clone())),
                    Some(stamp) => {
                        w.last = Some(stamp);
                        w.changed_at = now;
                    }
                }
                continue;
            }
            match stat(path) {
                None => gone.push(path.clone()),
                Some(stamp) if w.last != Some(stamp) => {
                    w.last = Some(stamp);
                    w.changed_at = now;
                    if self.settle.is_zero() {
                        ready.push((stamp.1, path.clone()));
                    }
                }
                Some(stamp) => {
                    if now.duration_since(w.changed_at) >= self.settle {
                        ready.push((stamp.1, path.clone()));
                    }
                }
            }
        }
        for path in gone {
            self.files.remove(&path);
        }
        ready.sort();
        ready
            .into_iter()
            .filter_map(|(_, path)| {
                let w = self.files.remove(&path)?;
                Some((path, w.seen_at))
            })
            .collect()
    }

    /// When the next eligible file could become ready, for the caller's wait.
    pub fn next_check(&self) -> Option<Instant> {
        self.files
            .values()
            .map(|w| w.changed_at + if w.eligible { self.settle } else { self.quiet })
            .min()
    }
}

/// Groups ready files into batches. Once a file is ready, the batch waits up to the window
/// for others already on their way (closed or moved in, settling), but not for a file that is
/// still being written; while the loader is busy, ready files keep joining the waiting batch.
/// Pure state, like `Readiness`: the caller gives the clock.
#[derive(Debug)]
pub struct Batcher {
    window: Duration,
    files: Vec<(PathBuf, Instant)>,
    names: std::collections::HashSet<PathBuf>,
    deadline: Option<Instant>,
}

impl Batcher {
    pub fn new(window: Duration) -> Self {
        Batcher {
            window,
            files: Vec::new(),
            names: std::collections::HashSet::new(),
            deadline: None,
        }
    }

    pub fn set_window(&mut self, window: Duration) {
        self.window = window;
    }

    /// Adds files that became ready (each with when it was first seen). The first file of a
    /// batch starts its window.
    pub fn add(&mut self, ready: Vec<(PathBuf, Instant)>, now: Instant) {
        for (path, seen_at) in ready {
            if self.names.insert(path.clone()) {
                if self.files.is_empty() {
                    self.deadline = Some(now + self.window);
                }
                self.files.push((path, seen_at));
            }
        }
    }

    /// True when the file waits in this batch (a rescan must not watch it again).
    pub fn contains(&self, path: &Path) -> bool {
        self.names.contains(path)
    }

    /// Takes a file out of the batch (it was removed, renamed away or written to again).
    pub fn remove(&mut self, path: &Path) -> bool {
        if !self.names.remove(path) {
            return false;
        }
        self.files.retain(|(p, _)| p != path);
        if self.files.is_empty() {
            self.deadline = None;
        }
        true
    }

    /// Keeps only the files in `present` (the latest listing of landing/), in one pass
    /// however many are gone.
    pub fn retain(&mut self, present: &std::collections::HashSet<PathBuf>) {
        self.names.retain(|p| present.contains(p));
        self.files.retain(|(p, _)| present.contains(p));
        if self.files.is_empty() {
            self.deadline = None;
        }
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// When the batch is due at the latest (the end of its window), if it has files.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// True when the batch should go now: its window is over, or no other file can become
    /// ready within it (`next_check` is `Readiness::next_check`).
    pub fn due(&self, now: Instant, next_check: Option<Instant>) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        now >= deadline || next_check.is_none_or(|t| t > deadline)
    }

    /// Takes at most `max` files of the batch, in the order they became ready. What is left
    /// keeps the window that already passed, so it is due at once.
    pub fn take(&mut self, max: usize) -> Vec<(PathBuf, Instant)> {
        let n = max.min(self.files.len());
        let taken: Vec<(PathBuf, Instant)> = self.files.drain(..n).collect();
        for (p, _) in &taken {
            self.names.remove(p);
        }
        if self.files.is_empty() {
            self.deadline = None;
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLE: Duration = Duration::from_millis(100);

    /// The paths of what `take_ready` returned, without their first-seen times.
    fn paths(ready: Vec<(PathBuf, Instant)>) -> Vec<PathBuf> {
        ready.into_iter().map(|(p, _)| p).collect()
    }

    fn stamp(size: u64) -> Option<Stamp> {
        Some((size, SystemTime::UNIX_EPOCH + Duration::from_secs(size)))
    }

    #[test]
    fn a_closed_file_is_ready_after_the_settle_time() {
        let t0 = Instant::now();
        let mut r = Readiness::new(SETTLE);
        let p = Path::new("landing/a.jsonl");
        r.written(p, t0);
        assert!(
            r.take_ready(t0 + SETTLE * 5, |_| stamp(10)).is_empty(),
            "still open"
        );
        r.completed(p, t0 + SETTLE * 5);
        assert!(r.take_ready(t0 + SETTLE * 5, |_| stamp(10)).is_empty());
        assert!(r
            .take_ready(t0 + SETTLE * 5 + SETTLE / 2, |_| stamp(10))
            .is_empty());
        assert_eq!(
            paths(r.take_ready(t0 + SETTLE * 6, |_| stamp(10))),
            vec![p.to_path_buf()]
        );
        assert!(r.is_empty());
    }

    #[test]
    fn a_file_that_keeps_changing_is_not_taken() {
        let t0 = Instant::now();
        let mut r = Readiness::new(SETTLE);
        let p = Path::new("a.jsonl");
        r.found(p, t0);
        for i in 0..10 {
            let now = t0 + SETTLE * i;
            assert!(r.take_ready(now, |_| stamp(i as u64)).is_empty());
        }
        assert_eq!(r.take_ready(t0 + SETTLE * 11, |_| stamp(9)).len(), 1);
    }

    #[test]
    fn a_scan_does_not_override_a_write_in_progress() {
        let t0 = Instant::now();
        let mut r = Readiness::new(SETTLE);
        let p = Path::new("a.jsonl");
        r.written(p, t0);
        r.found(p, t0);
        assert!(r.take_ready(t0 + SETTLE * 10, |_| stamp(1)).is_empty());
    }

    #[test]
    fn gone_files_are_dropped_and_ready_ones_come_oldest_first() {
        let t0 = Instant::now();
        let mut r = Readiness::new(SETTLE);
        r.found(Path::new("new"), t0);
        r.found(Path::new("old"), t0);
        r.found(Path::new("gone"), t0);
        let stat = |p: &Path| match p.to_str().unwrap() {
            "new" => stamp(9),
            "old" => stamp(1),
            _ => None,
        };
        r.take_ready(t0, stat);
        assert_eq!(r.len(), 2);
        assert_eq!(
            paths(r.take_ready(t0 + SETTLE, stat)),
            vec![PathBuf::from("old"), PathBuf::from("new")]
        );
    }

    #[test]
    fn next_check_is_the_earliest_settle_or_quiet_deadline() {
        let t0 = Instant::now();
        let mut r = Readiness::new(SETTLE);
        assert_eq!(r.next_check(), None);
        r.written(Path::new("a"), t0);
        // Still open for writing: only the quiet time can make it ready.
        assert_eq!(r.next_check(), Some(t0 + DEFAULT_QUIET));
        r.completed(Path::new("a"), t0 + SETTLE);
        assert_eq!(r.next_check(), Some(t0 + SETTLE * 2));
    }

    /// A file that is written but never closed (published with `ln`) is taken once it had no
    /// event and no change for the quiet time; a write in between starts the wait again.
    #[test]
    fn a_file_never_closed_is_taken_after_the_quiet_time() {
        let t0 = Instant::now();
        let mut r = Readiness::new(SETTLE);
        r.set_quiet(Duration::from_secs(10));
        let p = Path::new("/l/linked.jsonl");
        let st = (5, SystemTime::UNIX_EPOCH);
        r.written(p, t0);
        assert!(r
            .take_ready(t0 + Duration::from_secs(5), |_| Some(st))
            .is_empty());
        // First look after the quiet time records the stamp; it must then stay the same.
        assert!(r
            .take_ready(t0 + Duration::from_secs(11), |_| Some(st))
            .is_empty());
        r.written(p, t0 + Duration::from_secs(12));
        assert!(r
            .take_ready(t0 + Duration::from_secs(21), |_| Some(st))
            .is_empty());
        assert_eq!(
            paths(r.take_ready(t0 + Duration::from_secs(22), |_| Some(st))),
            vec![p.to_path_buf()]
        );
        assert!(r.is_empty());
    }

    #[test]
    fn entries_no_longer_listed_are_forgotten() {
        let t0 = Instant::now();
        let mut r = Readiness::new(SETTLE);
        r.written(Path::new("/l/a.jsonl"), t0);
        r.written(Path::new("/l/b.jsonl"), t0);
        let present: std::collections::HashSet<PathBuf> =
            [PathBuf::from("/l/b.jsonl")].into_iter().collect();
        r.retain(&present);
        assert_eq!(r.len(), 1);
        assert!(r.is_known(Path::new("/l/b.jsonl")));
    }

    const WINDOW: Duration = Duration::from_millis(500);

    fn ready(names: &[&str], seen: Instant) -> Vec<(PathBuf, Instant)> {
        names.iter().map(|n| (PathBuf::from(n), seen)).collect()
    }

    #[test]
    fn a_lone_ready_file_goes_at_once_when_nothing_else_is_on_its_way() {
        let t0 = Instant::now();
        let mut b = Batcher::new(WINDOW);
        assert!(!b.due(t0, None), "an empty batch is never due");
        b.add(ready(&["a"], t0), t0);
        assert_eq!(b.deadline(), Some(t0 + WINDOW));
        assert!(b.due(t0, None));
        // A file that settles only after the window does not hold the batch either.
        assert!(b.due(t0, Some(t0 + WINDOW * 2)));
    }

    #[test]
    fn the_batch_waits_within_its_window_for_a_file_settling_and_no_longer() {
        let t0 = Instant::now();
        let mut b = Batcher::new(WINDOW);
        b.add(ready(&["a"], t0), t0);
        let settles = Some(t0 + WINDOW / 2);
        assert!(!b.due(t0, settles));
        // The second file joins without moving the deadline.
        b.add(ready(&["b"], t0), t0 + WINDOW / 2);
        assert_eq!(b.deadline(), Some(t0 + WINDOW));
        // Another keeps settling, but the window is over.
        assert!(!b.due(t0 + WINDOW / 2, Some(t0 + WINDOW)));
        assert!(b.due(t0 + WINDOW, Some(t0 + WINDOW)));
        let taken: Vec<PathBuf> = b.take(10).into_iter().map(|(p, _)| p).collect();
        assert_eq!(taken, [PathBuf::from("a"), PathBuf::from("b")]);
        assert!(b.is_empty() && b.deadline().is_none() && !b.contains(Path::new("a")));
    }

    #[test]
    fn a_file_is_in_the_batch_once_and_leaves_it_when_removed() {
        let t0 = Instant::now();
        let mut b = Batcher::new(WINDOW);
        b.add(ready(&["a", "a"], t0), t0);
        b.add(ready(&["a"], t0), t0 + WINDOW);
        assert_eq!(b.len(), 1);
        assert!(b.contains(Path::new("a")));
        assert!(b.remove(Path::new("a")));
        assert!(!b.remove(Path::new("a")));
        assert!(b.deadline().is_none(), "an emptied batch has no deadline");
        // The next file starts a window of its own.
        b.add(ready(&["c"], t0), t0 + WINDOW * 3);
        assert_eq!(b.deadline(), Some(t0 + WINDOW * 4));
    }

    /// A backlog is taken `max` files at a time, oldest first; the rest is due at once.
    #[test]
    fn a_backlog_is_taken_in_capped_steps() {
        let t0 = Instant::now();
        let mut b = Batcher::new(WINDOW);
        b.add(ready(&["a", "b", "c", "d", "e"], t0), t0);
        let names = |v: Vec<(PathBuf, Instant)>| -> Vec<PathBuf> {
            v.into_iter().map(|(p, _)| p).collect()
        };
        assert_eq!(names(b.take(2)), [PathBuf::from("a"), PathBuf::from("b")]);
        assert!(!b.contains(Path::new("a")) && b.contains(Path::new("c")));
        assert!(b.due(t0 + WINDOW, None), "the rest is due");
        let present = ["c", "e"].iter().map(PathBuf::from).collect();
        b.retain(&present);
        assert_eq!(names(b.take(2)), [PathBuf::from("c"), PathBuf::from("e")]);
        assert!(b.is_empty() && b.deadline().is_none());
    }
}

//! Admission and ordering of runs: one at a time per thread, at most N at once overall, a bounded
//! queue beyond that. Each admitted run gets a position it can watch; 0 means "start now".

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use tokio::sync::watch;

pub struct Scheduler {
    inner: Mutex<Inner>,
}

struct Inner {
    max_running: usize,
    queue_limit: usize,
    /// Started runs, each with the thread it holds.
    running: HashMap<String, String>,
    busy_threads: HashSet<String>,
    pending: VecDeque<Pending>,
}

struct Pending {
    run_id: String,
    thread: String,
    position: watch::Sender<usize>,
}

/// A run's place: watch `position` until it reads 0, then start; call [`Scheduler::finish`] after.
pub struct Admission {
    pub position: watch::Receiver<usize>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct QueueFull {
    pub waiting: usize,
}

impl Scheduler {
    pub fn new(max_running: usize, queue_limit: usize) -> Self {
        Scheduler {
            inner: Mutex::new(Inner {
                max_running,
                queue_limit,
                running: HashMap::new(),
                busy_threads: HashSet::new(),
                pending: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_limits(&self, max_running: usize, queue_limit: usize) {
        let mut g = self.lock();
        g.max_running = max_running;
        g.queue_limit = queue_limit;
        g.pump();
    }

    /// Admits a run for `thread`, or refuses when it would have to wait and the queue is full.
    pub fn admit(&self, run_id: &str, thread: &str) -> Result<Admission, QueueFull> {
        let mut g = self.lock();
        let can_start_now = g.pending.is_empty()
            && g.running.len() < g.max_running
            && !g.busy_threads.contains(thread);
        if !can_start_now && g.pending.len() >= g.queue_limit {
            return Err(QueueFull {
                waiting: g.pending.len(),
            });
        }
        let (tx, rx) = watch::channel(usize::MAX);
        g.pending.push_back(Pending {
            run_id: run_id.into(),
            thread: thread.into(),
            position: tx,
        });
        g.pump();
        Ok(Admission { position: rx })
    }

    /// Releases a started run's slot and the thread it holds.
    pub fn finish(&self, run_id: &str) {
        let mut g = self.lock();
        if let Some(thread) = g.running.remove(run_id) {
            g.busy_threads.remove(&thread);
        }
        g.pump();
    }

    /// The run now belongs to `thread`: a channel-level prompt is admitted before its thread
    /// exists (under a key of its own) and moves to the thread once its root is posted, so that a
    /// reply there waits for it instead of resuming the same session beside it.
    pub fn rekey(&self, run_id: &str, thread: &str) {
        let mut g = self.lock();
        let g = &mut *g;
        if let Some(held) = g.running.get_mut(run_id) {
            g.busy_threads.remove(held.as_str());
            *held = thread.to_string();
            g.busy_threads.insert(thread.to_string());
        } else if let Some(p) = g.pending.iter_mut().find(|p| p.run_id == run_id) {
            p.thread = thread.to_string();
        }
        g.pump();
    }

    /// Takes a waiting run out of the queue. False if it was not waiting (already started or gone).
    pub fn withdraw(&self, run_id: &str) -> bool {
        let mut g = self.lock();
        let before = g.pending.len();
        g.pending.retain(|p| p.run_id != run_id);
        let removed = g.pending.len() != before;
        g.pump();
        removed
    }

    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let g = self.lock();
        (
            g.running.len(),
            g.pending.len(),
            g.max_running,
            g.queue_limit,
        )
    }
}

impl Inner {
    /// Starts whatever may start, in queue order, and renumbers the rest.
    fn pump(&mut self) {
        let mut i = 0;
        while i < self.pending.len() {
            if self.running.len() >= self.max_running {
                break;
            }
            if self.busy_threads.contains(&self.pending[i].thread) {
                i += 1;
                continue;
            }
            let p = self.pending.remove(i).expect("index in range");
            self.running.insert(p.run_id.clone(), p.thread.clone());
            self.busy_threads.insert(p.thread.clone());
            let _ = p.position.send(0);
        }
        for (n, p) in self.pending.iter().enumerate() {
            p.position.send_if_modified(|v| {
                let changed = *v != n + 1;
                *v = n + 1;
                changed
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(a: &Admission) -> usize {
        *a.position.borrow()
    }

    #[test]
    fn one_run_per_thread_and_a_global_limit() {
        let s = Scheduler::new(2, 10);
        let a = s.admit("a", "t1").unwrap();
        let b = s.admit("b", "t1").unwrap();
        let c = s.admit("c", "t2").unwrap();
        let d = s.admit("d", "t3").unwrap();
        assert_eq!((pos(&a), pos(&b), pos(&c), pos(&d)), (0, 1, 0, 2));
        s.finish("a");
        assert_eq!((pos(&b), pos(&d)), (0, 1));
        s.finish("c");
        assert_eq!(pos(&d), 0);
    }

    #[test]
    fn a_run_moved_to_its_thread_holds_that_thread() {
        let s = Scheduler::new(4, 10);
        // A channel-level prompt, admitted before its thread exists, then its root is posted.
        let a = s.admit("a", "new:a").unwrap();
        assert_eq!(pos(&a), 0);
        s.rekey("a", "root-1");
        // A reply in that thread waits for it.
        let b = s.admit("b", "root-1").unwrap();
        assert_eq!(pos(&b), 1);
        s.finish("a");
        assert_eq!(pos(&b), 0);
        // Moved while still queued: the queued run takes its new thread when it starts.
        let s = Scheduler::new(1, 10);
        let _x = s.admit("x", "t-x").unwrap();
        let c = s.admit("c", "new:c").unwrap();
        s.rekey("c", "root-2");
        let d = s.admit("d", "root-2").unwrap();
        assert_eq!((pos(&c), pos(&d)), (1, 2));
        s.finish("x");
        assert_eq!((pos(&c), pos(&d)), (0, 1));
        s.finish("c");
        assert_eq!(pos(&d), 0);
    }

    #[test]
    fn refuses_beyond_the_queue_limit_and_withdraws() {
        let s = Scheduler::new(1, 1);
        let _a = s.admit("a", "t1").unwrap();
        let b = s.admit("b", "t2").unwrap();
        assert_eq!(s.admit("c", "t3").err(), Some(QueueFull { waiting: 1 }));
        assert!(s.withdraw("b"));
        assert!(!s.withdraw("b"));
        drop(b);
        let c = s.admit("c", "t3").unwrap();
        assert_eq!(pos(&c), 1);
        assert_eq!(s.counts(), (1, 1, 1, 1));
    }
}

//! The control thread's doorbell: how a reactor that left a message in its mailbox tells the
//! control thread, so the control thread sleeps until it has something to do instead of waking
//! every millisecond to look. On a machine where the control thread shares a core with a
//! busy-polling reactor, each of those looks preempted the reactor; and a request that waits
//! for the control thread (a thin allocation, a degraded mirror's write log) no longer waits
//! for the next look.
//!
//! Rings coalesce: between two answers, only the first ring calls the notifier, so a reactor
//! sending many messages costs one notification (one system call at most), not one each.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Shared by every reactor (they ring it) and the control thread (it answers it).
pub struct Doorbell {
    rung: AtomicBool,
    notify: Box<dyn Fn() + Send + Sync>,
}

impl Doorbell {
    /// A doorbell that calls `notify` on the ringing thread when a ring is the first since the
    /// last answer; `notify` must not block (it wakes the control thread, e.g. with a channel
    /// message).
    pub fn new(notify: impl Fn() + Send + Sync + 'static) -> Arc<Doorbell> {
        Arc::new(Doorbell {
            rung: AtomicBool::new(false),
            notify: Box::new(notify),
        })
    }

    /// A doorbell nobody listens to, for a control thread that polls the mailboxes on its own.
    pub fn unheard() -> Arc<Doorbell> {
        Doorbell::new(|| {})
    }

    /// Reactor side: call after a message was queued for the control thread.
    pub fn ring(&self) {
        // Acquire-release on both sides: if the control thread's answer reads this ring's
        // `true`, the message queued before it is visible to the drain that follows the answer;
        // if the answer came first, this swap reads its `false` and notifies.
        if !self.rung.swap(true, Ordering::AcqRel) {
            (self.notify)();
        }
    }

    /// Control side: call before draining the mailboxes. Returns whether a ring came since
    /// the last answer.
    pub fn answer(&self) -> bool {
        self.rung.swap(false, Ordering::AcqRel)
    }
}

impl std::fmt::Debug for Doorbell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doorbell")
            .field("rung", &self.rung.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counting() -> (Arc<Doorbell>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let bell = Doorbell::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        (bell, calls)
    }

    #[test]
    fn rings_between_two_answers_notify_once() {
        let (bell, calls) = counting();
        bell.ring();
        bell.ring();
        bell.ring();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(bell.answer());
        assert!(!bell.answer(), "the answer cleared the ring");
        bell.ring();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "a ring after an answer notifies again"
        );
    }

    #[test]
    fn every_message_is_seen_by_a_drain_after_a_notification() {
        // A producer queues messages and rings; the consumer waits for notifications, answers,
        // then drains. Whatever the interleaving, no message is left behind after the producer
        // stops: its last ring either notified or was answered by a drain that saw the message.
        use std::sync::mpsc;
        let queue = Arc::new(crossbeam_queue::ArrayQueue::<u32>::new(4096));
        let (tx, rx) = mpsc::channel::<()>();
        let tx = std::sync::Mutex::new(tx);
        let bell = Doorbell::new(move || {
            let _ = tx.lock().unwrap().send(());
        });
        let producer = {
            let (queue, bell) = (queue.clone(), bell.clone());
            std::thread::spawn(move || {
                for i in 0..4000 {
                    queue.push(i).unwrap();
                    bell.ring();
                }
            })
        };
        let mut seen = 0;
        while seen < 4000 {
            rx.recv_timeout(std::time::Duration::from_secs(30))
                .expect("a notification for every undrained message");
            bell.answer();
            while queue.pop().is_some() {
                seen += 1;
            }
        }
        producer.join().unwrap();
        assert_eq!(seen, 4000);
        assert!(queue.is_empty());
    }
}

//! SIGINT/SIGTERM handling without signal handlers: the signals are blocked in every thread
//! (the mask is set before any thread starts and inherited), and one thread takes them with
//! `sigwait`.

use nix::sys::signal::{SigSet, Signal};

/// The blocked termination signals.
#[derive(Debug)]
pub struct Signals {
    set: SigSet,
}

impl Signals {
    /// Block SIGINT and SIGTERM in the calling thread (and every thread it starts later).
    pub fn block() -> nix::Result<Signals> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        set.thread_block()?;
        Ok(Signals { set })
    }

    /// Wait for the next termination signal.
    pub fn wait(&self) -> nix::Result<Signal> {
        loop {
            match self.set.wait() {
                Err(nix::errno::Errno::EINTR) => continue,
                other => return other,
            }
        }
    }
}

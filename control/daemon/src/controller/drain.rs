//! Waiting for the reactors to drain older table generations without blocking the data plane:
//! the control thread keeps serving the reactors' requests while it waits (a command waiting
//! for its answer keeps its generation pinned), and gives up after [`DRAIN_TIMEOUT`]. Pool slots
//! released by a change become free here, once every generation that could still write into
//! them has drained.

use std::time::{Duration, Instant};

use super::Controller;
use crate::error::ControlError;

/// How long an RPC waits for commands planned on older generations to complete.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the drain is looked at while waiting.
const DRAIN_POLL_INTERVAL: Duration = Duration::from_micros(200);

impl Controller {
    /// Return once no in-flight command uses a generation older than `generation`, serving the
    /// data plane's requests meanwhile.
    pub(super) fn wait_drained_serving(&mut self, generation: u64) -> Result<(), ControlError> {
        let started = Instant::now();
        loop {
            self.serve_data_plane();
            if self.publisher.is_drained(generation) {
                self.release_drained_slots();
                return Ok(());
            }
            if started.elapsed() >= self.drain_timeout {
                return Err(ControlError::Drain(format!(
                    "commands planned on table generations before {generation} did not complete within {} s",
                    self.drain_timeout.as_secs_f64()
                )));
            }
            std::thread::sleep(DRAIN_POLL_INTERVAL);
        }
    }

    /// Free the released pool slots whose generation has drained (never waits).
    pub(super) fn release_drained_slots(&mut self) {
        if !self.ledgers.any_pending() {
            return;
        }
        let publisher = &mut self.publisher;
        self.ledgers
            .release_drained(&mut |generation| publisher.is_drained(generation));
    }
}

//! What bounds one instance: its deadline, its memory, its request body; and how a
//! call that hit a bound is told apart from one that failed on its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};

use crate::telemetry::Throttle;

/// How long a request waits for its component to have a free slot: enough to ride
/// out a burst, short enough that a client under a flood hears back at once.
pub const SLOT_WAIT: Duration = Duration::from_secs(1);
/// How often, at most, the log says that a component turned requests away.
const CAPACITY_LOG_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
pub struct RequestLimits {
    /// The deadline of a message, and of a request whose route sets none.
    pub timeout: Duration,
    pub max_memory_bytes: usize,
    pub max_request_body_bytes: u64,
    pub reuse: InstanceReuse,
}

/// How a WASI 0.3 component's instances are reused; a WASI 0.2 instance serves one
/// request. Named and defaulted as Spin 4's settings are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceReuse {
    /// Requests one instance serves in all before it is dropped.
    pub max_requests: usize,
    /// Requests one instance serves at once.
    pub max_concurrent: usize,
    /// How long an instance with nothing to do is kept for the next request.
    pub idle_timeout: Duration,
}

/// Why a call into an instance ended in an error rather than a result.
#[derive(Debug)]
pub enum Stopped {
    /// The deadline passed (the epoch interrupt fired).
    Timeout,
    /// The instance asked for more memory than its limit, and failed for it.
    MemoryExceeded { max_bytes: usize },
    Trap(anyhow::Error),
}

impl Stopped {
    pub fn of(error: wasmtime::Error, memory: &MemoryCap) -> Stopped {
        if memory.exceeded() {
            return Stopped::MemoryExceeded { max_bytes: memory.max_bytes() };
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Stopped::Timeout,
            _ => Stopped::Trap(error.into()),
        }
    }
}

/// The text of a failure as the log and a problem document show it: a trap's own
/// message (with its wasm backtrace), else the innermost cause.
pub fn root_cause(error: &anyhow::Error) -> String {
    match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string(),
    }
}

/// Sets `store`'s wall-clock deadline, enforced through epoch interruption: the guest
/// yields to the executor every tick, so a busy guest never starves other requests on
/// the same worker thread, and traps once the deadline has passed.
pub fn set_deadline<T>(store: &mut Store<T>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
}

/// Makes a reused instance's guest yield to the executor every tick and never
/// interrupts it: such an instance serves several requests, each with its own
/// deadline, which the trigger enforces (dropping the instance when one passes).
pub fn yield_every_tick<T>(store: &mut Store<T>) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
}

/// Caps one instance's linear memory. A refused `memory.grow` makes the guest's
/// allocator fail (and a Rust guest abort), which the trigger reports as the
/// component exceeding its memory limit rather than as an unexplained trap.
pub struct MemoryCap {
    max_bytes: usize,
    exceeded: bool,
}

impl MemoryCap {
    pub fn new(max_bytes: usize) -> MemoryCap {
        MemoryCap { max_bytes, exceeded: false }
    }

    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// The instances one component may have serving requests at once.
pub struct Slots {
    free: Arc<Semaphore>,
    size: usize,
    refusals: Throttle,
}

impl Slots {
    pub fn new(size: usize) -> Slots {
        Slots { free: Arc::new(Semaphore::new(size)), size, refusals: Throttle::new(CAPACITY_LOG_INTERVAL) }
    }

    /// A slot, held until the instance it is for has ended; waits a little for one
    /// (in arrival order) when all are taken.
    pub async fn take(&self, component: &str) -> Result<OwnedSemaphorePermit, Busy> {
        match tokio::time::timeout(SLOT_WAIT, self.free.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Timed out (the semaphore is never closed).
            _ => {
                if let Some(refused) = self.refusals.hit() {
                    tracing::warn!(
                        component = %component,
                        "component at its {} live instances (limits.max_instances_per_component): {refused} request(s) answered 503",
                        self.size
                    );
                }
                Err(Busy { slots: self.size })
            }
        }
    }
}

/// A component at its [`Slots`]: every one of them serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub slots: usize,
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "all {} instances of the component are serving", self.slots)
    }
}

impl std::error::Error for Busy {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_component_at_its_slots_turns_the_next_request_away() {
        let slots = Slots::new(1);
        let held = slots.take("c").await;
        assert!(held.is_ok());
        assert_eq!(slots.take("c").await.err(), Some(Busy { slots: 1 }));
        drop(held);
        assert!(slots.take("c").await.is_ok());
    }
}

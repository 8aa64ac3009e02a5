//! Operations (`estore:platform/operations`): the platform's own controls, for a
//! component whose manifest entry says `allow_operations = true`, such as the store's
//! console. It sees what `estore components` shows, rolls back as `estore rollback`
//! does, and reads and replays dead letters.
//!
//! The grant is the host's only check: the component decides which of its callers may
//! use it (the store's console serves administrators only).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use estore_bus::dead_letters::{DLQ_ATTEMPTS, DLQ_COMPONENT, DLQ_ERROR, DLQ_ORIGIN, dead_letter_topic};
use estore_bus::{Bus, BusError, Delivery, Outgoing, Position, Read};
use wasmtime::component::{HasData, Linker};

pub use bindings::estore::platform::operations;
use operations::{Component, DeadLetter, Error, Host, Version};

/// The interface's bindings, generated here so this crate alone implements them.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../../wit",
        inline: "package estore:operations-host; world host { import estore:platform/operations@0.1.0; }",
        imports: { default: async | trappable },
    });
}

/// A future the platform answers with.
pub type Answer<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the host's own controls do, as the admin API does them for `estore
/// components` and `estore rollback`: implemented there, so this capability needs
/// nothing of the admin but this.
pub trait Platform: Send + Sync {
    /// Every running component, with its versions.
    fn components(&self) -> Answer<'_, Vec<Component>>;
    /// Returns `id` to the version before the one serving; the version it serves now.
    fn rollback<'a>(&'a self, id: &'a str) -> Answer<'a, Result<Version, Error>>;
}

/// The most dead letters one call returns.
const MAX_DEAD_LETTERS: u32 = 500;
/// How long a replay waits for the bus to take the message.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the granted components reach. The admin side exists only once every component
/// is loaded, so it is connected after start ([`Operations::connect`]).
pub struct Operations {
    platform: OnceLock<Arc<dyn Platform>>,
    bus: Option<Bus>,
}

impl Operations {
    pub fn new(bus: Option<Bus>) -> Arc<Operations> {
        Arc::new(Operations { platform: OnceLock::new(), bus })
    }

    pub fn connect(&self, platform: Arc<dyn Platform>) {
        let _ = self.platform.set(platform);
    }

    fn platform(&self) -> Result<&dyn Platform, Error> {
        self.platform.get().map(Arc::as_ref).ok_or_else(|| Error::Unavailable("the host is still starting".into()))
    }

    fn bus(&self) -> Result<&Bus, Error> {
        self.bus.as_ref().ok_or_else(|| Error::NotFound("this application runs no event bus, so it has no dead letters".into()))
    }
}

/// What the interface's calls reach of an instance: the controls, when its component
/// may use them (`allow_operations = true`).
pub struct OperationsView<'a> {
    pub component: &'a Arc<str>,
    pub operations: Option<&'a Arc<Operations>>,
}

struct HasOperations;

impl HasData for HasOperations {
    type Data<'a> = OperationsView<'a>;
}

/// Adds `estore:platform/operations` to `linker`, served by the view `view` gives of
/// the embedder's state.
pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> OperationsView<'_>) -> wasmtime::Result<()> {
    operations::add_to_linker::<T, HasOperations>(linker, view)
}

impl Host for OperationsView<'_> {
    async fn components(&mut self) -> wasmtime::Result<Result<Vec<Component>, Error>> {
        Ok(self.caller().list_components().await)
    }

    async fn rollback(&mut self, id: String) -> wasmtime::Result<Result<Version, Error>> {
        Ok(self.caller().roll_back(&id).await)
    }

    async fn dead_letters(&mut self, topic: String, limit: u32) -> wasmtime::Result<Result<Vec<DeadLetter>, Error>> {
        Ok(self.caller().read_dead_letters(&topic, limit).await)
    }

    async fn replay(&mut self, topic: String, partition: u32, offset: u64) -> wasmtime::Result<Result<u64, Error>> {
        Ok(self.caller().replay_dead_letter(&topic, Position { partition, offset }).await)
    }
}

impl OperationsView<'_> {
    fn caller(&self) -> Caller {
        Caller { operations: self.operations.cloned(), component: self.component.clone() }
    }
}

/// The component calling, with its grant: what the calls need of the instance's state,
/// which they cannot hold across their awaits.
struct Caller {
    operations: Option<Arc<Operations>>,
    component: Arc<str>,
}

impl Caller {
    fn operations(&self) -> Result<Arc<Operations>, Error> {
        self.operations.clone().ok_or_else(|| {
            tracing::warn!(component = %self.component, "denied platform operations: no `allow_operations = true`");
            Error::NotAllowed(format!(
                "component `{}` may not run platform operations (grant it with `allow_operations = true`)",
                self.component
            ))
        })
    }

    async fn list_components(&self) -> Result<Vec<Component>, Error> {
        let operations = self.operations()?;
        Ok(operations.platform()?.components().await)
    }

    async fn roll_back(&self, id: &str) -> Result<Version, Error> {
        let operations = self.operations()?;
        tracing::info!(component = %self.component, "rolling back `{id}` for the component");
        operations.platform()?.rollback(id).await
    }

    async fn read_dead_letters(&self, topic: &str, limit: u32) -> Result<Vec<DeadLetter>, Error> {
        let operations = self.operations()?;
        let letters = operations.bus()?.read(&dead_letter_topic(topic), Read::Newest(limit.min(MAX_DEAD_LETTERS))).await;
        Ok(letters.map_err(bus_error)?.into_iter().map(|letter| dead_letter(topic, letter)).collect())
    }

    /// Publishes the dead letter at `place` on `<topic>.dlq` to `topic` again.
    async fn replay_dead_letter(&self, topic: &str, place: Position) -> Result<u64, Error> {
        let operations = self.operations()?;
        let bus = operations.bus()?;
        let dead_letters = dead_letter_topic(topic);
        let mut found = bus.read(&dead_letters, Read::At(place)).await.map_err(bus_error)?;
        if found.is_empty() {
            return Err(Error::NotFound(format!("no dead letter at {dead_letters}/{}/{}", place.partition, place.offset)));
        }
        let letter = found.remove(0);
        // The message as it was first published: its own headers, message id included,
        // so a group that had handled it recognises it; not the dead-lettering ones.
        let headers = letter.headers.into_iter().filter(|(name, _)| !name.to_ascii_lowercase().starts_with("x-estore-")).collect();
        let message = Outgoing { topic: topic.to_owned(), key: letter.key, payload: letter.payload, headers };
        tracing::info!(
            component = %self.component,
            "replaying dead letter {dead_letters}/{}/{} to `{topic}`",
            place.partition,
            place.offset
        );
        bus.publish(message, REPLAY_TIMEOUT).await.map(|position| position.offset).map_err(bus_error)
    }
}

fn dead_letter(topic: &str, letter: Delivery) -> DeadLetter {
    let text = |name: &str| letter.header(name).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
    // Dead letters carry where they came from; the topic asked for is the fallback.
    let origin = text(DLQ_ORIGIN);
    let origin_topic = origin.rsplitn(3, '/').nth(2).filter(|t| !t.is_empty()).unwrap_or(topic).to_owned();
    DeadLetter {
        topic: origin_topic,
        partition: letter.partition,
        offset: letter.offset,
        error: text(DLQ_ERROR),
        component: text(DLQ_COMPONENT),
        attempts: text(DLQ_ATTEMPTS).parse().unwrap_or(0),
        timestamp_ms: letter.timestamp_ms,
        key: letter.key,
        payload: letter.payload,
    }
}

fn bus_error(error: BusError) -> Error {
    match error {
        BusError::Unavailable(why) => Error::Unavailable(why),
        BusError::Invalid(why) => Error::NotFound(why),
        BusError::Other(why) => Error::Other(why),
    }
}

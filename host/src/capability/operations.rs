//! Operations (`estore:platform/operations`): the platform's own controls, for a
//! component whose manifest entry says `allow_operations = true`, such as the store's
//! console. It sees what `estore components` shows, rolls back as `estore rollback`
//! does, and reads and replays dead letters.
//!
//! The grant is the host's only check: the component decides which of its callers may
//! use it (the store's console serves administrators only).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::admin::{Admin, ComponentView, Refused};
use crate::bindings::operations::{Component, DeadLetter, Error, Host, Version};
use crate::bus::{Bus, BusError, Delivery, Outgoing, Position, Read};
use crate::store::HostState;
use crate::trigger::kafka::{DLQ_ATTEMPTS, DLQ_COMPONENT, DLQ_ERROR, DLQ_ORIGIN, dead_letter_topic};

/// The most dead letters one call returns.
const MAX_DEAD_LETTERS: u32 = 500;
/// How long a replay waits for the bus to take the message.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the granted components reach. The admin side exists only once every component
/// is loaded, so it is connected after start ([`Operations::connect`]).
pub struct Operations {
    admin: OnceLock<Arc<Admin>>,
    bus: Option<Bus>,
}

impl Operations {
    pub fn new(bus: Option<Bus>) -> Arc<Operations> {
        Arc::new(Operations { admin: OnceLock::new(), bus })
    }

    pub fn connect(&self, admin: Arc<Admin>) {
        let _ = self.admin.set(admin);
    }

    fn admin(&self) -> Result<&Admin, Error> {
        self.admin.get().map(Arc::as_ref).ok_or_else(|| Error::Unavailable("the host is still starting".into()))
    }

    fn bus(&self) -> Result<&Bus, Error> {
        self.bus.as_ref().ok_or_else(|| Error::NotFound("this application runs no event bus, so it has no dead letters".into()))
    }
}

impl Host for HostState {
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

impl HostState {
    fn caller(&self) -> Caller {
        Caller { operations: self.operations.clone(), component: self.component.clone() }
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
        Ok(operations.admin()?.component_views().await.into_iter().map(component).collect())
    }

    async fn roll_back(&self, id: &str) -> Result<Version, Error> {
        let operations = self.operations()?;
        tracing::info!(component = %self.component, "rolling back `{id}` for the component");
        let switched = operations.admin()?.rollback(id).await.map_err(|refused| match refused {
            Refused::UnknownComponent(_) => Error::NotFound(refused.to_string()),
            Refused::Conflict(_) | Refused::Invalid(_) => Error::Conflict(refused.to_string()),
            Refused::Internal(_) => Error::Other(refused.to_string()),
        })?;
        Ok(Version {
            digest: switched.version.digest,
            deployed_at: switched.version.deployed_at,
            source: switched.version.source,
            serving: true,
        })
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

fn component(view: ComponentView) -> Component {
    Component {
        id: view.id,
        version: view.version,
        deployed_at: view.deployed_at,
        triggers: view.triggers,
        requests: view.requests,
        messages: view.messages,
        history: view
            .history
            .into_iter()
            .map(|entry| Version { digest: entry.version, deployed_at: entry.deployed_at, source: entry.source, serving: entry.serving })
            .collect(),
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

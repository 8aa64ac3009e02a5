//! The admin as the operations capability sees it: what `estore components` lists and
//! `estore rollback` does, for a component granted `allow_operations = true`.

use estore_operations::operations::{Component, Error, Version};
use estore_operations::{Answer, Platform};

use super::{Admin, ComponentView, Refused};

impl Platform for Admin {
    fn components(&self) -> Answer<'_, Vec<Component>> {
        Box::pin(async move { self.component_views().await.into_iter().map(component).collect() })
    }

    fn rollback<'a>(&'a self, id: &'a str) -> Answer<'a, Result<Version, Error>> {
        Box::pin(async move {
            let switched = Admin::rollback(self, id).await.map_err(|refused| match refused {
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
        })
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

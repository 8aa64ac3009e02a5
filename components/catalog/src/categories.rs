//! Categories: what a category is, in the database and on the wire.

use serde::{Deserialize, Serialize};

use estore_shared::api::Validator;
use estore_shared::problem::Problem;
use estore_shared::sql::{Error, FromRow, Row};

#[derive(Debug, Serialize)]
pub struct Category {
    pub id: i64,
    pub name: String,
    pub description: String,
}

impl FromRow for Category {
    fn from_row(row: &Row<'_>) -> Result<Self, Error> {
        Ok(Category { id: row.get("id")?, name: row.get("name")?, description: row.get("description")? })
    }
}

pub const COLUMNS: &str = "id, name, description";

/// The body of a create or a (full) update.
#[derive(Debug, Deserialize)]
pub struct CategoryInput {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

impl CategoryInput {
    pub fn validate(&self) -> Result<(), Problem> {
        Validator::new()
            .required("name", &self.name)
            .max_len("name", &self.name, 100)
            .max_len("description", &self.description, 1000)
            .finish()
    }
}

//! An account as stored (`users` table) and as shown (`User`, never with the
//! password hash), and the SQL that reads and writes it.

use estore_shared::api::PageRequest;
use estore_shared::auth::Role;
use estore_shared::clock;
use estore_shared::params;
use estore_shared::sql::{Database, Error, FromRow, Row, Value};
use serde::{Serialize, Serializer};

/// A user as every endpoint answers it: the profile's fields beside the id.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    #[serde(flatten)]
    pub profile: Profile,
    pub role: Role,
    #[serde(serialize_with = "as_rfc3339")]
    pub created_at: i64,
    #[serde(serialize_with = "as_rfc3339")]
    pub updated_at: i64,
}

/// A user and their credentials: what the table holds. Only `user` leaves the service.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: User,
    pub password_hash: String,
}

impl Account {
    /// A new account with a fresh id, created now.
    pub fn new(profile: Profile, password_hash: String, role: Role) -> Account {
        let now = clock::now_unix();
        let user = User { id: uuid::Uuid::new_v4().to_string(), profile, role, created_at: now, updated_at: now };
        Account { user, password_hash }
    }
}

/// Who a user is and how they may be contacted. `email` is stored lowercased.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<String>,
    pub sms_opt_in: bool,
    pub marketing_opt_in: bool,
}

fn as_rfc3339<S: Serializer>(unix_secs: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&clock::rfc3339(*unix_secs))
}

const COLUMNS: &str = "id, username, email, password_hash, first_name, last_name, phone, \
                       sms_opt_in, marketing_opt_in, role, created_at, updated_at";

impl FromRow for Account {
    fn from_row(row: &Row<'_>) -> Result<Self, Error> {
        let role: String = row.get("role")?;
        let profile = Profile {
            username: row.get("username")?,
            email: row.get("email")?,
            first_name: row.get("first_name")?,
            last_name: row.get("last_name")?,
            phone: row.get("phone")?,
            sms_opt_in: row.get("sms_opt_in")?,
            marketing_opt_in: row.get("marketing_opt_in")?,
        };
        let user = User {
            id: row.get("id")?,
            profile,
            // The table's CHECK constraint allows only 'customer' and 'admin'.
            role: if role == "admin" { Role::Admin } else { Role::Customer },
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
        };
        Ok(Account { user, password_hash: row.get("password_hash")? })
    }
}

pub fn role_text(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Customer => "customer",
    }
}

pub fn find_by_id(db: &Database, id: &str) -> Result<Option<Account>, Error> {
    db.query_optional_as(&format!("SELECT {COLUMNS} FROM users WHERE id = ?"), params![id])
}

/// The account whose e-mail or username (both case-insensitive) is `identifier`.
/// Usernames cannot contain `@` and e-mail addresses must, so at most one matches.
pub fn find_by_login(db: &Database, identifier: &str) -> Result<Option<Account>, Error> {
    let key = identifier.trim().to_lowercase();
    db.query_optional_as(
        &format!("SELECT {COLUMNS} FROM users WHERE email = ? OR LOWER(username) = ?"),
        params![key.as_str(), key.as_str()],
    )
}

pub fn email_exists(db: &Database, email: &str) -> Result<bool, Error> {
    Ok(!db.query("SELECT 1 AS found FROM users WHERE email = ?", params![email])?.is_empty())
}

/// Which of `email` and `username` another account already has, to name it in a 409.
pub fn taken_field(db: &Database, email: &str, username: &str) -> Result<Option<&'static str>, Error> {
    if email_exists(db, email)? {
        return Ok(Some("email"));
    }
    let rows = db.query("SELECT 1 AS found FROM users WHERE LOWER(username) = LOWER(?)", params![username])?;
    Ok((!rows.is_empty()).then_some("username"))
}

/// Inserts the account unless its e-mail or username is taken; returns whether it
/// did. `ON CONFLICT DO NOTHING` rather than an error, so two instances racing to
/// create the same account (the first admin) do not fail a request.
pub fn insert(db: &Database, account: &Account) -> Result<bool, Error> {
    let user = &account.user;
    let inserted = db.execute(
        &format!("INSERT INTO users ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
        params![
            user.id.as_str(),
            user.profile.username.as_str(),
            user.profile.email.as_str(),
            account.password_hash.as_str(),
            user.profile.first_name.as_str(),
            user.profile.last_name.as_str(),
            user.profile.phone.clone(),
            user.profile.sms_opt_in,
            user.profile.marketing_opt_in,
            role_text(user.role),
            user.created_at,
            user.updated_at,
        ],
    )?;
    Ok(inserted == 1)
}

/// Sets the given columns of the user's row, and nothing else, so that concurrent
/// changes to other fields are kept; returns whether the user exists. The column
/// names come from the service's code, never from a request.
pub fn update(db: &Database, id: &str, columns: Vec<(&'static str, Value)>) -> Result<bool, Error> {
    let assignments: Vec<String> = columns.iter().map(|(column, _)| format!("{column} = ?")).collect();
    let mut values: Vec<Value> = columns.into_iter().map(|(_, value)| value).collect();
    values.push(id.into());
    let updated = db.execute(&format!("UPDATE users SET {} WHERE id = ?", assignments.join(", ")), &values)?;
    Ok(updated == 1)
}

/// Deletes the account; returns whether it existed. Its login counts expire with
/// their window (throttle).
pub fn delete(db: &Database, id: &str) -> Result<bool, Error> {
    Ok(db.execute("DELETE FROM users WHERE id = ?", params![id])? == 1)
}

/// Orders `GET /api/users` can be sorted by; each is also the column's name.
pub const SORTS: &[&str] = &["created_at", "username", "email"];

/// One page of users in the request's order, and how many there are in all.
pub fn page(db: &Database, request: &PageRequest) -> Result<(Vec<User>, u64), Error> {
    // The sort key is one of SORTS (the allow-list), never the client's text, and
    // each is the column's name: safe to splice.
    let order = format!("{} {}", request.sort.key, request.sort.direction());
    let accounts: Vec<Account> = db.query_as(
        &format!("SELECT {COLUMNS} FROM users ORDER BY {order}, id LIMIT ? OFFSET ?"),
        params![i64::from(request.size), request.offset()],
    )?;
    let rows = db.query("SELECT COUNT(*) AS total FROM users", params![])?;
    let total: i64 = match rows.get(0) {
        Some(row) => row.get("total")?,
        None => 0,
    };
    let users = accounts.into_iter().map(|account| account.user).collect();
    Ok((users, u64::try_from(total).unwrap_or(0)))
}

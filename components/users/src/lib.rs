//! The store's accounts: customers register and log in for a bearer token, read,
//! change and delete their own account; admins list every account and change roles.
//!
//! Every change to an account is announced (`user.registered`, `user.updated`,
//! `user.deleted`, keyed by the user id) from inside the transaction that makes it,
//! so the event leaves exactly when the change commits. A new password, a new role
//! and a deleted account also revoke every token the user holds, in every service
//! (`estore_shared::auth::revocation`), before the change commits.
//!
//! Logins are throttled per account and client address, and per address (throttle,
//! client); an unknown e-mail costs the same password check as a known one, and is
//! throttled the same, so neither time nor answers tell which accounts exist.

mod account;
mod client;
mod first_admin;
mod throttle;

use estore_shared::api::{self, Page, PageRequest, Validator, match_path};
use estore_shared::auth::{self, Claims, Role, hash_password, revocation, verify_password};
use estore_shared::clock;
use estore_shared::event::{Envelope, publish_event};
use estore_shared::problem::{FieldError, Problem};
use estore_shared::sql::{Database, Value};
use serde::{Deserialize, Deserializer, Serialize};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

use crate::account::{Account, Profile, User};

/// How long a login's token is valid.
const TOKEN_LIFETIME_SECS: i64 = 24 * 60 * 60;

#[http_component]
fn handle(req: Request) -> Result<Response, Problem> {
    let db = Database::open("default")?;
    // A missing admin must not keep customers from the store: log it and serve.
    if let Err(problem) = first_admin::ensure(&db) {
        eprintln!("the first administrator could not be created: {}", problem.detail);
    }
    route(&req, &db)
}

fn route(req: &Request, db: &Database) -> Result<Response, Problem> {
    let path = req.path();
    let method = req.method();
    if match_path("/api/auth/login", path).is_some() {
        return match method {
            Method::Post => login(req, db),
            _ => Err(Problem::method_not_allowed("POST")),
        };
    }
    if match_path("/api/users", path).is_some() {
        return match method {
            Method::Post => register(req, db),
            Method::Get => list_users(req, db),
            _ => Err(Problem::method_not_allowed("GET, POST")),
        };
    }
    if match_path("/api/users/me", path).is_some() {
        return match method {
            Method::Get => get_me(req, db),
            Method::Patch => update_me(req, db),
            Method::Delete => delete_me(req, db),
            _ => Err(Problem::method_not_allowed("GET, PATCH, DELETE")),
        };
    }
    if let Some(params) = match_path("/api/users/:id", path) {
        return match method {
            Method::Get => get_user(req, db, &params["id"]),
            Method::Patch => change_role(req, db, &params["id"]),
            _ => Err(Problem::method_not_allowed("GET, PATCH")),
        };
    }
    Err(Problem::not_found(format!("no such path: {path}")))
}

// ---- Registration --------------------------------------------------------------

/// `POST /api/users`. Text fields default to empty, so that every missing one is
/// named in the same 400.
#[derive(Deserialize)]
struct Registration {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    phone: Option<String>,
    sms_opt_in: Option<bool>,
    marketing_opt_in: Option<bool>,
}

fn register(req: &Request, db: &Database) -> Result<Response, Problem> {
    let registration: Registration = api::parse_json(req)?;
    let phone = registration.phone.as_deref().map(str::trim).filter(|phone| !phone.is_empty());
    let mut validator = Validator::new();
    validator
        .required("username", &registration.username)
        .min_len("username", registration.username.trim(), 3)
        .max_len("username", registration.username.trim(), 50)
        // Logins tell an e-mail from a username by the `@`.
        .check("username", !registration.username.contains('@'), "must not contain @")
        .required("email", &registration.email)
        .email("email", registration.email.trim());
    check_password(&mut validator, "password", &registration.password);
    check_name(&mut validator, "first_name", &registration.first_name);
    check_name(&mut validator, "last_name", &registration.last_name);
    if let Some(phone) = phone {
        check_phone(&mut validator, phone);
    }
    validator.finish()?;

    let profile = Profile {
        username: registration.username.trim().to_owned(),
        // Stored lowercased: e-mail addresses are unique and matched case-insensitively.
        email: registration.email.trim().to_lowercase(),
        first_name: registration.first_name.trim().to_owned(),
        last_name: registration.last_name.trim().to_owned(),
        phone: phone.map(str::to_owned),
        // Someone who gives a phone number expects the texts unless they say otherwise.
        sms_opt_in: registration.sms_opt_in.unwrap_or(phone.is_some()),
        marketing_opt_in: registration.marketing_opt_in.unwrap_or(false),
    };
    let account = Account::new(profile, hash_password(&registration.password), Role::Customer);
    db.transaction(|tx| {
        if let Some(field) = account::taken_field(tx, &account.user.profile.email, &account.user.profile.username)? {
            return Err(Problem::conflict(format!("an account with this {field} already exists")));
        }
        // Registered meanwhile by a concurrent request.
        if !account::insert(tx, &account)? {
            return Err(Problem::conflict("an account with this email or username already exists"));
        }
        publish_user_registered(&account.user)
    })?;
    let mut response = api::json(201, &account.user);
    response.set_header("location", format!("/api/users/{}", account.user.id));
    Ok(response)
}

fn check_password(validator: &mut Validator, field: &str, password: &str) {
    // The upper bound keeps one request from buying a long argon2 run.
    validator.required(field, password).min_len(field, password, 8).max_len(field, password, 128);
}

fn check_name(validator: &mut Validator, field: &str, name: &str) {
    validator.required(field, name).max_len(field, name.trim(), 100);
}

/// Digits with the usual separators and an optional leading `+`: enough to catch a
/// value meant for another field; only sending a text proves a number.
fn check_phone(validator: &mut Validator, phone: &str) {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let allowed = phone.strip_prefix('+').unwrap_or(phone).chars().all(|c| c.is_ascii_digit() || " -()/".contains(c));
    validator.check("phone", allowed && (6..=15).contains(&digits), "must be a phone number, such as +43 660 1234567");
}

// ---- Login ---------------------------------------------------------------------

/// `POST /api/auth/login`: `email` or `username`, and `password`.
#[derive(Deserialize)]
struct Credentials {
    email: Option<String>,
    username: Option<String>,
    #[serde(default)]
    password: String,
}

#[derive(Serialize)]
struct LoggedIn<'a> {
    token: String,
    expires_at: String,
    user: &'a User,
}

/// The argon2id hash of a random password nobody knows, with the parameters of
/// every stored hash: a login for an account that does not exist is checked against
/// it, so it costs what a wrong password costs and matches nothing.
const NO_ACCOUNT_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$K5hEByfEHqmwBqsgPdVdkw$CDdwBKwjfZYfaBrw0pdgjHaRgGenIx21YyS95xRDKO0";

fn login(req: &Request, db: &Database) -> Result<Response, Problem> {
    let credentials: Credentials = api::parse_json(req)?;
    let identifier = credentials.email.or(credentials.username).unwrap_or_default();
    Validator::new().required("email", &identifier).required("password", &credentials.password).finish()?;

    let account = account::find_by_login(db, &identifier)?;
    // An unknown account is counted by what was typed, so guessing at it is
    // throttled like guessing at a real one.
    let counted_as = account.as_ref().map_or_else(|| identifier.trim().to_lowercase(), |a| a.user.id.clone());
    let now = clock::now_unix();
    let attempt = throttle::attempt(db, &counted_as, &client::address(req, &variable("trusted_proxies")?), now)?;
    let hash = account.as_ref().map_or(NO_ACCOUNT_HASH, |account| account.password_hash.as_str());
    let right = verify_password(&credentials.password, hash);
    let Some(account) = account.filter(|_| right) else {
        return Err(wrong_credentials());
    };
    throttle::succeeded(db, &attempt)?;

    let expires = now + TOKEN_LIFETIME_SECS;
    let claims =
        Claims { sub: account.user.id.clone(), role: account.user.role, exp: expires, iat_ms: clock::now_unix_ms() };
    let token = auth::issue(auth::token_secret()?.as_bytes(), &claims);
    Ok(api::json(200, &LoggedIn { token, expires_at: clock::rfc3339(expires), user: &account.user }))
}

/// One answer for an unknown account and a wrong password, so neither is revealed.
fn wrong_credentials() -> Problem {
    Problem::unauthorized("the e-mail, username or password is not right")
}

// ---- The caller's own account ----------------------------------------------------

fn get_me(req: &Request, db: &Database) -> Result<Response, Problem> {
    let caller = authenticate(req)?;
    Ok(api::json(200, &existing(db, &caller.sub)?.user))
}

/// `PATCH /api/users/me`: only the fields given change. `phone: null` removes the
/// number. A new `password` needs the `current_password`. Anything else (e-mail,
/// username, role) cannot be changed, and saying so beats ignoring it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileChanges {
    first_name: Option<String>,
    last_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    phone: Option<Option<String>>,
    sms_opt_in: Option<bool>,
    marketing_opt_in: Option<bool>,
    password: Option<String>,
    current_password: Option<String>,
}

/// For a field that may be absent (`None`) or `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

fn update_me(req: &Request, db: &Database) -> Result<Response, Problem> {
    let caller = authenticate(req)?;
    let changes: ProfileChanges = api::parse_json(req)?;
    let phone = changes.phone.as_ref().map(|phone| phone.as_deref().map(str::trim).filter(|p| !p.is_empty()));
    let mut validator = Validator::new();
    if let Some(first_name) = &changes.first_name {
        check_name(&mut validator, "first_name", first_name);
    }
    if let Some(last_name) = &changes.last_name {
        check_name(&mut validator, "last_name", last_name);
    }
    if let Some(Some(phone)) = phone {
        check_phone(&mut validator, phone);
    }
    if let Some(password) = &changes.password {
        check_password(&mut validator, "password", password);
        validator.required("current_password", changes.current_password.as_deref().unwrap_or_default());
    }
    validator.finish()?;

    let mut columns: Vec<(&'static str, Value)> = Vec::new();
    if let Some(first_name) = &changes.first_name {
        columns.push(("first_name", first_name.trim().into()));
    }
    if let Some(last_name) = &changes.last_name {
        columns.push(("last_name", last_name.trim().into()));
    }
    if let Some(phone) = phone {
        columns.push(("phone", phone.map(str::to_owned).into()));
    }
    if let Some(sms_opt_in) = changes.sms_opt_in {
        columns.push(("sms_opt_in", sms_opt_in.into()));
    }
    if let Some(marketing_opt_in) = changes.marketing_opt_in {
        columns.push(("marketing_opt_in", marketing_opt_in.into()));
    }
    if let Some(password) = &changes.password {
        let current = changes.current_password.as_deref().unwrap_or_default();
        if !verify_password(current, &existing(db, &caller.sub)?.password_hash) {
            return Err(Problem::invalid(vec![FieldError::new("current_password", "is not the current password")]));
        }
        // Hashed before the transaction: argon2 takes a while, and would hold it open.
        columns.push(("password_hash", hash_password(password).into()));
    }
    columns.push(("updated_at", clock::now_unix().into()));

    let user = db.transaction(|tx| {
        if !account::update(tx, &caller.sub, columns)? {
            return Err(no_such_user());
        }
        let user = existing(tx, &caller.sub)?.user;
        publish_user_event("user.updated", &user.id, UserData::from(&user))?;
        // Whoever knew the old password may hold a token: none of them stays valid,
        // the caller's own included (they log in with the new password).
        if changes.password.is_some() {
            revocation::revoke_all(&user.id, clock::now_unix_ms())?;
        }
        Ok(user)
    })?;
    Ok(api::json(200, &user))
}

fn delete_me(req: &Request, db: &Database) -> Result<Response, Problem> {
    let caller = authenticate(req)?;
    db.transaction(|tx| {
        if !account::delete(tx, &caller.sub)? {
            return Err(no_such_user());
        }
        publish_user_event("user.deleted", &caller.sub, UserDeleted { user_id: &caller.sub })?;
        revocation::revoke_all(&caller.sub, clock::now_unix_ms())
    })?;
    Ok(Response::new(204, ()))
}

// ---- Administration ---------------------------------------------------------------

fn list_users(req: &Request, db: &Database) -> Result<Response, Problem> {
    authenticate(req)?.require_admin()?;
    let request = PageRequest::from_query(req.query(), account::SORTS, "created_at")?;
    let (users, total) = account::page(db, &request)?;
    Ok(api::json(200, &Page::new(users, &request, total)))
}

/// An admin may read any account, a customer only their own: another's is a 404,
/// as if it did not exist.
fn get_user(req: &Request, db: &Database, id: &str) -> Result<Response, Problem> {
    let caller = authenticate(req)?;
    if !caller.may_access(id) {
        return Err(no_such_user());
    }
    Ok(api::json(200, &existing(db, id)?.user))
}

/// `PATCH /api/users/{id}` (admin) `{role}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleChange {
    role: Role,
}

/// An admin makes a customer an admin or takes the role back; the user's tokens,
/// which carry the old role, are revoked. An admin's own role stays, so the store
/// cannot lose its last administrator this way.
fn change_role(req: &Request, db: &Database, id: &str) -> Result<Response, Problem> {
    let caller = authenticate(req)?;
    caller.require_admin()?;
    let change: RoleChange = api::parse_json(req)?;
    if caller.sub == id {
        return Err(Problem::conflict("an administrator cannot change their own role"));
    }
    let user = db.transaction(|tx| -> Result<User, Problem> {
        let before = existing(tx, id)?.user;
        if before.role == change.role {
            return Ok(before);
        }
        account::update(tx, id, vec![("role", account::role_text(change.role).into()), ("updated_at", clock::now_unix().into())])?;
        let user = existing(tx, id)?.user;
        publish_user_event("user.updated", &user.id, UserData::from(&user))?;
        revocation::revoke_all(id, clock::now_unix_ms())?;
        Ok(user)
    })?;
    Ok(api::json(200, &user))
}

// ---- Helpers ------------------------------------------------------------------------

fn existing(db: &Database, id: &str) -> Result<Account, Problem> {
    account::find_by_id(db, id)?.ok_or_else(no_such_user)
}

fn no_such_user() -> Problem {
    Problem::not_found("no such user")
}

fn authenticate(req: &Request) -> Result<Claims, Problem> {
    auth::caller(req)
}

/// A component variable; missing is the deployment's fault, logged, and a 500.
pub(crate) fn variable(name: &str) -> Result<String, Problem> {
    spin_sdk::variables::get(name).map_err(|e| {
        eprintln!("variable {name}: {e}");
        Problem::internal()
    })
}

// ---- Events ---------------------------------------------------------------------------

/// `data` of `user.registered` and `user.updated` (components/README.md): the user
/// id and the profile; `phone` is `null` when there is none.
#[derive(Serialize)]
struct UserData<'a> {
    user_id: &'a str,
    #[serde(flatten)]
    profile: &'a Profile,
}

impl<'a> From<&'a User> for UserData<'a> {
    fn from(user: &'a User) -> Self {
        UserData { user_id: &user.id, profile: &user.profile }
    }
}

#[derive(Serialize)]
struct UserDeleted<'a> {
    user_id: &'a str,
}

pub(crate) fn publish_user_registered(user: &User) -> Result<(), Problem> {
    publish_user_event("user.registered", &user.id, UserData::from(user))
}

/// Publishes a `user.*` event about `user_id`, which is its key and correlation id.
/// Inside a transaction, it leaves only if the transaction commits.
fn publish_user_event<T: Serialize>(event_type: &str, user_id: &str, data: T) -> Result<(), Problem> {
    publish_event(&Envelope::new(event_type, user_id, data), user_id).map(drop).map_err(|e| {
        eprintln!("{event_type} for {user_id}: {e}");
        Problem::internal()
    })
}

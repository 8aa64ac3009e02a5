//! The users service as a client sees it: registering, logging in, the own account,
//! and what an admin may do that a customer may not.

use serde_json::{Value as Json, json};

use crate::support::{ADMIN_EMAIL, Answer, Backends, Client, Store};

/// A registration body for `name`, unique per name.
fn registration(name: &str) -> Json {
    json!({
        "username": name,
        "email": format!("{name}@example.com"),
        "password": "correct horse battery",
        "first_name": "Ada",
        "last_name": "Lovelace",
    })
}

fn assert_problem(answer: &Answer, status: u16) {
    assert_eq!(answer.status, status, "{answer:?}");
    let content_type = answer.headers.get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("application/problem+json"), "{answer:?}");
    assert_eq!(answer.body["status"], status, "{answer:?}");
}

fn field_names(answer: &Answer) -> Vec<&str> {
    let errors = answer.body["errors"].as_array().map(Vec::as_slice).unwrap_or_default();
    errors.iter().filter_map(|e| e["field"].as_str()).collect()
}

/// Registers `name` and returns the user as answered.
async fn register(client: &Client, name: &str) -> Json {
    let answer = client.post("/api/users", registration(name)).await;
    assert_eq!(answer.status, 201, "register {name}: {answer:?}");
    answer.body
}

async fn login_as(client: &Client, name: &str) -> Client {
    client.login(&format!("{name}@example.com"), "correct horse battery").await
}

async fn register_answers_the_user_without_secrets(backends: Backends) {
    // The store owns the state dir: it must outlive the host.
    let store = Store::new(backends);
    let host = store.start();
    let client = Client::new(&host);
    let mut body = registration("ada");
    body["email"] = json!("Ada@Example.com");
    body["phone"] = json!("+43 660 1234567");
    let answer = client.post("/api/users", body).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    let user = &answer.body;
    assert!(user["id"].as_str().is_some_and(|id| id.len() == 36), "a UUID: {user}");
    assert_eq!(user["username"], "ada");
    assert_eq!(user["email"], "ada@example.com", "e-mail is stored lowercased");
    assert_eq!(user["role"], "customer");
    assert_eq!(user["sms_opt_in"], true, "a phone number means texts by default");
    assert_eq!(user["marketing_opt_in"], false);
    let text = user.to_string();
    for secret in ["password", "hash", "correct horse"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let location = answer.headers.get("location").and_then(|v| v.to_str().ok());
    assert_eq!(location, Some(format!("/api/users/{}", user["id"].as_str().unwrap_or_default()).as_str()));

    // The e-mail is the same in any case, and so is the username.
    let mut same_email = registration("ada2");
    same_email["email"] = json!("ADA@example.COM");
    let duplicate = client.post("/api/users", same_email).await;
    assert_problem(&duplicate, 409);
    assert!(duplicate.body["detail"].as_str().is_some_and(|d| d.contains("email")), "{duplicate:?}");
    let mut same_username = registration("ADA");
    same_username["email"] = json!("other@example.com");
    let duplicate = client.post("/api/users", same_username).await;
    assert_problem(&duplicate, 409);
    assert!(duplicate.body["detail"].as_str().is_some_and(|d| d.contains("username")), "{duplicate:?}");

    // Logging in works with the e-mail in any case, and with the username.
    let token = client.login("ADA@EXAMPLE.COM", "correct horse battery").await;
    assert_eq!(token.get("/api/users/me").await.body["id"], user["id"]);
    let by_username =
        client.post("/api/auth/login", json!({"username": "ada", "password": "correct horse battery"})).await;
    assert_eq!(by_username.status, 200, "{by_username:?}");
    assert_eq!(by_username.body["user"]["id"], user["id"]);
    assert!(by_username.body["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{by_username:?}");
}

async fn bad_registrations_name_every_field(backends: Backends) {
    let store = Store::new(backends);
    let host = store.start();
    let client = Client::new(&host);
    let answer = client
        .post(
            "/api/users",
            json!({"username": "a@b", "email": "not-an-email", "password": "short", "phone": "call me"}),
        )
        .await;
    assert_problem(&answer, 400);
    assert_eq!(field_names(&answer), ["username", "email", "password", "first_name", "last_name", "phone"]);

    let not_json = client.post("/api/users", json!("just a string")).await;
    assert_problem(&not_json, 400);
    let wrong_type = client.post("/api/users", json!({"username": 7})).await;
    assert_problem(&wrong_type, 400);
    assert_eq!(field_names(&wrong_type), ["username"]);
}

async fn login_failures_are_401_then_429(backends: Backends) {
    let store = Store::new(backends);
    let host = store.start();
    let client = Client::new(&host);
    register(&client, "bob").await;
    let wrong = json!({"email": "bob@example.com", "password": "wrong password"});

    let unknown = client.post("/api/auth/login", json!({"email": "nobody@example.com", "password": "x"})).await;
    assert_problem(&unknown, 401);
    for attempt in 1..=5 {
        let answer = client.post("/api/auth/login", wrong.clone()).await;
        assert_problem(&answer, 401);
        // The same words for a wrong password as for an unknown account.
        assert_eq!(answer.body["detail"], unknown.body["detail"], "attempt {attempt}");
    }
    let throttled = client.post("/api/auth/login", wrong).await;
    assert_problem(&throttled, 429);
    let retry_after = throttled.headers.get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    assert!(retry_after.is_some_and(|secs| (1..=60).contains(&secs)), "{throttled:?}");
    // Even the right password waits: that is what stops the guessing.
    let right =
        client.post("/api/auth/login", json!({"email": "bob@example.com", "password": "correct horse battery"})).await;
    assert_problem(&right, 429);
    // Other accounts are not affected.
    register(&client, "carol").await;
    login_as(&client, "carol").await;
}

/// Twenty guesses at once at one password: each attempt is counted before its
/// password is checked, so no more than five get an answer about the password.
async fn parallel_guesses_stop_at_five(backends: Backends) {
    let store = Store::new(backends);
    let host = store.start();
    let client = Client::new(&host);
    register(&client, "paula").await;
    let wrong = json!({"email": "paula@example.com", "password": "wrong password"});
    let guesses: Vec<_> = (0..20)
        .map(|_| {
            let (client, wrong) = (client.clone(), wrong.clone());
            tokio::spawn(async move { client.post("/api/auth/login", wrong).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.expect("a guess").status);
    }
    statuses.sort_unstable();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 15, "{statuses:?}");
}

/// Someone guessing the administrator's password from elsewhere is stopped, and the
/// administrator still logs in from their own address; an unknown e-mail is
/// throttled as a known one is, and costs as long as a wrong password.
async fn guessing_elsewhere_locks_out_only_the_guesser(backends: Backends) {
    let store = Store::new(backends);
    let host = store.start();
    let client = Client::new(&host);
    let attacker = client.from_address("127.0.0.2");
    let guess = json!({"email": ADMIN_EMAIL, "password": "password123"});
    for _ in 1..=5 {
        assert_problem(&attacker.post("/api/auth/login", guess.clone()).await, 401);
    }
    let stopped = attacker.post("/api/auth/login", guess).await;
    assert_problem(&stopped, 429);
    assert!(stopped.headers.contains_key("retry-after"), "{stopped:?}");
    // The administrator, from their own address, is not locked out.
    client.admin().await;

    // An unknown e-mail: the same answers, throttled the same.
    let unknown = json!({"email": "nobody@example.com", "password": "password123"});
    for _ in 1..=5 {
        assert_problem(&attacker.post("/api/auth/login", unknown.clone()).await, 401);
    }
    assert_problem(&attacker.post("/api/auth/login", unknown).await, 429);

    // ... and it takes as long as a wrong password for a real account (a password
    // check), not the few milliseconds of a database lookup.
    register(&client, "quinn").await;
    let timed = |body: Json| {
        let client = client.clone();
        async move {
            let started = std::time::Instant::now();
            assert_problem(&client.post("/api/auth/login", body).await, 401);
            started.elapsed()
        }
    };
    let mut known = Vec::new();
    let mut missing = Vec::new();
    for n in 0..4 {
        known.push(timed(json!({"email": "quinn@example.com", "password": "wrong password"})).await);
        missing.push(timed(json!({"email": format!("ghost{n}@example.com"), "password": "wrong password"})).await);
    }
    known.sort_unstable();
    missing.sort_unstable();
    let (known, missing) = (known[2], missing[2]);
    assert!(missing * 3 > known && known * 3 > missing, "wrong password {known:?}, unknown e-mail {missing:?}");
}

/// A new password, a new role and a deleted account each end every token the user
/// held, in users and in every other service, at once.
async fn changes_to_an_account_revoke_its_tokens(backends: Backends) {
    let store = Store::new(backends);
    let host = store.start();
    let client = Client::new(&host);
    let rosa = register(&client, "rosa").await;
    let rosa_id = rosa["id"].as_str().unwrap_or_default().to_owned();
    let (laptop, phone) = (login_as(&client, "rosa").await, login_as(&client, "rosa").await);
    assert_eq!(phone.get("/api/cart").await.status, 200);

    let changed = laptop
        .patch("/api/users/me", json!({"password": "a new password", "current_password": "correct horse battery"}))
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    for (old, path) in [(&laptop, "/api/users/me"), (&phone, "/api/users/me"), (&phone, "/api/cart"), (&phone, "/api/orders")] {
        let answer = old.get(path).await;
        assert_problem(&answer, 401);
        assert!(answer.body["detail"].as_str().is_some_and(|d| d.contains("revoked")), "{path}: {answer:?}");
    }
    let rosa = client.login("rosa@example.com", "a new password").await;
    assert_eq!(rosa.get("/api/cart").await.status, 200);

    // Made an admin: the customer's token is gone, the next one is an admin's.
    let admin = client.admin().await;
    let promoted = admin.patch(&format!("/api/users/{rosa_id}"), json!({"role": "admin"})).await;
    assert_eq!((promoted.status, &promoted.body["role"]), (200, &json!("admin")), "{promoted:?}");
    assert_problem(&rosa.get("/api/cart").await, 401);
    let rosa = client.login("rosa@example.com", "a new password").await;
    assert_eq!(rosa.get("/api/users").await.status, 200, "an admin now");
    // Demoted: the admin's token stops at once, in every service.
    let demoted = admin.patch(&format!("/api/users/{rosa_id}"), json!({"role": "customer"})).await;
    assert_eq!(demoted.status, 200, "{demoted:?}");
    assert_problem(&rosa.get("/api/users").await, 401);
    assert_problem(&rosa.put("/api/inventory/1", json!({"available": 0})).await, 401);
    let me = admin.get("/api/users/me").await.body;
    let own = admin.patch(&format!("/api/users/{}", me["id"].as_str().unwrap_or_default()), json!({"role": "customer"})).await;
    assert_problem(&own, 409);
    assert_problem(&rosa.patch(&format!("/api/users/{rosa_id}"), json!({"role": "admin"})).await, 401);
    let customer = client.login("rosa@example.com", "a new password").await;
    assert_problem(&customer.patch(&format!("/api/users/{rosa_id}"), json!({"role": "admin"})).await, 403);
    assert_problem(&admin.patch(&format!("/api/users/{rosa_id}"), json!({"role": "owner"})).await, 400);

    // Deleted: the token stops working everywhere, not only in users.
    assert_eq!(customer.delete("/api/users/me").await.status, 204);
    assert_problem(&customer.get("/api/cart").await, 401);
    assert_problem(&customer.get("/api/notifications/email").await, 401);
}

/// A crowd larger than the users service's database connections and instances
/// registers at once (argon2 makes each registration a few CPU-heavy milliseconds).
/// Each shopper is registered, some after being asked to come back (503 with
/// `Retry-After`), none turned away with a 500: a wait for a busy database's
/// connection is load, and lasts as long as the request's deadline allows. Before,
/// a request waited 3 s for a connection and was then told "database unreachable".
async fn a_crowd_registering_at_once_is_served_or_asked_to_come_back(backends: Backends) {
    const CROWD: usize = 200;
    let store = Store::new(backends);
    let host = store.start();
    let client = Client::new(&host);
    let shoppers = (0..CROWD).map(|i| {
        let client = &client;
        async move {
            let name = format!("crowd{i}");
            let mut asked_back = 0u32;
            loop {
                let answer = client.post("/api/users", registration(&name)).await;
                match answer.status {
                    201 => return asked_back,
                    503 => {
                        let retry_after = answer.headers.get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                        let retry_after = retry_after.unwrap_or_else(|| panic!("a 503 without Retry-After: {answer:?}"));
                        asked_back += 1;
                        assert!(asked_back < 60, "{name} was asked back {asked_back} times");
                        tokio::time::sleep(std::time::Duration::from_secs(retry_after)).await;
                    }
                    _ => panic!("{name}: {answer:?}"),
                }
            }
        }
    });
    let asked_back = futures::future::join_all(shoppers).await;
    let later = asked_back.iter().filter(|n| **n > 0).count();
    eprintln!("{CROWD} shoppers registered, {later} of them after a 503 with Retry-After");
    let admin = client.admin().await;
    let users = admin.get("/api/users").await;
    // The crowd and the administrator, each once.
    assert_eq!(users.body["total"], CROWD + 1, "{users:?}");
    // The database was busy, never out of reach (the services log what they got).
    let log = host.log();
    let unreachable: Vec<&str> = log.lines().filter(|line| line.contains("database unreachable")).collect();
    assert!(unreachable.is_empty(), "the busy database was reported unreachable:\n{}", unreachable.join("\n"));
}

async fn token_of(client: &Client, name: &str) -> String {
    let body = json!({"email": format!("{name}@example.com"), "password": "correct horse battery"});
    let answer = client.post("/api/auth/login", body).await;
    answer.body["token"].as_str().unwrap_or_default().to_owned()
}

fn owned_pair((a, b): (&str, &str)) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

async fn tokens_guard_the_own_account(backends: Backends) {
    let store = Store::new(backends);
    let host = store.start();
    let client = Client::new(&host);
    let dave = register(&client, "dave").await;

    assert_problem(&client.get("/api/users/me").await, 401);
    let logged_in = login_as(&client, "dave").await;
    let me = logged_in.get("/api/users/me").await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["id"], dave["id"]);

    // Eve's claims under Dave's signature: someone else's identity, forged.
    register(&client, "eve").await;
    let (_, dave_signature) = token_of(&client, "dave").await.split_once('.').map(owned_pair).unwrap_or_default();
    let (eve_claims, _) = token_of(&client, "eve").await.split_once('.').map(owned_pair).unwrap_or_default();
    let forged = client.with_token(&format!("{eve_claims}.{dave_signature}"));
    assert_problem(&forged.get("/api/users/me").await, 401);
    assert_problem(&client.with_token("not a token").get("/api/users/me").await, 401);
}

async fn only_admins_list_users_and_others_are_hidden(backends: Backends) {
    let store = Store::new(backends);
    let host = store.start();
    let client = Client::new(&host);
    let erin = register(&client, "erin").await;
    let frank = register(&client, "frank").await;
    let erin_client = login_as(&client, "erin").await;

    assert_problem(&erin_client.get("/api/users").await, 403);
    let frank_id = frank["id"].as_str().unwrap_or_default();
    assert_problem(&erin_client.get(&format!("/api/users/{frank_id}")).await, 404);
    let erin_id = erin["id"].as_str().unwrap_or_default();
    assert_eq!(erin_client.get(&format!("/api/users/{erin_id}")).await.status, 200);

    // An administrator's token signed with the manifest's public default secret is
    // worth nothing: the store runs with the operator's secret (the host refuses to
    // start on the default).
    let claims = estore_shared::auth::Claims {
        sub: erin_id.to_owned(),
        role: estore_shared::auth::Role::Admin,
        exp: estore_shared::clock::now_unix() + 3600,
        iat_ms: estore_shared::clock::now_unix_ms(),
    };
    let public_default = estore_shared::auth::issue(b"development-secret-change-me", &claims);
    assert_problem(&client.with_token(&public_default).get("/api/users").await, 401);

    // The admin account exists from the start, with the e-mail of the variables'
    // defaults and the password the tests set (`admin` logs in with them).
    let admin = client.admin().await;
    let me = admin.get("/api/users/me").await;
    assert_eq!((me.body["email"].as_str(), me.body["role"].as_str()), (Some(ADMIN_EMAIL), Some("admin")));

    let page = admin.get("/api/users?size=2&sort=username").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!((&page.body["page"], &page.body["size"], &page.body["total"]), (&json!(1), &json!(2), &json!(3)));
    let names: Vec<&str> =
        page.body["items"].as_array().into_iter().flatten().filter_map(|u| u["username"].as_str()).collect();
    assert_eq!(names, [ADMIN_EMAIL, "erin"]);
    assert!(!page.body.to_string().contains("hash"), "{page:?}");
    let second = admin.get("/api/users?size=2&page=2&sort=username").await;
    assert_eq!(second.body["items"][0]["username"], "frank");
    assert_eq!(admin.get(&format!("/api/users/{frank_id}")).await.body["username"], "frank");
    assert_problem(&admin.get("/api/users?size=1000").await, 400);
}

async fn a_user_changes_and_deletes_their_account(backends: Backends) {
    let store = Store::new(backends);
    let host = store.start();
    let client = Client::new(&host);
    register(&client, "gina").await;
    let gina = login_as(&client, "gina").await;

    let changed = gina
        .patch("/api/users/me", json!({"first_name": "Georgina", "phone": "+1 555 0100", "marketing_opt_in": true}))
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    assert_eq!(changed.body["first_name"], "Georgina");
    assert_eq!(changed.body["last_name"], "Lovelace", "unchanged");
    assert_eq!(changed.body["phone"], "+1 555 0100");
    assert_eq!(changed.body["marketing_opt_in"], true);
    assert_eq!(gina.get("/api/users/me").await.body["first_name"], "Georgina");

    let cleared = gina.patch("/api/users/me", json!({"phone": null})).await;
    assert_eq!(cleared.body["phone"], Json::Null, "{cleared:?}");
    let not_changeable = gina.patch("/api/users/me", json!({"email": "other@example.com"})).await;
    assert_problem(&not_changeable, 400);
    let bad = gina.patch("/api/users/me", json!({"first_name": " ", "password": "new password!"})).await;
    assert_problem(&bad, 400);
    assert_eq!(field_names(&bad), ["first_name", "current_password"]);

    let wrong_current =
        gina.patch("/api/users/me", json!({"password": "new password!", "current_password": "guess"})).await;
    assert_problem(&wrong_current, 400);
    let new_password = gina
        .patch("/api/users/me", json!({"password": "new password!", "current_password": "correct horse battery"}))
        .await;
    assert_eq!(new_password.status, 200, "{new_password:?}");
    let gina = client.login("gina@example.com", "new password!").await;

    let deleted = gina.delete("/api/users/me").await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    let login = client.post("/api/auth/login", json!({"email": "gina@example.com", "password": "new password!"})).await;
    assert_problem(&login, 401);
    // The deleted account's token went with it.
    assert_problem(&gina.get("/api/users/me").await, 401);
    // The e-mail is free again.
    register(&client, "gina").await;
}

async fn the_front_door_lists_the_service(backends: Backends) {
    let store = Store::new(backends);
    let host = store.start();
    let client = Client::new(&host);
    let api = client.get("/api").await;
    let names: Vec<&str> =
        api.body["services"].as_array().into_iter().flatten().filter_map(|s| s["name"].as_str()).collect();
    assert!(names.contains(&"users"), "{api:?}");
    // Paths of no service still reach the front door's 404, not the users service.
    let elsewhere = client.get("/api/usersx").await;
    assert_problem(&elsewhere, 404);
    assert_eq!(elsewhere.body["detail"], "no such path: /api/usersx");
}

macro_rules! on_backends {
    ($($name:ident),* $(,)?) => {
        mod on_embedded {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    super::$name(super::Backends::Embedded).await
                }
            )*
        }
    };
}

on_backends!(
    register_answers_the_user_without_secrets,
    bad_registrations_name_every_field,
    login_failures_are_401_then_429,
    parallel_guesses_stop_at_five,
    guessing_elsewhere_locks_out_only_the_guesser,
    changes_to_an_account_revoke_its_tokens,
    tokens_guard_the_own_account,
    only_admins_list_users_and_others_are_hidden,
    a_user_changes_and_deletes_their_account,
    the_front_door_lists_the_service,
    a_crowd_registering_at_once_is_served_or_asked_to_come_back,
);

/// The production setup: PostgreSQL (case-insensitive uniqueness, booleans, the
/// throttle's aggregates) and Kafka for the events.
#[tokio::test(flavor = "multi_thread")]
async fn on_kafka_postgres_register_login_and_throttle() {
    register_answers_the_user_without_secrets(Backends::KafkaPostgres).await;
    login_failures_are_401_then_429(Backends::KafkaPostgres).await;
    parallel_guesses_stop_at_five(Backends::KafkaPostgres).await;
}

/// Every change to an account reaches the broker, keyed by the user id, in the
/// shared envelope, and never with the password.
#[tokio::test(flavor = "multi_thread")]
async fn on_kafka_postgres_changes_are_published_keyed_by_user() {
    let store = Store::new(Backends::KafkaPostgres);
    let host = store.start();
    let client = Client::new(&host);
    let mut body = registration("hugo");
    body["email"] = json!(format!("hugo-{}@example.com", std::process::id()));
    let email = body["email"].as_str().unwrap_or_default().to_owned();
    let answer = client.post("/api/users", body).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    let id = answer.body["id"].as_str().unwrap_or_default().to_owned();
    let hugo = client.login(&email, "correct horse battery").await;
    assert_eq!(hugo.patch("/api/users/me", json!({"last_name": "Ball"})).await.status, 200);
    assert_eq!(hugo.delete("/api/users/me").await.status, 204);

    let events = user_events_keyed(&id).await;
    let of_type = |event_type: &str| events.iter().filter(|e| e["type"] == event_type).collect::<Vec<_>>();
    let registered = of_type("user.registered");
    assert_eq!(registered.len(), 1, "{events:?}");
    let event = registered[0];
    assert_eq!(event["correlation_id"], id.as_str());
    assert_eq!(event["data"]["user_id"], id.as_str());
    assert_eq!(event["data"]["email"], email.as_str());
    assert_eq!(event["data"]["sms_opt_in"], false);
    assert!(!event.to_string().contains("password"), "{event}");
    let updated = of_type("user.updated");
    assert_eq!(updated.iter().map(|e| &e["data"]["last_name"]).collect::<Vec<_>>(), [&json!("Ball")]);
    let deleted = of_type("user.deleted");
    assert_eq!(deleted.iter().map(|e| &e["data"]).collect::<Vec<_>>(), [&json!({"user_id": id})]);
}

/// The envelopes on the `user.*` topics keyed by `key`, read from the shared broker
/// by a new consumer until it has been idle for 10 s (other tests publish there too).
async fn user_events_keyed(key: &str) -> Vec<Json> {
    let key = key.to_owned();
    tokio::task::spawn_blocking(move || {
        let args = [
            "--include",
            "user\\..*",
            "--from-beginning",
            "--timeout-ms",
            "10000",
            "--property",
            "print.key=true",
            "--property",
            "key.separator=\t",
        ];
        let out = crate::kafka::shared()
            .try_tool(
                "org.apache.kafka.tools.consumer.ConsoleConsumer",
                &args,
                None,
                std::time::Duration::from_secs(90),
            )
            .unwrap_or_else(|e| panic!("reading the user.* topics: {e}"));
        out.lines()
            .filter_map(|line| line.split_once('\t'))
            .filter(|(k, _)| *k == key)
            .filter_map(|(_, value)| serde_json::from_str(value).ok())
            .collect()
    })
    .await
    .expect("the consumer thread")
}

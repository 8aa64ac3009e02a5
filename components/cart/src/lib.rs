//! The store's carts: one per customer, seen and changed only by them.
//!
//! A cart shows current prices: what the cart knows of a product is fetched from
//! catalog when it is first added (refusing a product that is missing or inactive)
//! and kept current by catalog's `product.updated` and `product.deleted` events.
//! Adding a product already in the cart adds to its quantity.

use estore_shared::api::{self, Validator, chain, match_path};
use estore_shared::auth;
use estore_shared::clock;
use estore_shared::event::Envelope;
use estore_shared::messaging::handler::{HandleError, Message, MessageHandler};
use estore_shared::money::{Currency, Money};
use estore_shared::params;
use estore_shared::problem::Problem;
use estore_shared::sql::{Database, Error, FromRow, Row};
use serde::{Deserialize, Serialize};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// The most of one product a cart holds.
const MAX_QUANTITY: i64 = 99;

#[http_component]
fn handle(req: Request) -> Result<Response, Problem> {
    let user = auth::caller(&req)?.sub;
    let db = Database::open("default")?;
    let path = req.path();
    let method = req.method();
    if match_path("/api/cart", path).is_some() {
        return match method {
            Method::Get => view(&db, &user),
            Method::Delete => clear(&db, &user),
            _ => Err(Problem::method_not_allowed("GET, DELETE")),
        };
    }
    if match_path("/api/cart/items", path).is_some() {
        return match method {
            Method::Post => add_item(&req, &db, &user),
            _ => Err(Problem::method_not_allowed("POST")),
        };
    }
    if let Some(params) = match_path("/api/cart/items/:product_id", path) {
        let product_id = params["product_id"]
            .parse::<i64>()
            .map_err(|_| Problem::not_found(format!("no product {} in the cart", &params["product_id"])))?;
        return match method {
            Method::Put => set_quantity(&req, &db, &user, product_id),
            Method::Delete => remove_item(&db, &user, product_id),
            _ => Err(Problem::method_not_allowed("PUT, DELETE")),
        };
    }
    Err(Problem::not_found(format!("no such path: {path}")))
}

// ---- The cart as the customer sees it -------------------------------------------

#[derive(Serialize)]
struct Cart {
    items: Vec<Line>,
    total: Money,
}

#[derive(Serialize)]
struct Line {
    product_id: i64,
    name: String,
    unit_price: Money,
    quantity: i64,
    line_total: Money,
    /// False once catalog deactivated the product: checkout will refuse it.
    active: bool,
}

/// A cart line joined with what the cart knows of its product.
struct StoredLine {
    product_id: i64,
    name: String,
    price: Money,
    quantity: i64,
    active: bool,
}

impl FromRow for StoredLine {
    fn from_row(row: &Row<'_>) -> Result<Self, Error> {
        Ok(StoredLine {
            product_id: row.get("product_id")?,
            name: row.get("name")?,
            price: Money::new(row.get("price_amount")?, row.get("price_currency")?),
            quantity: row.get("quantity")?,
            active: row.get("active")?,
        })
    }
}

fn view(db: &Database, user: &str) -> Result<Response, Problem> {
    Ok(api::json(200, &cart_of(db, user)?))
}

fn cart_of(db: &Database, user: &str) -> Result<Cart, Problem> {
    let stored: Vec<StoredLine> = db.query_as(
        "SELECT c.product_id, p.name, p.price_amount, p.price_currency, c.quantity, p.active \
         FROM cart_items c JOIN products p ON p.product_id = c.product_id \
         WHERE c.user_id = ? ORDER BY c.added_at, c.product_id",
        params![user],
    )?;
    let items = stored
        .into_iter()
        .map(|line| {
            let quantity = u32::try_from(line.quantity).map_err(|_| Problem::internal())?;
            let line_total = line.price.times(quantity).map_err(|_| Problem::internal())?;
            Ok(Line {
                product_id: line.product_id,
                name: line.name,
                unit_price: line.price,
                quantity: line.quantity,
                line_total,
                active: line.active,
            })
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    let currency = items.first().map_or(Currency::EUR, |line| line.unit_price.currency);
    let total = Money::sum(currency, items.iter().map(|line| line.line_total))
        .map_err(|e| Problem::unprocessable(format!("the cart cannot be totalled: {e}")))?;
    Ok(Cart { items, total })
}

// ---- Changing it ----------------------------------------------------------------

#[derive(Deserialize)]
struct NewItem {
    product_id: i64,
    quantity: i64,
}

#[derive(Deserialize)]
struct Quantity {
    quantity: i64,
}

fn check_quantity(quantity: i64) -> Result<(), Problem> {
    Validator::new().in_range("quantity", quantity, 1, MAX_QUANTITY).finish()
}

/// `POST /api/cart/items`: adds to the quantity already in the cart.
fn add_item(req: &Request, db: &Database, user: &str) -> Result<Response, Problem> {
    let item: NewItem = api::parse_json(req)?;
    check_quantity(item.quantity)?;
    let product = known_product(db, req, item.product_id)?;
    if !product.active {
        return Err(Problem::unprocessable(format!("product {} is not for sale", item.product_id)));
    }
    db.transaction(|db| {
        let current: Option<i64> = db
            .query("SELECT quantity FROM cart_items WHERE user_id = ? AND product_id = ?", params![user, item.product_id])?
            .get(0)
            .map(|row| row.get("quantity"))
            .transpose()?;
        let quantity = current.unwrap_or(0) + item.quantity;
        if quantity > MAX_QUANTITY {
            return Err(Problem::unprocessable(format!(
                "the cart would hold {quantity} of product {}; at most {MAX_QUANTITY}",
                item.product_id
            )));
        }
        db.execute(
            "INSERT INTO cart_items (user_id, product_id, quantity, added_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = excluded.quantity",
            params![user, item.product_id, quantity, clock::now_unix()],
        )?;
        Ok(())
    })?;
    Ok(api::json(201, &cart_of(db, user)?))
}

/// `PUT /api/cart/items/{product_id}`: sets the quantity of a product in the cart.
fn set_quantity(req: &Request, db: &Database, user: &str, product_id: i64) -> Result<Response, Problem> {
    let Quantity { quantity } = api::parse_json(req)?;
    check_quantity(quantity)?;
    let changed = db.execute(
        "UPDATE cart_items SET quantity = ? WHERE user_id = ? AND product_id = ?",
        params![quantity, user, product_id],
    )?;
    if changed == 0 {
        return Err(Problem::not_found(format!("no product {product_id} in the cart")));
    }
    view(db, user)
}

fn remove_item(db: &Database, user: &str, product_id: i64) -> Result<Response, Problem> {
    let removed =
        db.execute("DELETE FROM cart_items WHERE user_id = ? AND product_id = ?", params![user, product_id])?;
    if removed == 0 {
        return Err(Problem::not_found(format!("no product {product_id} in the cart")));
    }
    view(db, user)
}

fn clear(db: &Database, user: &str) -> Result<Response, Problem> {
    db.execute("DELETE FROM cart_items WHERE user_id = ?", params![user])?;
    view(db, user)
}

// ---- What the cart knows of products --------------------------------------------

/// A product as catalog describes it (its other fields are not the cart's concern).
#[derive(Deserialize)]
struct CatalogProduct {
    id: i64,
    name: String,
    price: Money,
    active: bool,
}

/// The product as the cart knows it, asking catalog the first time.
fn known_product(db: &Database, req: &Request, product_id: i64) -> Result<CatalogProduct, Problem> {
    let known = db
        .query("SELECT name, price_amount, price_currency, active FROM products WHERE product_id = ?", params![product_id])?;
    if let Some(row) = known.get(0) {
        return Ok(CatalogProduct {
            id: product_id,
            name: row.get("name")?,
            price: Money::new(row.get("price_amount")?, row.get("price_currency")?),
            active: row.get("active")?,
        });
    }
    let product = fetch_from_catalog(req, product_id)?;
    remember(db, &product)?;
    Ok(product)
}

/// `GET http://catalog.spin.internal/api/products/{id}`, as the customer.
fn fetch_from_catalog(req: &Request, product_id: i64) -> Result<CatalogProduct, Problem> {
    let url = format!("http://catalog.spin.internal/api/products/{product_id}");
    let answer = chain::call(req, "catalog", Method::Get, &url, None::<&()>)?;
    match answer.status {
        200 => answer.json(),
        404 => Err(Problem::not_found(format!("no product {product_id}"))),
        _ => Err(answer.unavailable()),
    }
}

fn remember(db: &Database, product: &CatalogProduct) -> Result<(), Error> {
    db.execute(
        "INSERT INTO products (product_id, name, price_amount, price_currency, active) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (product_id) DO UPDATE SET name = excluded.name, price_amount = excluded.price_amount, \
         price_currency = excluded.price_currency, active = excluded.active",
        params![product.id, product.name.as_str(), product.price.amount, product.price.currency.as_str(), product.active],
    )?;
    Ok(())
}

// ---- Events from catalog --------------------------------------------------------

/// `data` of product.updated (components/README.md).
#[derive(Deserialize)]
struct ProductUpdated {
    product_id: i64,
    name: String,
    price: Money,
    active: bool,
}

#[derive(Deserialize)]
struct ProductDeleted {
    product_id: i64,
}

struct Events;

impl MessageHandler for Events {
    /// product.updated: new prices show in every cart at once (only products some
    /// cart holds are kept). product.deleted: the product leaves every cart.
    fn handle(message: Message) -> Result<(), HandleError> {
        let db = Database::open("default")?;
        match message.topic.as_str() {
            "product.updated" => {
                let event: Envelope<ProductUpdated> = message.envelope()?;
                let product = event.data;
                db.execute(
                    "UPDATE products SET name = ?, price_amount = ?, price_currency = ?, active = ? WHERE product_id = ?",
                    params![
                        product.name.as_str(),
                        product.price.amount,
                        product.price.currency.as_str(),
                        product.active,
                        product.product_id
                    ],
                )?;
            }
            "product.deleted" => {
                let event: Envelope<ProductDeleted> = message.envelope()?;
                let id = event.data.product_id;
                db.transaction(|db| {
                    db.execute("DELETE FROM cart_items WHERE product_id = ?", params![id])?;
                    db.execute("DELETE FROM products WHERE product_id = ?", params![id])
                })?;
            }
            other => return Err(HandleError::Reject(format!("cart does not handle {other}"))),
        }
        Ok(())
    }
}

estore_shared::messaging::handler::export_message_handler!(Events);

//! catalog: the store's categories and products.
//!
//! - Anyone browses: categories, products by id, and a product search with keyword,
//!   filters, sorting and paging (products::Search). Reads are cached in the
//!   key-value store (cache), and a write forgets them all once it has committed.
//! - Administrators create, update and delete both. A product write publishes
//!   product.created, product.updated or product.deleted in its own transaction, so
//!   the event leaves exactly when the change is committed.
//! - inventory.changed keeps each product's `available` as inventory last reported it.

mod cache;
mod categories;
mod products;

use serde::Deserialize;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

use estore_shared::api::{self, Page, Params, match_path};
use estore_shared::auth;
use estore_shared::event::{Envelope, publish_event};
use estore_shared::messaging::handler::{HandleError, Message, MessageHandler};
use estore_shared::params;
use estore_shared::problem::{FieldError, Problem};
use estore_shared::sql::{Database, Error, Value};

use categories::{Category, CategoryInput};
use products::{Product, ProductChanged, ProductDeleted, ProductInput, Search};

// ---- HTTP -----------------------------------------------------------------------

#[http_component]
fn handle(req: Request) -> Result<Response, Problem> {
    let path = req.path();
    let categories = match_path("/api/categories", path);
    let category = match_path("/api/categories/:id", path);
    let products = match_path("/api/products", path);
    let product = match_path("/api/products/:id", path);
    match req.method() {
        Method::Get if categories.is_some() => list_categories(),
        Method::Get if let Some(p) = &category => get_category(id(p)?),
        Method::Post if categories.is_some() => create_category(&req),
        Method::Put if let Some(p) = &category => update_category(&req, id(p)?),
        Method::Delete if let Some(p) = &category => delete_category(&req, id(p)?),
        Method::Get if products.is_some() => search_products(&req),
        Method::Get if let Some(p) = &product => get_product(id(p)?),
        Method::Post if products.is_some() => create_product(&req),
        Method::Put if let Some(p) = &product => update_product(&req, id(p)?),
        Method::Delete if let Some(p) = &product => delete_product(&req, id(p)?),
        _ if categories.is_some() || products.is_some() => Err(Problem::method_not_allowed("GET, POST")),
        _ if category.is_some() || product.is_some() => Err(Problem::method_not_allowed("GET, PUT, DELETE")),
        _ => Err(Problem::not_found(format!("no such path: {path}"))),
    }
}

/// The `:id` of a path: a positive integer, or nothing by that id can exist.
fn id(params: &Params<'_>) -> Result<i64, Problem> {
    let text = &params["id"];
    text.parse().ok().filter(|id| *id > 0).ok_or_else(|| Problem::not_found(format!("no such id: {text}")))
}

fn db() -> Result<Database, Problem> {
    Ok(Database::open("default")?)
}

/// Runs a write in one transaction and, once it has committed, forgets every cached
/// read, so the change shows at once.
fn write<T>(change: impl FnOnce(&Database) -> Result<T, Problem>) -> Result<T, Problem> {
    let value = db()?.transaction(change)?;
    cache::invalidate();
    Ok(value)
}

/// Catalog writes are for administrators only.
fn require_admin(req: &Request) -> Result<(), Problem> {
    auth::caller(req)?.require_admin()
}

// ---- Categories -----------------------------------------------------------------

fn list_categories() -> Result<Response, Problem> {
    cache::read_through("categories", || {
        let sql = format!("SELECT {} FROM categories ORDER BY name", categories::COLUMNS);
        Ok(db()?.query_as::<Category>(&sql, params![])?)
    })
}

fn get_category(id: i64) -> Result<Response, Problem> {
    cache::read_through(&format!("category:{id}"), || find_category(&db()?, id))
}

fn create_category(req: &Request) -> Result<Response, Problem> {
    require_admin(req)?;
    let input: CategoryInput = api::parse_json(req)?;
    input.validate()?;
    let category = write(|tx| {
        let id = next_id(tx, "categories")?;
        tx.execute(
            "INSERT INTO categories (id, name, description) VALUES (?, ?, ?)",
            params![id, input.name.trim(), input.description.as_str()],
        )?;
        find_category(tx, id)
    })?;
    Ok(api::json(201, &category))
}

fn update_category(req: &Request, id: i64) -> Result<Response, Problem> {
    require_admin(req)?;
    let input: CategoryInput = api::parse_json(req)?;
    input.validate()?;
    let category = write(|tx| {
        let changed = tx.execute(
            "UPDATE categories SET name = ?, description = ? WHERE id = ?",
            params![input.name.trim(), input.description.as_str(), id],
        )?;
        if changed == 0 {
            return Err(no_category(id));
        }
        find_category(tx, id)
    })?;
    Ok(api::json(200, &category))
}

/// A category that still has products stays: deleting it would orphan them (409).
fn delete_category(req: &Request, id: i64) -> Result<Response, Problem> {
    require_admin(req)?;
    write(|tx| {
        let used = single(tx, "SELECT COUNT(*) AS n FROM products WHERE category_id = ?", params![id])?;
        if used > 0 {
            return Err(Problem::conflict(format!(
                "category {id} still has {used} products; move or delete them first"
            )));
        }
        if tx.execute("DELETE FROM categories WHERE id = ?", params![id])? == 0 {
            return Err(no_category(id));
        }
        Ok(())
    })?;
    Ok(Response::new(204, ()))
}

fn find_category(db: &Database, id: i64) -> Result<Category, Problem> {
    let sql = format!("SELECT {} FROM categories WHERE id = ?", categories::COLUMNS);
    db.query_optional_as(&sql, params![id])?.ok_or_else(|| no_category(id))
}

fn no_category(id: i64) -> Problem {
    Problem::not_found(format!("no category {id}"))
}

// ---- Products -------------------------------------------------------------------

fn search_products(req: &Request) -> Result<Response, Problem> {
    let search = Search::from_query(req.query())?;
    // The parsed search, not the raw query: equal searches share one entry.
    cache::read_through(&format!("products:{search:?}"), || {
        let db = db()?;
        let (filter, mut params) = search.where_clause();
        let total = single(&db, &format!("SELECT COUNT(*) AS n FROM products {filter}"), &params)?;
        params.extend([i64::from(search.page.size).into(), search.page.offset().into()]);
        let sql = format!("SELECT {} FROM products {filter} {} LIMIT ? OFFSET ?", products::COLUMNS, search.order_by());
        let items = db.query_as::<Product>(&sql, &params)?;
        Ok(Page::new(items, &search.page, total.try_into().unwrap_or(0)))
    })
}

fn get_product(id: i64) -> Result<Response, Problem> {
    cache::read_through(&format!("product:{id}"), || find_product(&db()?, id))
}

fn create_product(req: &Request) -> Result<Response, Problem> {
    require_admin(req)?;
    let input: ProductInput = api::parse_json(req)?;
    input.validate()?;
    let product = write(|tx| {
        require_category(tx, input.category_id)?;
        let id = next_id(tx, "products")?;
        tx.execute(
            "INSERT INTO products (id, sku, name, description, brand, category_id, price_amount, price_currency, \
             active, available) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            params![
                id,
                input.sku.trim(),
                input.name.trim(),
                input.description.as_str(),
                input.brand.trim(),
                input.category_id,
                input.price.amount,
                input.price.currency.as_str(),
                input.active
            ],
        )?;
        let product = find_product(tx, id)?;
        publish_product("product.created", &product)?;
        Ok::<_, Problem>(product)
    })?;
    Ok(api::json(201, &product))
}

fn update_product(req: &Request, id: i64) -> Result<Response, Problem> {
    require_admin(req)?;
    let input: ProductInput = api::parse_json(req)?;
    input.validate()?;
    let product = write(|tx| {
        require_category(tx, input.category_id)?;
        let changed = tx.execute(
            "UPDATE products SET sku = ?, name = ?, description = ?, brand = ?, category_id = ?, price_amount = ?, \
             price_currency = ?, active = ? WHERE id = ?",
            params![
                input.sku.trim(),
                input.name.trim(),
                input.description.as_str(),
                input.brand.trim(),
                input.category_id,
                input.price.amount,
                input.price.currency.as_str(),
                input.active,
                id
            ],
        )?;
        if changed == 0 {
            return Err(no_product(id));
        }
        let product = find_product(tx, id)?;
        publish_product("product.updated", &product)?;
        Ok(product)
    })?;
    Ok(api::json(200, &product))
}

fn delete_product(req: &Request, id: i64) -> Result<Response, Problem> {
    require_admin(req)?;
    write(|tx| {
        if tx.execute("DELETE FROM products WHERE id = ?", params![id])? == 0 {
            return Err(no_product(id));
        }
        let deleted = Envelope::new("product.deleted", id.to_string(), ProductDeleted { product_id: id });
        publish_event(&deleted, &id.to_string())?;
        Ok(())
    })?;
    Ok(Response::new(204, ()))
}

fn find_product(db: &Database, id: i64) -> Result<Product, Problem> {
    let sql = format!("SELECT {} FROM products WHERE id = ?", products::COLUMNS);
    db.query_optional_as(&sql, params![id])?.ok_or_else(|| no_product(id))
}

fn no_product(id: i64) -> Problem {
    Problem::not_found(format!("no product {id}"))
}

/// A product's category must exist: a 400 naming the field, not a foreign-key 500.
fn require_category(db: &Database, id: i64) -> Result<(), Problem> {
    match db.query("SELECT id FROM categories WHERE id = ?", params![id])?.is_empty() {
        true => Err(Problem::invalid(vec![FieldError::new("category_id", format!("no category {id}"))])),
        false => Ok(()),
    }
}

/// product.created or product.updated, keyed and correlated by the product id.
fn publish_product(event_type: &str, product: &Product) -> Result<(), Problem> {
    let key = product.id.to_string();
    publish_event(&Envelope::new(event_type, key.clone(), ProductChanged::from(product)), &key)?;
    Ok(())
}

/// The next id of `table`, taken inside the caller's transaction.
fn next_id(db: &Database, table: &str) -> Result<i64, Problem> {
    db.execute("UPDATE id_sequences SET last_id = last_id + 1 WHERE name = ?", params![table])?;
    single(db, "SELECT last_id AS n FROM id_sequences WHERE name = ?", params![table])
}

/// The number a query selects as `n` (a count, an id).
fn single(db: &Database, sql: &str, params: &[Value]) -> Result<i64, Problem> {
    let rows = db.query(sql, params)?;
    let row = rows.get(0).ok_or(Error::NoRows)?;
    Ok(row.get("n")?)
}

// ---- Events ---------------------------------------------------------------------

/// `data` of inventory.changed; `reserved` is inventory's business.
#[derive(Deserialize)]
struct InventoryChanged {
    product_id: i64,
    available: i64,
}

struct Events;

impl MessageHandler for Events {
    /// inventory.changed: the product's `available` follows inventory. Events about
    /// one product come in order (keyed by its id), so the last one wins; one for a
    /// product the catalog does not have (deleted meanwhile) changes nothing.
    fn handle(message: Message) -> Result<(), HandleError> {
        let event = message.envelope::<InventoryChanged>()?;
        let db = Database::open("default")?;
        db.transaction(|tx| {
            tx.execute(
                "UPDATE products SET available = ? WHERE id = ?",
                params![event.data.available, event.data.product_id],
            )
        })?;
        cache::invalidate();
        Ok(())
    }
}

estore_shared::messaging::handler::export_message_handler!(Events);

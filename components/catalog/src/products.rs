//! Products: what a product is, in the database, on the wire and in events; and
//! product search, from the query string to SQL.

use serde::{Deserialize, Serialize};

use estore_shared::api::{PageRequest, Validator, query_param};
use estore_shared::money::{Currency, Money};
use estore_shared::problem::Problem;
use estore_shared::sql::{Error, FromRow, Row, Value};

#[derive(Debug, Serialize)]
pub struct Product {
    pub id: i64,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub brand: String,
    pub category_id: i64,
    pub price: Money,
    pub active: bool,
    /// Stock as inventory last reported it.
    pub available: i64,
}

impl FromRow for Product {
    fn from_row(row: &Row<'_>) -> Result<Self, Error> {
        Ok(Product {
            id: row.get("id")?,
            sku: row.get("sku")?,
            name: row.get("name")?,
            description: row.get("description")?,
            brand: row.get("brand")?,
            category_id: row.get("category_id")?,
            price: Money::new(row.get("price_amount")?, row.get("price_currency")?),
            active: row.get("active")?,
            available: row.get("available")?,
        })
    }
}

pub const COLUMNS: &str =
    "id, sku, name, description, brand, category_id, price_amount, price_currency, active, available";

/// The body of a create or a (full) update. `available` is not in it: inventory owns
/// stock.
#[derive(Debug, Deserialize)]
pub struct ProductInput {
    pub sku: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub brand: String,
    pub category_id: i64,
    pub price: Money,
    #[serde(default = "active_by_default")]
    pub active: bool,
}

fn active_by_default() -> bool {
    true
}

impl ProductInput {
    pub fn validate(&self) -> Result<(), Problem> {
        Validator::new()
            .required("sku", &self.sku)
            .max_len("sku", &self.sku, 64)
            .required("name", &self.name)
            .max_len("name", &self.name, 200)
            .max_len("description", &self.description, 4000)
            .required("brand", &self.brand)
            .max_len("brand", &self.brand, 100)
            .positive("category_id", self.category_id)
            .positive("price.amount", self.price.amount)
            // One currency for the whole store, so carts and orders can add prices up.
            .check("price.currency", self.price.currency == Currency::EUR, "must be EUR")
            .finish()
    }
}

/// `data` of product.created and product.updated (components/README.md).
#[derive(Debug, Serialize)]
pub struct ProductChanged {
    pub product_id: i64,
    pub sku: String,
    pub name: String,
    pub price: Money,
    pub active: bool,
    pub category_id: i64,
}

impl From<&Product> for ProductChanged {
    fn from(p: &Product) -> Self {
        ProductChanged {
            product_id: p.id,
            sku: p.sku.clone(),
            name: p.name.clone(),
            price: p.price,
            active: p.active,
            category_id: p.category_id,
        }
    }
}

/// `data` of product.deleted.
#[derive(Debug, Serialize)]
pub struct ProductDeleted {
    pub product_id: i64,
}

/// A product search: `?q=&category=&min_price=&max_price=&in_stock=&page=&size=&sort=`.
/// Only active products are listed; an inactive one is still found by its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// Lowercased; matched anywhere in the name, description or brand.
    pub keyword: Option<String>,
    pub category: Option<i64>,
    /// Minor units, inclusive.
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    /// `true`: only what is in stock; `false`: only what is not.
    pub in_stock: Option<bool>,
    pub page: PageRequest,
}

/// `newest` sorts the newest first (ids grow with creation), `-newest` the oldest.
pub const SORTS: &[&str] = &["price", "name", "newest"];

impl Search {
    /// Reads and checks a query string; every invalid parameter is named in one 400.
    pub fn from_query(query: &str) -> Result<Search, Problem> {
        let page = PageRequest::from_query(query, SORTS, "newest");
        let mut validator = Validator::new();
        let keyword = query_param(query, "q").map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty());
        if let Some(q) = &keyword {
            validator.max_len("q", q, 100);
        }
        let category = number(&mut validator, query, "category", 1);
        let min_price = number(&mut validator, query, "min_price", 0);
        let max_price = number(&mut validator, query, "max_price", 0);
        if let (Some(min), Some(max)) = (min_price, max_price) {
            validator.check("max_price", min <= max, "must not be less than min_price");
        }
        let in_stock = query_param(query, "in_stock").and_then(|text| match text.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                validator.check("in_stock", false, "must be true or false");
                None
            }
        });
        // Both sets of errors in one 400.
        let page = match (page, validator.finish()) {
            (Ok(page), Ok(())) => page,
            (Err(mut a), Err(b)) => {
                a.errors.extend(b.errors);
                return Err(Problem::invalid(a.errors));
            }
            (Err(problem), _) | (_, Err(problem)) => return Err(problem),
        };
        Ok(Search { keyword, category, min_price, max_price, in_stock, page })
    }

    /// `WHERE ...` for the filters, with its parameters in order.
    pub fn where_clause(&self) -> (String, Vec<Value>) {
        let mut conditions = vec!["active = ?".to_owned()];
        let mut params = vec![Value::from(true)];
        if let Some(keyword) = &self.keyword {
            let pattern = format!("%{}%", escape_like(keyword));
            conditions.push(
                "(LOWER(name) LIKE ? ESCAPE '\\' OR LOWER(description) LIKE ? ESCAPE '\\' OR LOWER(brand) LIKE ? ESCAPE '\\')"
                    .to_owned(),
            );
            params.extend([pattern.clone(), pattern.clone(), pattern].map(Value::from));
        }
        let mut filter = |condition: &str, value: Option<i64>| {
            if let Some(value) = value {
                conditions.push(condition.to_owned());
                params.push(value.into());
            }
        };
        filter("category_id = ?", self.category);
        filter("price_amount >= ?", self.min_price);
        filter("price_amount <= ?", self.max_price);
        match self.in_stock {
            Some(true) => conditions.push("available > 0".to_owned()),
            Some(false) => conditions.push("available <= 0".to_owned()),
            None => {}
        }
        (format!("WHERE {}", conditions.join(" AND ")), params)
    }

    /// `ORDER BY ...`; the id last, so pages never overlap.
    pub fn order_by(&self) -> String {
        let sort = self.page.sort;
        let direction = sort.direction();
        match sort.key {
            "price" => format!("ORDER BY price_amount {direction}, id {direction}"),
            "name" => format!("ORDER BY LOWER(name) {direction}, id {direction}"),
            // newest: the highest ids first, unless reversed.
            _ if sort.descending => "ORDER BY id ASC".to_owned(),
            _ => "ORDER BY id DESC".to_owned(),
        }
    }
}

/// An optional whole-number parameter of at least `min`.
fn number(validator: &mut Validator, query: &str, name: &str, min: i64) -> Option<i64> {
    let text = query_param(query, name)?;
    let value = text.parse::<i64>().ok().filter(|n| *n >= min);
    validator.check(name, value.is_some(), format!("must be a whole number of at least {min}"));
    value
}

/// The keyword matched literally: `%`, `_` and `\` lose their LIKE meaning.
fn escape_like(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_active_products_newest_first() {
        let search = Search::from_query("").expect("valid");
        assert_eq!(search.where_clause(), ("WHERE active = ?".to_owned(), vec![Value::Boolean(true)]));
        assert_eq!(search.order_by(), "ORDER BY id DESC");
    }

    #[test]
    fn every_filter_is_a_parameter() {
        let search =
            Search::from_query("q=+Apple%25+&category=2&min_price=100&max_price=900&in_stock=true&sort=-price")
                .expect("valid");
        let (clause, params) = search.where_clause();
        assert!(clause.contains("LOWER(brand) LIKE ?") && clause.ends_with("available > 0"), "{clause}");
        assert_eq!(params[1], Value::Text("%apple\\%%".into()));
        assert_eq!(&params[4..], [Value::Int64(2), Value::Int64(100), Value::Int64(900)]);
        assert_eq!(search.order_by(), "ORDER BY price_amount DESC, id DESC");
    }

    #[test]
    fn names_every_bad_parameter() {
        let problem = Search::from_query("category=0&min_price=-1&max_price=x&in_stock=yes&size=0").expect_err("bad");
        let fields: Vec<&str> = problem.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["size", "category", "min_price", "max_price", "in_stock"]);
        let problem = Search::from_query("min_price=500&max_price=100").expect_err("bad");
        assert_eq!(problem.errors[0].field, "max_price");
    }
}

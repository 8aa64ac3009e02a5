//! Checkout: what `POST /api/orders` asks of the other services before an order
//! exists. Each is a chained call made as the customer, so cart shows their cart
//! and nobody else's.
//!
//! - cart: what the customer is buying;
//! - catalog: every product's price at this moment (the order keeps it) and
//!   whether it is still for sale;
//! - payments: the card number becomes a token (payments checks it, Luhn included);
//!   the number itself goes no further than that call.

use estore_shared::api::{Validator, chain};
use estore_shared::money::{Currency, Money};
use estore_shared::problem::{FieldError, Problem};
use serde::{Deserialize, Serialize};
use spin_sdk::http::{Method, Request};

use crate::order::{Address, Item, PaymentMethod};

/// The body of `POST /api/orders`.
#[derive(Deserialize)]
pub struct CheckoutRequest {
    pub shipping_address: Address,
    pub payment: CardInput,
}

#[derive(Deserialize)]
pub struct CardInput {
    pub card_number: String,
}

impl CheckoutRequest {
    /// Every missing or oversized address field in one 400.
    pub fn validate(&self) -> Result<(), Problem> {
        let address = &self.shipping_address;
        let mut validator = Validator::new();
        for (field, value, max) in [
            ("shipping_address.name", &address.name, 200),
            ("shipping_address.line1", &address.line1, 200),
            ("shipping_address.city", &address.city, 100),
            ("shipping_address.postal_code", &address.postal_code, 20),
            ("shipping_address.country", &address.country, 56),
        ] {
            validator.required(field, value.trim()).max_len(field, value, max);
        }
        if let Some(line2) = &address.line2 {
            validator.max_len("shipping_address.line2", line2, 200);
        }
        validator.required("payment.card_number", self.payment.card_number.trim()).finish()
    }
}

/// The customer's cart as cart answers `GET /api/cart`.
#[derive(Deserialize)]
struct Cart {
    items: Vec<CartLine>,
}

#[derive(Deserialize)]
struct CartLine {
    product_id: i64,
    quantity: u32,
}

/// A product as catalog answers `GET /api/products/{id}`.
#[derive(Deserialize)]
struct Product {
    name: String,
    price: Money,
    active: bool,
}

/// What is being bought, priced now: the order's items and total.
pub struct Priced {
    pub items: Vec<Item>,
    pub total: Money,
}

/// The caller's cart, every line priced by catalog now. An empty cart, a product
/// gone or no longer for sale, or a cart in two currencies is a 422.
pub fn price_cart(req: &Request) -> Result<Priced, Problem> {
    let answer = chain::call(req, "cart", Method::Get, "http://cart.spin.internal/api/cart", None::<&()>)?;
    if answer.status != 200 {
        return Err(answer.unavailable());
    }
    let cart: Cart = answer.json()?;
    if cart.items.is_empty() {
        return Err(Problem::unprocessable("the cart is empty: add something before checking out"));
    }
    let items = cart
        .items
        .iter()
        .map(|line| {
            let product = current_product(req, line.product_id)?;
            Ok(Item { product_id: line.product_id, name: product.name, quantity: line.quantity, unit_price: product.price })
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    let currency = items.first().map_or(Currency::EUR, |item| item.unit_price.currency);
    let lines = items.iter().map(|item| item.unit_price.times(item.quantity)).collect::<Result<Vec<_>, _>>();
    let total = lines
        .and_then(|lines| Money::sum(currency, lines))
        .map_err(|e| Problem::unprocessable(format!("the cart cannot be totalled: {e}")))?;
    Ok(Priced { items, total })
}

fn current_product(req: &Request, product_id: i64) -> Result<Product, Problem> {
    let url = format!("http://catalog.spin.internal/api/products/{product_id}");
    let answer = chain::call(req, "catalog", Method::Get, &url, None::<&()>)?;
    let product: Product = match answer.status {
        200 => answer.json()?,
        404 => return Err(Problem::unprocessable(format!("product {product_id} in the cart no longer exists"))),
        _ => return Err(answer.unavailable()),
    };
    if !product.active {
        return Err(Problem::unprocessable(format!("{} (product {product_id}) is no longer for sale", product.name)));
    }
    Ok(product)
}

#[derive(Serialize)]
struct CardNumber<'a> {
    card_number: &'a str,
}

/// Payments' token for the card. A number payments refuses (not a card number,
/// failing Luhn) is the customer's 400 on `payment.card_number`.
pub fn tokenize_card(req: &Request, card_number: &str) -> Result<PaymentMethod, Problem> {
    let answer = chain::call(
        req,
        "payments",
        Method::Post,
        "http://payments.spin.internal/internal/payment-methods",
        Some(&CardNumber { card_number }),
    )?;
    match answer.status {
        201 => answer.json(),
        400 => {
            let refused = answer.problem();
            let why = refused.errors.into_iter().next().map_or(refused.detail, |error| error.message);
            Err(Problem::invalid(vec![FieldError::new("payment.card_number", why)]))
        }
        _ => Err(answer.unavailable()),
    }
}

//! `data` of the events the notification services send about (components/README.md),
//! as far as a message needs it: unknown fields are ignored, so each producer's
//! full shape reads here.

use serde::Deserialize;

use crate::money::Money;

/// An item of an order event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Item {
    pub product_id: i64,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderConfirmed {
    pub order_id: String,
    pub user_id: String,
    pub items: Vec<Item>,
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderShipped {
    pub order_id: String,
    pub user_id: String,
    pub carrier: String,
    pub tracking_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderDelivered {
    pub order_id: String,
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderCancelled {
    pub order_id: String,
    pub user_id: String,
    pub reason: String,
    #[serde(default)]
    pub was_paid: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PaymentRefunded {
    pub order_id: String,
    pub user_id: String,
    pub amount: Money,
}

//! What each text says: short (one SMS segment where it can be), signed with the
//! store's name since a text has no sender name of its own.

use estore_shared::notify::Contact;
use estore_shared::notify::events::{OrderConfirmed, OrderShipped};

pub fn welcome(to: &Contact) -> String {
    format!("Electronic Store: welcome, {}! Your account {} is ready.", to.greeting_name(), to.username)
}

pub fn order_confirmed(order: &OrderConfirmed) -> String {
    format!("Electronic Store: order {} is confirmed, total {}.", short(&order.order_id), order.total)
}

pub fn order_shipped(order: &OrderShipped) -> String {
    format!(
        "Electronic Store: order {} has shipped with {}, tracking number {}.",
        short(&order.order_id),
        order.carrier,
        order.tracking_number
    )
}

pub fn order_delivered(order_id: &str) -> String {
    format!("Electronic Store: order {} has been delivered. Enjoy!", short(order_id))
}

/// The first block of a UUID: enough to tell orders apart in a text.
fn short(id: &str) -> &str {
    id.split('-').next().unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use estore_shared::money::{Currency, Money};

    use super::*;

    #[test]
    fn texts_name_the_order_briefly_and_show_money_as_people_read_it() {
        let order = OrderConfirmed {
            order_id: "1a2b3c4d-0000-4000-8000-000000000000".into(),
            user_id: "u1".into(),
            items: Vec::new(),
            total: Money::new(129900, Currency::EUR),
        };
        assert_eq!(order_confirmed(&order), "Electronic Store: order 1a2b3c4d is confirmed, total €1,299.00.");
    }
}

//! What each e-mail says, as plain text and as simple HTML (the same blocks, escaped).
//! Pure functions of the event and the addressee, so a redelivered event renders the
//! same message.

use estore_shared::money::Money;
use estore_shared::notify::Contact;
use estore_shared::notify::events::{Item, OrderCancelled, OrderConfirmed, OrderShipped, PaymentRefunded};

use crate::Promotion;

/// An e-mail ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn welcome(to: &Contact) -> Mail {
    compose(
        "Welcome to the Electronic Store".into(),
        to,
        vec![
            Block::Paragraph(format!("your account {} is ready.", to.username)),
            Block::Paragraph("Browse the catalog, fill your cart and check out whenever you like.".into()),
        ],
    )
}

pub fn order_confirmed(to: &Contact, order: &OrderConfirmed) -> Mail {
    compose(
        format!("Order {} confirmed", short(&order.order_id)),
        to,
        vec![
            Block::Paragraph(format!("thank you for your order {}. It is paid and on its way to packing:", order.order_id)),
            Block::List(order.items.iter().map(line).collect()),
            Block::Paragraph(format!("Total: {}", order.total)),
        ],
    )
}

pub fn order_shipped(to: &Contact, order: &OrderShipped) -> Mail {
    compose(
        format!("Order {} shipped", short(&order.order_id)),
        to,
        vec![
            Block::Paragraph(format!("your order {} has left our warehouse.", order.order_id)),
            Block::Paragraph(format!("Carrier: {}, tracking number: {}", order.carrier, order.tracking_number)),
        ],
    )
}

pub fn order_delivered(to: &Contact, order_id: &str) -> Mail {
    compose(
        format!("Order {} delivered", short(order_id)),
        to,
        vec![Block::Paragraph(format!("your order {order_id} has been delivered. Enjoy!"))],
    )
}

pub fn order_cancelled(to: &Contact, order: &OrderCancelled) -> Mail {
    let mut blocks = vec![
        Block::Paragraph(format!("your order {} has been cancelled.", order.order_id)),
        Block::Paragraph(format!("Reason: {}", order.reason)),
    ];
    if order.was_paid {
        blocks.push(Block::Paragraph("What you paid is refunded; a separate e-mail confirms it.".into()));
    }
    compose(format!("Order {} cancelled", short(&order.order_id)), to, blocks)
}

pub fn payment_refunded(to: &Contact, refund: &PaymentRefunded) -> Mail {
    compose(
        format!("Refund for order {}", short(&refund.order_id)),
        to,
        vec![Block::Paragraph(format!(
            "we have refunded {} for your order {} to your payment method.",
            refund.amount, refund.order_id
        ))],
    )
}

pub fn promotion(to: &Contact, promotion: &Promotion) -> Mail {
    let mut blocks: Vec<Block> = promotion
        .body
        .split("\n\n")
        .map(str::trim)
        .filter(|paragraph| !paragraph.is_empty())
        .map(|paragraph| Block::Paragraph(paragraph.to_owned()))
        .collect();
    blocks.push(Block::Paragraph(
        "You get this because you asked for the store's offers; turn them off in your profile (marketing_opt_in)."
            .into(),
    ));
    compose(promotion.subject.clone(), to, blocks)
}

// ---- Putting a message together ----------------------------------------------------

enum Block {
    Paragraph(String),
    List(Vec<String>),
}

/// A greeting, the blocks, a signature; the text and the HTML say the same.
fn compose(subject: String, to: &Contact, blocks: Vec<Block>) -> Mail {
    let greeting = format!("Hello {},", to.greeting_name());
    let signature = "The Electronic Store";
    let mut text = format!("{greeting}\n\n");
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head><body>\n<p>{}</p>\n",
        escape(&subject),
        escape(&greeting)
    );
    for block in &blocks {
        match block {
            Block::Paragraph(paragraph) => {
                text.push_str(&format!("{paragraph}\n\n"));
                html.push_str(&format!("<p>{}</p>\n", escape(paragraph).replace('\n', "<br>")));
            }
            Block::List(items) => {
                html.push_str("<ul>\n");
                for item in items {
                    text.push_str(&format!("  - {item}\n"));
                    html.push_str(&format!("<li>{}</li>\n", escape(item)));
                }
                text.push('\n');
                html.push_str("</ul>\n");
            }
        }
    }
    text.push_str(&format!("-- \n{signature}\n"));
    html.push_str(&format!("<p>{signature}</p>\n</body></html>\n"));
    Mail { subject, text, html }
}

/// `2 × Laptop Pro 15 at €1,299.00 = €2,598.00`; a total past i64 shows as unknown
/// rather than failing the e-mail.
fn line(item: &Item) -> String {
    let total = u32::try_from(item.quantity)
        .ok()
        .and_then(|quantity| item.unit_price.times(quantity).ok())
        .map_or_else(|| "?".to_owned(), |total: Money| total.to_string());
    format!("{} × {} at {} = {total}", item.quantity, item.name, item.unit_price)
}

/// The first block of a UUID: enough to tell orders apart in a subject line.
fn short(id: &str) -> &str {
    id.split('-').next().unwrap_or(id)
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use estore_shared::money::Currency;

    use super::*;

    fn ada() -> Contact {
        Contact {
            user_id: "u1".into(),
            username: "ada".into(),
            email: "ada@example.com".into(),
            first_name: "Ada <3".into(),
            last_name: "Lovelace".into(),
            phone: None,
            sms_opt_in: false,
            marketing_opt_in: true,
        }
    }

    #[test]
    fn a_confirmation_lists_the_items_and_the_total_in_both_bodies() {
        let order = OrderConfirmed {
            order_id: "1a2b3c4d-0000-4000-8000-000000000000".into(),
            user_id: "u1".into(),
            items: vec![Item {
                product_id: 1,
                name: "Laptop".into(),
                quantity: 2,
                unit_price: Money::new(129900, Currency::EUR),
            }],
            total: Money::new(259800, Currency::EUR),
        };
        let mail = order_confirmed(&ada(), &order);
        assert_eq!(mail.subject, "Order 1a2b3c4d confirmed");
        assert!(mail.text.starts_with("Hello Ada <3,\n"), "{}", mail.text);
        assert!(mail.text.contains("2 × Laptop at €1,299.00 = €2,598.00"), "{}", mail.text);
        assert!(mail.text.contains("Total: €2,598.00"), "{}", mail.text);
        assert!(mail.html.contains("<p>Hello Ada &lt;3,</p>"), "{}", mail.html);
        assert!(mail.html.contains("<li>2 × Laptop at €1,299.00 = €2,598.00</li>"), "{}", mail.html);
    }

    #[test]
    fn a_promotion_keeps_its_paragraphs_and_says_why_it_came() {
        let offer =
            Promotion { promotion_id: "p1".into(), subject: "Sale".into(), body: "All <b>half</b> price.\n\nToday only.".into() };
        let mail = promotion(&ada(), &offer);
        assert_eq!(mail.subject, "Sale");
        assert!(mail.html.contains("<p>All &lt;b&gt;half&lt;/b&gt; price.</p>\n<p>Today only.</p>"), "{}", mail.html);
        assert!(mail.text.contains("marketing_opt_in"));
    }
}

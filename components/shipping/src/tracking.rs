//! Carriers, tracking numbers and a shipment's statuses: the rules, apart from the
//! database.

/// Where a shipment stands. Only ever moves forward, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Handed to the carrier: a shipment is created in this status.
    Shipped,
    OutForDelivery,
    Delivered,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Shipped => "SHIPPED",
            Status::OutForDelivery => "OUT_FOR_DELIVERY",
            Status::Delivered => "DELIVERED",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [Status::Shipped, Status::OutForDelivery, Status::Delivered].into_iter().find(|s| s.as_str() == text)
    }

    /// What a carrier may report: everything after the hand-over.
    pub fn reportable(text: &str) -> Option<Status> {
        Status::parse(text).filter(|s| *s != Status::Shipped)
    }

    /// The tracking event's description when the carrier gives none.
    pub fn default_description(self) -> &'static str {
        match self {
            Status::Shipped => "handed to the carrier",
            Status::OutForDelivery => "out for delivery",
            Status::Delivered => "delivered",
        }
    }
}

/// What a carrier's report does to a shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Forward (skipping a status is fine: not every carrier reports each one).
    Advance,
    /// The status it has already: a carrier retrying its webhook. Nothing changes.
    Repeat,
    /// Behind where it is: refused.
    Backwards,
}

pub fn step(current: Status, reported: Status) -> Step {
    match reported.cmp(&current) {
        std::cmp::Ordering::Greater => Step::Advance,
        std::cmp::Ordering::Equal => Step::Repeat,
        std::cmp::Ordering::Less => Step::Backwards,
    }
}

/// Who carries a parcel to `country` (ISO 3166-1 alpha-2), and its tracking numbers'
/// prefix: fixed per destination, so the same order always goes the same way.
pub fn carrier_for(country: &str) -> (&'static str, &'static str) {
    match country.trim().to_ascii_uppercase().as_str() {
        "AT" | "DE" | "CH" | "LI" => ("DHL", "DHL"),
        "US" | "CA" | "MX" => ("UPS", "1Z"),
        _ => ("DPD", "DPD"),
    }
}

/// A tracking number: the carrier's prefix and 12 digits drawn from `random` (the
/// database's UNIQUE constraint catches the one-in-10^12 repeat).
pub fn tracking_number(prefix: &str, random: u128) -> String {
    format!("{prefix}{:012}", random % 1_000_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_only_move_forward() {
        assert_eq!(step(Status::Shipped, Status::OutForDelivery), Step::Advance);
        assert_eq!(step(Status::Shipped, Status::Delivered), Step::Advance);
        assert_eq!(step(Status::OutForDelivery, Status::Delivered), Step::Advance);
        assert_eq!(step(Status::OutForDelivery, Status::OutForDelivery), Step::Repeat);
        assert_eq!(step(Status::Delivered, Status::Delivered), Step::Repeat);
        assert_eq!(step(Status::Delivered, Status::OutForDelivery), Step::Backwards);
    }

    #[test]
    fn carriers_report_only_what_follows_the_hand_over() {
        assert_eq!(Status::reportable("OUT_FOR_DELIVERY"), Some(Status::OutForDelivery));
        assert_eq!(Status::reportable("DELIVERED"), Some(Status::Delivered));
        for refused in ["SHIPPED", "delivered", "LOST", ""] {
            assert_eq!(Status::reportable(refused), None, "{refused}");
        }
    }

    #[test]
    fn carriers_follow_the_destination() {
        assert_eq!(carrier_for("AT"), ("DHL", "DHL"));
        assert_eq!(carrier_for(" de "), ("DHL", "DHL"));
        assert_eq!(carrier_for("US"), ("UPS", "1Z"));
        assert_eq!(carrier_for("FR"), ("DPD", "DPD"));
        assert_eq!(tracking_number("1Z", 42), "1Z000000000042");
        assert_eq!(tracking_number("DHL", u128::MAX).len(), 15);
    }
}

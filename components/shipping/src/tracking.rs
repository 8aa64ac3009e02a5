//! Carriers, tracking numbers and a shipment's statuses: the rules, apart from the
//! database.

/// Where a shipment stands. Only ever moves forward, in this order; a shipment
/// still awaiting pickup may instead be cancelled with its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Packed, waiting for the carrier (dispatch `on_pickup` only).
    AwaitingPickup,
    /// Handed to the carrier: order.shipped.
    Shipped,
    OutForDelivery,
    Delivered,
    /// Its order was cancelled before the carrier picked it up.
    Cancelled,
}

impl Status {
    const ALL: [Status; 5] =
        [Status::AwaitingPickup, Status::Shipped, Status::OutForDelivery, Status::Delivered, Status::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::AwaitingPickup => "AWAITING_PICKUP",
            Status::Shipped => "SHIPPED",
            Status::OutForDelivery => "OUT_FOR_DELIVERY",
            Status::Delivered => "DELIVERED",
            Status::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// What a carrier may report: `PICKED_UP` (the hand-over, when the store waits
    /// for it), `OUT_FOR_DELIVERY` and `DELIVERED`.
    pub fn reportable(text: &str) -> Option<Status> {
        match text {
            "PICKED_UP" => Some(Status::Shipped),
            "OUT_FOR_DELIVERY" => Some(Status::OutForDelivery),
            "DELIVERED" => Some(Status::Delivered),
            _ => None,
        }
    }

    /// The tracking event's description when the carrier gives none.
    pub fn default_description(self) -> &'static str {
        match self {
            Status::AwaitingPickup => "packed, waiting for the carrier",
            Status::Shipped => "handed to the carrier",
            Status::OutForDelivery => "out for delivery",
            Status::Delivered => "delivered",
            Status::Cancelled => "cancelled with its order",
        }
    }
}

/// When a confirmed order leaves: variable `shipping_dispatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// Handed to the carrier as soon as it is confirmed (the default).
    OnConfirmation,
    /// Packed and held until the carrier reports `PICKED_UP`, so that a customer
    /// can still cancel a paid order meanwhile.
    OnPickup,
}

impl Dispatch {
    pub fn parse(text: &str) -> Option<Dispatch> {
        match text.trim() {
            "" | "on_confirmation" => Some(Dispatch::OnConfirmation),
            "on_pickup" => Some(Dispatch::OnPickup),
            _ => None,
        }
    }

    /// The status a new shipment starts in.
    pub fn first_status(self) -> Status {
        match self {
            Dispatch::OnConfirmation => Status::Shipped,
            Dispatch::OnPickup => Status::AwaitingPickup,
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
    /// The shipment was cancelled: nothing more happens to it.
    Cancelled,
}

pub fn step(current: Status, reported: Status) -> Step {
    if current == Status::Cancelled {
        return Step::Cancelled;
    }
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
        assert_eq!(step(Status::AwaitingPickup, Status::Shipped), Step::Advance);
        assert_eq!(step(Status::AwaitingPickup, Status::Delivered), Step::Advance);
        assert_eq!(step(Status::Cancelled, Status::Shipped), Step::Cancelled);
    }

    #[test]
    fn dispatch_holds_parcels_only_when_asked() {
        assert_eq!(Dispatch::parse("").map(Dispatch::first_status), Some(Status::Shipped));
        assert_eq!(Dispatch::parse("on_confirmation").map(Dispatch::first_status), Some(Status::Shipped));
        assert_eq!(Dispatch::parse("on_pickup").map(Dispatch::first_status), Some(Status::AwaitingPickup));
        assert_eq!(Dispatch::parse("sometimes"), None);
    }

    #[test]
    fn carriers_report_only_what_follows_the_hand_over() {
        assert_eq!(Status::reportable("OUT_FOR_DELIVERY"), Some(Status::OutForDelivery));
        assert_eq!(Status::reportable("DELIVERED"), Some(Status::Delivered));
        assert_eq!(Status::reportable("PICKED_UP"), Some(Status::Shipped));
        for refused in ["SHIPPED", "AWAITING_PICKUP", "CANCELLED", "delivered", "LOST", ""] {
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

//! Whether an order can be reserved: the saga's rule, apart from the database.

use std::collections::BTreeMap;

use serde::Serialize;

/// One product of a reservation, however many lines of the order named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub product_id: i64,
    pub quantity: i64,
}

/// A product the order wants more of than there is (inventory.rejected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shortage {
    pub product_id: i64,
    pub requested: i64,
    pub available: i64,
}

/// The order's `(product_id, quantity)` lines, merged per product, against what is
/// `available` (a product without stock has none): every line if all can be had,
/// otherwise every shortage and nothing else — all or nothing.
pub fn plan(
    items: impl IntoIterator<Item = (i64, u32)>,
    available: &BTreeMap<i64, i64>,
) -> Result<Vec<Line>, Vec<Shortage>> {
    let mut wanted = BTreeMap::<i64, i64>::new();
    for (product_id, quantity) in items {
        *wanted.entry(product_id).or_default() += i64::from(quantity);
    }
    let lines: Vec<Line> = wanted
        .into_iter()
        .filter(|(_, q)| *q > 0)
        .map(|(product_id, quantity)| Line { product_id, quantity })
        .collect();
    let shortages: Vec<Shortage> = lines
        .iter()
        .filter_map(|line| {
            let have = available.get(&line.product_id).copied().unwrap_or(0);
            (have < line.quantity).then_some(Shortage {
                product_id: line.product_id,
                requested: line.quantity,
                available: have,
            })
        })
        .collect();
    if shortages.is_empty() { Ok(lines) } else { Err(shortages) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stock() -> BTreeMap<i64, i64> {
        BTreeMap::from([(1, 5), (2, 1), (3, 0)])
    }

    #[test]
    fn every_line_when_all_are_in_stock() {
        assert_eq!(
            plan([(2, 1), (1, 5)], &stock()),
            Ok(vec![Line { product_id: 1, quantity: 5 }, Line { product_id: 2, quantity: 1 }])
        );
    }

    #[test]
    fn lines_of_one_product_add_up() {
        assert_eq!(plan([(1, 3), (1, 2)], &stock()), Ok(vec![Line { product_id: 1, quantity: 5 }]));
        assert_eq!(plan([(1, 3), (1, 3)], &stock()), Err(vec![Shortage { product_id: 1, requested: 6, available: 5 }]));
    }

    #[test]
    fn one_short_item_rejects_the_order_naming_only_the_short_ones() {
        assert_eq!(
            plan([(1, 1), (2, 2), (3, 1), (99, 1)], &stock()),
            Err(vec![
                Shortage { product_id: 2, requested: 2, available: 1 },
                Shortage { product_id: 3, requested: 1, available: 0 },
                Shortage { product_id: 99, requested: 1, available: 0 },
            ])
        );
    }

    #[test]
    fn empty_lines_hold_nothing() {
        assert_eq!(plan([(1, 0)], &stock()), Ok(vec![]));
        assert_eq!(plan([], &stock()), Ok(vec![]));
    }
}

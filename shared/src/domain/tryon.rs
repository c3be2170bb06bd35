//! Cart try-ons (seed 004): the price of a cart, and the states a session and
//! its items move through. Plain rules, no I/O.
//!
//! Price: 1 credit per item times the quality multiplier (sd 1, hd 2, 4k 4);
//! the whole cart then gets a volume discount by its number of items (5-9:
//! 10 %, 10-14: 20 %, 15-19: 30 %, 20: 40 %); the total is rounded up to
//! whole credits. The total is split over the items as whole credits (the
//! first `total % n` items carry one more), so refunding an item gives back
//! exactly its share and refunding every item gives back exactly the total.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const MIN_ITEMS: usize = 1;
pub const MAX_ITEMS: usize = 20;
/// Credits of one item before the multiplier.
pub const BASE_CREDITS_PER_ITEM: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Quality {
    #[serde(rename = "sd")]
    Sd,
    #[serde(rename = "hd")]
    Hd,
    #[serde(rename = "4k")]
    FourK,
}

impl Quality {
    pub const NAMES: &'static [&'static str] = &["sd", "hd", "4k"];

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "sd" => Some(Quality::Sd),
            "hd" => Some(Quality::Hd),
            "4k" => Some(Quality::FourK),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Sd => "sd",
            Quality::Hd => "hd",
            Quality::FourK => "4k",
        }
    }

    pub fn multiplier(self) -> i64 {
        match self {
            Quality::Sd => 1,
            Quality::Hd => 2,
            Quality::FourK => 4,
        }
    }

    /// Longest side of the rendered image, in pixels.
    pub fn output_pixels(self) -> u32 {
        match self {
            Quality::Sd => 512,
            Quality::Hd => 1024,
            Quality::FourK => 2048,
        }
    }
}

/// The volume discount of a cart of `items` items, in percent.
pub fn discount_percent(items: usize) -> i64 {
    match items {
        0..=4 => 0,
        5..=9 => 10,
        10..=14 => 20,
        15..=19 => 30,
        _ => 40,
    }
}

/// How a cart's price is made up; `shares` split `total` over the items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub items: usize,
    pub base_credits_per_item: i64,
    pub quality: Quality,
    pub multiplier: i64,
    pub subtotal: i64,
    pub discount_percent: i64,
    /// Credits taken off the subtotal (after rounding the total up).
    pub discount: i64,
    pub total: i64,
    pub shares: Vec<i64>,
}

pub fn price(items: usize, quality: Quality) -> Price {
    let subtotal = items as i64 * BASE_CREDITS_PER_ITEM * quality.multiplier();
    let percent = discount_percent(items);
    // Rounded up to whole credits, in integers: ceil(subtotal * (100 - p) / 100).
    let total = (subtotal * (100 - percent) + 99) / 100;
    let n = items.max(1) as i64;
    let shares = (0..items as i64).map(|i| total / n + i64::from(i < total % n)).collect();
    Price {
        items,
        base_credits_per_item: BASE_CREDITS_PER_ITEM,
        quality,
        multiplier: quality.multiplier(),
        subtotal,
        discount_percent: percent,
        discount: subtotal - total,
        total,
        shares,
    }
}

impl Price {
    /// The breakdown as the API shows it.
    pub fn to_body(&self) -> Value {
        json!({
            "items": self.items,
            "base_credits_per_item": self.base_credits_per_item,
            "quality": self.quality,
            "multiplier": self.multiplier,
            "subtotal": self.subtotal,
            "discount_percent": self.discount_percent,
            "discount": self.discount,
            "total": self.total,
        })
    }
}

/// States of an item: `queued -> processing -> completed | failed`, or
/// `queued -> cancelled`. A session is `processing` until every item reached
/// one of the last three, then `completed` (at least one image), `failed` (none,
/// and at least one failed) or `cancelled` (every item cancelled).
pub const ITEM_QUEUED: &str = "queued";
pub const ITEM_PROCESSING: &str = "processing";
pub const ITEM_COMPLETED: &str = "completed";
pub const ITEM_FAILED: &str = "failed";
pub const ITEM_CANCELLED: &str = "cancelled";

pub const SESSION_STATUSES: &[&str] = &["processing", "completed", "failed", "cancelled"];

/// The session's final status once every item is done.
pub fn final_status(completed: i64, failed: i64) -> &'static str {
    if completed > 0 {
        "completed"
    } else if failed > 0 {
        "failed"
    } else {
        "cancelled"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_price_table_for_every_quality_and_cart_size() {
        for quality in [Quality::Sd, Quality::Hd, Quality::FourK] {
            for items in MIN_ITEMS..=MAX_ITEMS {
                let p = price(items, quality);
                let subtotal = items as i64 * quality.multiplier();
                let percent = match items {
                    1..=4 => 0,
                    5..=9 => 10,
                    10..=14 => 20,
                    15..=19 => 30,
                    _ => 40,
                };
                let exact = subtotal as f64 * (100 - percent) as f64 / 100.0;
                assert_eq!(p.subtotal, subtotal, "{items} {quality:?}");
                assert_eq!(p.discount_percent, percent);
                assert_eq!(p.total, exact.ceil() as i64, "{items} x {quality:?}: {exact}");
                assert_eq!(p.discount, subtotal - p.total);
                assert_eq!(p.shares.len(), items);
                assert_eq!(p.shares.iter().sum::<i64>(), p.total);
                assert!(p.shares.iter().all(|s| *s >= 0));
                let (min, max) = (p.shares.iter().min().copied(), p.shares.iter().max().copied());
                assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 1), "shares differ by at most one credit");
            }
        }
    }

    #[test]
    fn worked_examples() {
        // 12 hd items: 24 credits, 20 % off = 19.2, rounded up to 20.
        let p = price(12, Quality::Hd);
        assert_eq!((p.subtotal, p.discount_percent, p.total, p.discount), (24, 20, 20, 4));
        assert_eq!(p.shares, [2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1]);
        // 1 sd item: 1 credit, no discount.
        assert_eq!(price(1, Quality::Sd).total, 1);
        // 5 sd items: 5 * 0.9 = 4.5 -> 5.
        assert_eq!(price(5, Quality::Sd).total, 5);
        // 20 4k items: 80 * 0.6 = 48.
        assert_eq!(price(20, Quality::FourK).total, 48);
        // 15 hd: 30 * 0.7 = 21.
        assert_eq!(price(15, Quality::Hd).total, 21);
    }

    #[test]
    fn a_session_ends_completed_failed_or_cancelled() {
        assert_eq!(final_status(1, 5), "completed");
        assert_eq!(final_status(0, 1), "failed");
        assert_eq!(final_status(0, 0), "cancelled");
    }
}

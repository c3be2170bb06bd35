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
use uuid::Uuid;

use crate::events::{Event, catalogue::TryonSessionFinished};

pub const MIN_ITEMS: usize = 1;
pub const MAX_ITEMS: usize = 20;
/// Credits of one item before the multiplier.
pub const BASE_CREDITS_PER_ITEM: i64 = 1;

crate::string_enum!(
    /// A render's quality: its price multiplier and output size.
    Quality {
        Sd => "sd",
        Hd => "hd",
        FourK => "4k",
    }
);

crate::string_enum!(
    /// A session's status as a list filters it (`queued` until the worker
    /// takes its first item; see the item states below).
    SessionStatus {
        Queued => "queued",
        Processing => "processing",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

impl Quality {
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

/// How a cart's price is made up, as the API shows it (the per-item shares
/// stay internal: refunds use them, callers see each item's `credits`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PriceView {
    /// Number of cart items priced.
    pub items: i64,
    pub base_credits_per_item: i64,
    pub quality: Quality,
    /// The quality's price multiplier (sd 1, hd 2, 4k 4).
    pub multiplier: i64,
    /// Credits before the volume discount.
    pub subtotal: i64,
    /// The volume discount of this cart size, in percent.
    pub discount_percent: i64,
    /// Credits taken off the subtotal (after rounding the total up).
    pub discount: i64,
    /// Credits charged for the whole cart.
    pub total: i64,
}

impl Price {
    pub fn view(&self) -> PriceView {
        PriceView {
            items: self.items as i64,
            base_credits_per_item: self.base_credits_per_item,
            quality: self.quality,
            multiplier: self.multiplier,
            subtotal: self.subtotal,
            discount_percent: self.discount_percent,
            discount: self.discount,
            total: self.total,
        }
    }
}

crate::string_enum!(
    /// States of an item: `queued -> processing -> completed | failed`, or
    /// `queued -> cancelled`. A session is `processing` until every item
    /// reached one of the last three, then `completed` (at least one image),
    /// `failed` (none, and at least one failed) or `cancelled` (every item
    /// cancelled). Stored as these names (conditions compare them).
    ItemStatus {
        Queued => "queued",
        Processing => "processing",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

/// The session's final status once every item is done.
pub fn final_status(completed: i64, failed: i64) -> SessionStatus {
    if completed > 0 {
        SessionStatus::Completed
    } else if failed > 0 {
        SessionStatus::Failed
    } else {
        SessionStatus::Cancelled
    }
}

/// A cart try-on (`store::tryons` keeps its keys and state changes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TryonSession {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub customer_id: Uuid,
    pub photo_id: Uuid,
    pub quality: Quality,
    pub price: Price,
    pub status: SessionStatus,
    pub items_total: i64,
    #[serde(default)]
    pub completed_count: i64,
    #[serde(default)]
    pub failed_count: i64,
    #[serde(default)]
    pub cancelled_count: i64,
    #[serde(default)]
    pub refunded_credits: i64,
    pub charge_entry_id: Option<Uuid>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub completed_at: Option<String>,
}

impl TryonSession {
    pub fn done_count(&self) -> i64 {
        self.completed_count + self.failed_count + self.cancelled_count
    }

    pub fn is_final(&self) -> bool {
        matches!(self.status, SessionStatus::Completed | SessionStatus::Failed | SessionStatus::Cancelled)
    }

    /// `tryon.session.completed` / `.failed` / `.cancelled`: emitted in the
    /// transaction that moves the session to its final status (that happens
    /// once, see `Store::finish_tryon_if_done`).
    pub fn finished_event(&self) -> Event {
        let payload = TryonSessionFinished {
            session_id: self.id,
            customer_id: self.customer_id,
            status: self.status.as_str().to_owned(),
            items_total: self.items_total,
            completed: self.completed_count,
            failed: self.failed_count,
            cancelled: self.cancelled_count,
            credits_charged: self.price.total,
            credits_refunded: self.refunded_credits,
        };
        match self.status {
            SessionStatus::Completed => Event::TryonSessionCompleted(payload),
            SessionStatus::Cancelled => Event::TryonSessionCancelled(payload),
            _ => Event::TryonSessionFailed(payload),
        }
    }

    pub fn view(&self) -> TryonSessionView {
        let progress = if self.items_total > 0 { self.done_count() as f64 / self.items_total as f64 } else { 1.0 };
        TryonSessionView {
            id: self.id,
            tenant_id: self.tenant_id,
            customer_id: self.customer_id,
            photo_id: self.photo_id,
            quality: self.quality,
            status: self.status,
            pricing: self.price.view(),
            credits_charged: self.price.total,
            credits_refunded: self.refunded_credits,
            progress: TryonProgress {
                total: self.items_total,
                completed: self.completed_count,
                failed: self.failed_count,
                cancelled: self.cancelled_count,
                percent: (progress * 100.0).round(),
            },
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
            completed_at: self.completed_at.clone(),
        }
    }
}

/// A try-on session as the API shows it (and as its audit entry records it):
/// the worker's lock and the charge's ledger id are not part of it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TryonSessionView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub customer_id: Uuid,
    /// The customer's person photo the garments are rendered on.
    pub photo_id: Uuid,
    pub quality: Quality,
    pub status: SessionStatus,
    pub pricing: PriceView,
    /// Credits taken when the session was created (`pricing.total`).
    pub credits_charged: i64,
    /// Credits given back for failed and cancelled items so far.
    pub credits_refunded: i64,
    pub progress: TryonProgress,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// When the session reached its final status.
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
}

/// How many of a session's items have ended, and how.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TryonProgress {
    /// Items in the cart.
    pub total: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// Share of the items that ended (completed, failed or cancelled), 0 to
    /// 100, rounded to a whole number.
    pub percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TryonItem {
    pub session_id: Uuid,
    pub index: u32,
    pub product_id: String,
    #[serde(default)]
    pub size: Option<String>,
    #[serde(default)]
    pub garment_image_url: Option<String>,
    #[serde(default)]
    pub garment_photo_id: Option<Uuid>,
    /// This item's share of the session's price.
    pub credits: i64,
    pub status: ItemStatus,
    #[serde(default)]
    pub result_key: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(default)]
    pub lease_until: Option<i64>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub completed_at: Option<String>,
}

/// A cart item as the API shows it; the worker's `lock`, its lease and the
/// result's bucket key stay internal (the handler adds a download URL).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TryonItemView {
    /// The item's position in the cart, from 0.
    pub index: u32,
    pub product_id: String,
    pub size: Option<String>,
    /// The garment as an image URL, when the cart gave one.
    pub garment_image_url: Option<String>,
    /// The garment as one of the customer's photos, when the cart gave one.
    pub garment_photo_id: Option<Uuid>,
    /// This item's share of the session's price (refunded if it fails or is
    /// cancelled).
    pub credits: i64,
    pub status: ItemStatus,
    /// Why rendering failed (`failed` only).
    pub error: Option<String>,
    /// When the worker took the item.
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// When the item ended (`completed`, `failed` or `cancelled`).
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
}

impl TryonItem {
    pub fn view(&self) -> TryonItemView {
        TryonItemView {
            index: self.index,
            product_id: self.product_id.clone(),
            size: self.size.clone(),
            garment_image_url: self.garment_image_url.clone(),
            garment_photo_id: self.garment_photo_id,
            credits: self.credits,
            status: self.status,
            error: self.error.clone(),
            started_at: self.started_at.clone(),
            completed_at: self.completed_at.clone(),
        }
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
    fn a_session_shows_its_pricing_and_progress_but_not_its_shares() {
        let (id, tenant, customer, photo) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let session = TryonSession {
            id,
            tenant_id: tenant,
            customer_id: customer,
            photo_id: photo,
            quality: Quality::Hd,
            price: price(3, Quality::Hd),
            status: SessionStatus::Processing,
            items_total: 3,
            completed_count: 1,
            failed_count: 1,
            cancelled_count: 0,
            refunded_credits: 2,
            charge_entry_id: Some(Uuid::now_v7()),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:01Z".into(),
            completed_at: None,
        };
        let body = serde_json::to_value(session.view()).expect("json");
        let expected = serde_json::json!({
            "id": id, "tenant_id": tenant, "customer_id": customer, "photo_id": photo,
            "quality": "hd", "status": "processing",
            "pricing": {"items": 3, "base_credits_per_item": 1, "quality": "hd", "multiplier": 2, "subtotal": 6,
                        "discount_percent": 0, "discount": 0, "total": 6},
            "credits_charged": 6, "credits_refunded": 2,
            "progress": {"total": 3, "completed": 1, "failed": 1, "cancelled": 0, "percent": 67.0},
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:01Z", "completed_at": null,
        });
        assert_eq!(body, expected);
    }

    #[test]
    fn an_item_hides_its_lock_and_result_key() {
        let item = TryonItem {
            session_id: Uuid::now_v7(),
            index: 2,
            product_id: "p".into(),
            size: None,
            garment_image_url: Some("https://x/a.png".into()),
            garment_photo_id: None,
            credits: 1,
            status: ItemStatus::Processing,
            result_key: Some("t/tryons/a.png".into()),
            error: None,
            lock: Some("lock".into()),
            lease_until: Some(1),
            started_at: Some("2026-01-01T00:00:00Z".into()),
            completed_at: None,
        };
        let body = serde_json::to_value(item.view()).expect("json");
        let expected = serde_json::json!({
            "index": 2, "product_id": "p", "size": null, "garment_image_url": "https://x/a.png",
            "garment_photo_id": null, "credits": 1, "status": "processing", "error": null,
            "started_at": "2026-01-01T00:00:00Z", "completed_at": null,
        });
        assert_eq!(body, expected);
    }

    #[test]
    fn a_session_ends_completed_failed_or_cancelled() {
        assert_eq!(final_status(1, 5), SessionStatus::Completed);
        assert_eq!(final_status(0, 1), SessionStatus::Failed);
        assert_eq!(final_status(0, 0), SessionStatus::Cancelled);
    }
}

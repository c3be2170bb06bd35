//! Billing and metering (issue 13) over HTTP: usage read back at once and
//! priced by the tiers configured (every expected amount is computed here
//! from those tiers, never copied from the seed), concurrent duplicates
//! counted once, invoices with their gapless numbers and their PDF (its text
//! read back), the 80 % alert at a real webhook receiver, the api_calls
//! meter fed by the table's stream, roles, scopes and tenant isolation,
//! validation that names the field and writes nothing, void and amend,
//! the subscription's limits enforced at once, and the hourly job's storage
//! sample and period close. Seed 000's own bodies are sent step by step in
//! `seeds.rs` (`seed_000_billing_...`).

use std::{
    str::FromStr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{body::Bytes, extract::State};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use futures::future::join_all;
use platform_tests::*;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

// ------------------------------------------------------------- helpers --

/// A decimal from a JSON number or a decimal string.
pub(crate) fn dec(value: &Value) -> Decimal {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("not a decimal: {other}"),
    };
    Decimal::from_str(&text).or_else(|_| Decimal::from_scientific(&text)).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Half-even to cents, two decimals: how every line and tax is rounded.
pub(crate) fn cents(value: Decimal) -> String {
    let mut rounded = value.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
    rounded.rescale(2);
    rounded.to_string()
}

/// The amount of `quantity` by a component as a request sends it
/// (`pricing_tiers` of `{"up_to": N}` ... `{"above": N}`, an optional
/// `flat_amount`, `tiers_mode` graduated by default), computed here on its
/// own: graduated prices the units inside each tier at that tier's price,
/// volume every unit at the price of the tier the total falls in (a tier
/// includes its `up_to`). Rounded half-even to cents.
pub(crate) fn price(component: &Value, quantity: Decimal) -> String {
    let tiers: Vec<(Option<Decimal>, Decimal, Decimal)> = component["pricing_tiers"]
        .as_array()
        .expect("pricing_tiers")
        .iter()
        .map(|tier| {
            let up_to = tier.get("up_to").filter(|v| !v.is_null()).map(dec);
            let flat = tier.get("flat_amount").filter(|v| !v.is_null()).map(dec).unwrap_or_default();
            (up_to, dec(&tier["price_per_unit"]), flat)
        })
        .collect();
    let mut total = Decimal::ZERO;
    if quantity > Decimal::ZERO {
        if component["tiers_mode"] == "volume" {
            let (_, unit, flat) =
                tiers.iter().find(|(up_to, _, _)| up_to.is_none_or(|u| quantity <= u)).expect("an open tier");
            total = quantity * unit + flat;
        } else {
            let mut from = Decimal::ZERO;
            for (up_to, unit, flat) in &tiers {
                let top = up_to.map_or(quantity, |u| u.min(quantity));
                if top <= from {
                    break;
                }
                total += (top - from) * unit + flat;
                if let Some(u) = up_to {
                    from = *u;
                }
            }
        }
    }
    cents(total)
}

/// Tiers of our own (not the seed's), all three built-in meters priced and
/// one custom component in volume mode.
fn our_components() -> Value {
    json!({"components": [
        {"name": "api_calls", "display_name": "API calls", "unit": "call",
         "pricing_tiers": [{"up_to": 500, "price_per_unit": 0.01}, {"above": 500, "price_per_unit": "0.005"}]},
        {"name": "ai_requests", "display_name": "AI requests", "unit": "request",
         "pricing_tiers": [{"up_to": 10, "price_per_unit": 0.25}, {"up_to": 100, "price_per_unit": 0.1},
                           {"above": 100, "price_per_unit": 0.05}]},
        {"name": "storage", "display_name": "Storage", "unit": "gb_hour",
         "pricing_tiers": [{"up_to": 1, "price_per_unit": 100}, {"above": 1, "price_per_unit": 50}]},
        {"name": "gpu_seconds", "display_name": "GPU time", "unit": "second", "tiers_mode": "volume",
         "pricing_tiers": [{"up_to": 100, "price_per_unit": 0.02}, {"above": 100, "price_per_unit": 0.01, "flat_amount": 1}]}
    ]})
}

/// The component named `name` of a components body.
fn component_of<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["components"].as_array().expect("components").iter().find(|c| c["name"] == name).expect("component")
}

async fn configure(token: &str, body: &Value) -> Value {
    post("/v1/billing/metered-components").token(token).json(body).send().await.expect(201).body
}

async fn record(token: &str, body: Value) -> Reply {
    post("/v1/billing/usage").token(token).json(&body).send().await
}

async fn usage(token: &str) -> Value {
    get("/v1/billing/usage").token(token).send().await.expect(200).body
}

/// One meter's or component's line of `GET /v1/billing/usage`.
fn line<'a>(usage: &'a Value, name: &str) -> &'a Value {
    usage["components"].as_array().expect("components").iter().find(|c| c["name"] == name).expect("usage line")
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn month_start(date: NaiveDate) -> NaiveDate {
    date.with_day(1).expect("first day")
}

fn next_month(date: NaiveDate) -> NaiveDate {
    let first = month_start(date);
    if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1).expect("date")
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1).expect("date")
    }
}

/// A draft for this month's days so far.
async fn draft_this_month(token: &str) -> Value {
    let body = json!({"billing_period": {"start": month_start(today()).to_string(), "end": today().to_string()}});
    let reply = post("/v1/billing/invoices/generate").token(token).json(&body).send().await.expect(201);
    assert_eq!(reply.body["status"], "draft");
    assert!(reply.body["number"].is_null() && reply.body["pdf_url"].is_null(), "{:#}", reply.body);
    reply.body
}

/// The line of an invoice for `component` (`None`: the base line).
fn invoice_line<'a>(invoice: &'a Value, component: Option<&str>) -> Option<&'a Value> {
    invoice["lines"].as_array().expect("lines").iter().find(|l| match component {
        Some(name) => l["component"] == name,
        None => l["kind"] == "base",
    })
}

/// `INV-<4 digits>-<4 digits>`, and its sequence number.
fn sequence_of(number: &str) -> u32 {
    let parts: Vec<&str> = number.split('-').collect();
    let ok = parts.len() == 3
        && parts[0] == "INV"
        && [parts[1], parts[2]].iter().all(|p| p.len() == 4 && p.bytes().all(|b| b.is_ascii_digit()));
    assert!(ok, "{number} does not match ^INV-\\d{{4}}-\\d{{4}}$");
    parts[2].parse().expect("sequence")
}

/// An enterprise contract (seed 000's shape) with these limits.
fn contract(limits: Value) -> Value {
    json!({
        "plan_type": "enterprise_custom",
        "contract_details": {"annual_contract_value": 120000, "contract_term_months": 12},
        "custom_limits": limits,
    })
}

// ------------------------------------------------------------ the tests --

/// Seed 000's `testBillingIntegration`: the record is read back at once (the
/// seed waits 2 s; nothing here waits), priced by the configured tiers.
#[tokio::test]
async fn billing_usage_is_read_back_at_once_and_priced_by_the_configured_tiers() {
    let owner = register_owner().await;
    let components = our_components();
    configure(&owner.access_token, &components).await;
    let posted = record(&owner.access_token, json!({"metric_type": "api_calls", "quantity": 1000})).await.expect(201);
    assert_eq!((posted.body["recorded"].as_u64(), posted.body["duplicates"].as_u64()), (Some(1), Some(0)));
    let sent = &posted.body["records"][0];
    assert_eq!(
        (&sent["metric_type"], &sent["quantity"], &sent["duplicate"]),
        (&json!("api_calls"), &json!(1000), &json!(false))
    );
    assert!(sent["event_id"].as_str().is_some_and(|id| !id.is_empty()));

    let read = usage(&owner.access_token).await;
    let calls = read["current_period"]["api_calls"].as_f64().expect("api_calls");
    // The meter adds this tenant's own authenticated requests (a handful, and
    // only seconds later): at least the 1,000 posted, at most a few more.
    assert!((1000.0..1010.0).contains(&calls), "api_calls {calls}");
    let api = line(&read, "api_calls");
    assert_eq!(api["quantity"], read["current_period"]["api_calls"]);
    let expected = price(component_of(&components, "api_calls"), dec(&api["quantity"]));
    assert_eq!(api["amount"], expected.as_str(), "{api:#}");
    // 500 x 0.01 + 500 x 0.005 (when the meter has added nothing yet).
    if calls == 1000.0 {
        assert_eq!(expected, "7.50");
    }
    assert_eq!(api["display_name"], "API calls");
    assert_eq!(read["period"]["id"], today().format("%Y-%m").to_string());
    // Every meter and component is listed, priced or not.
    for name in ["api_calls", "ai_requests", "storage", "gpu_seconds"] {
        assert!(read["current_period"].get(name).is_some(), "{name} missing: {read:#}");
        assert_eq!(
            line(&read, name)["amount"],
            price(component_of(&components, name), dec(&line(&read, name)["quantity"]))
        );
    }
    assert!(line(&read, "ai_requests")["quantity"] == 0);
}

/// A custom component in volume mode: every unit at the total's tier, plus
/// that tier's flat amount.
#[tokio::test]
async fn billing_volume_tiers_price_every_unit_at_the_tier_of_the_total() {
    let owner = register_owner().await;
    let components = our_components();
    configure(&owner.access_token, &components).await;
    record(&owner.access_token, json!({"metric_type": "gpu_seconds", "quantity": 100})).await.expect(201);
    let at_boundary = usage(&owner.access_token).await;
    let gpu = line(&at_boundary, "gpu_seconds");
    // Exactly 100 is the first tier's (it includes its up_to): 100 x 0.02.
    assert_eq!((gpu["quantity"].as_i64(), gpu["amount"].as_str()), (Some(100), Some("2.00")));
    record(&owner.access_token, json!({"metric_type": "gpu_seconds", "quantity": 50})).await.expect(201);
    let over = usage(&owner.access_token).await;
    let gpu = line(&over, "gpu_seconds");
    assert_eq!(gpu["amount"], price(component_of(&components, "gpu_seconds"), Decimal::from(150)));
    assert_eq!(gpu["amount"], "2.50", "150 x 0.01 + 1.00 flat");
    assert!(gpu["limit"].is_null() && gpu["usage_percentage"].is_null(), "a custom component has no limit");
}

/// A timestamp up to 35 days back counts in its own hour and period; an
/// older one (seed 000's 2024 records) counts now, marked `late`, keeping
/// what was reported.
#[tokio::test]
async fn billing_late_usage_lands_in_its_own_period_and_older_usage_counts_now() {
    let owner = register_owner().await;
    let token = owner.access_token.as_str();
    let now = Utc::now();
    let two_days_ago = now - chrono::Duration::days(2);
    let recent =
        record(token, json!({"metric_type": "ai_requests", "quantity": 11, "timestamp": two_days_ago.to_rfc3339()}))
            .await
            .expect(201)
            .body;
    let counted_at = recent["records"][0]["timestamp"].as_str().expect("timestamp");
    assert_eq!(DateTime::parse_from_rfc3339(counted_at).expect("rfc3339").timestamp(), two_days_ago.timestamp());
    assert_eq!(recent["records"][0]["late"], false);
    let same_period = two_days_ago.format("%Y-%m").to_string() == now.format("%Y-%m").to_string();
    let read = usage(token).await;
    assert_eq!(read["current_period"]["ai_requests"], if same_period { 11 } else { 0 }, "its own period");
    let analytics = get("/v1/billing/analytics/comprehensive?period=7d").token(token).send().await.expect(200).body;
    let ai = &analytics["usage_breakdown"]["ai_requests"];
    assert_eq!((ai["total_quantity"].as_i64(), ai["peak_usage"].as_i64()), (Some(11), Some(11)));
    assert_eq!(ai["peak_day"], two_days_ago.date_naive().to_string(), "its own day");

    let reported = "2024-01-15T14:30:00Z";
    let old = record(token, json!({"metric_type": "ai_requests", "quantity": 5, "timestamp": reported}))
        .await
        .expect(201)
        .body;
    let view = &old["records"][0];
    assert_eq!((view["late"].as_bool(), view["reported_at"].as_str()), (Some(true), Some(reported)));
    let at = DateTime::parse_from_rfc3339(view["timestamp"].as_str().expect("timestamp")).expect("rfc3339");
    assert!((at.timestamp() - Utc::now().timestamp()).abs() < 60, "counted at arrival: {view:#}");
    let read = usage(token).await;
    assert_eq!(read["current_period"]["ai_requests"], if same_period { 16 } else { 5 });
}

/// Fifty posts of one event id at once: every one answered 201, one counted.
/// A backfill of 100 events, each in its own hour: more rollups than one
/// transaction holds with the events, so the post is split by items, not
/// by events; every event counts once, and posting it again counts none.
#[tokio::test]
async fn billing_a_backfill_of_a_hundred_hours_is_recorded_whole_and_once() {
    let owner = register_owner().await;
    let now = chrono::Utc::now();
    let records: Vec<Value> = (1..=100)
        .map(|i| {
            let at = now - chrono::Duration::hours(i);
            json!({"event_id": format!("backfill-{i}"), "metric_type": "ai_requests", "quantity": 1,
                   "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)})
        })
        .collect();
    let first = record(&owner.access_token, json!({"records": records})).await.expect(201);
    assert_eq!((first.body["recorded"].as_u64(), first.body["duplicates"].as_u64()), (Some(100), Some(0)));
    let again = record(&owner.access_token, json!({"records": records})).await.expect(201);
    assert_eq!((again.body["recorded"].as_u64(), again.body["duplicates"].as_u64()), (Some(0), Some(100)));
}

#[tokio::test]
async fn billing_fifty_concurrent_duplicate_usage_posts_count_once() {
    let owner = register_owner().await;
    let event_id = format!("evt-{}", unique());
    let body = json!({"event_id": event_id, "metric_type": "ai_requests", "quantity": 7});
    let replies = join_all((0..50).map(|_| record(&owner.access_token, body.clone()))).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert!(
        statuses.iter().all(|s| *s == 201),
        "statuses {statuses:?}; first other: {:?}",
        replies.iter().find(|r| r.status != 201).map(|r| &r.body)
    );
    let counted: Vec<&Reply> = replies.iter().filter(|r| r.body["records"][0]["duplicate"] == false).collect();
    assert_eq!(counted.len(), 1, "exactly one counted");
    assert!(replies.iter().all(|r| r.body["records"][0]["event_id"] == event_id.as_str()));
    assert_eq!(counted[0].body["recorded"], 1);
    let duplicates = replies.iter().filter(|r| r.body["duplicates"] == 1 && r.body["recorded"] == 0).count();
    assert_eq!(duplicates, 49);
    let read = usage(&owner.access_token).await;
    assert_eq!(read["current_period"]["ai_requests"], 7);
    assert_eq!(tenant_items(&owner.tenant_id, "USAGE#EVENT#").await.len(), 1);
    // Later, the same id is still a duplicate.
    let again = record(&owner.access_token, body).await.expect(201);
    assert_eq!(again.body["records"][0]["duplicate"], true);
    assert_eq!(usage(&owner.access_token).await["current_period"]["ai_requests"], 7);
}

/// A finalized invoice: its number, its PDF at the presigned URL, the PDF's
/// text showing the number, every line and the total.
#[tokio::test]
async fn billing_a_finalized_invoice_has_a_number_and_a_pdf_showing_its_lines_and_total() {
    let owner = register_owner().await;
    let components = our_components();
    configure(&owner.access_token, &components).await;
    for body in [
        json!({"metric_type": "ai_requests", "quantity": 40}),
        json!({"metric_type": "gpu_seconds", "quantity": 150}),
        json!({"metric_type": "api_calls", "quantity": 1200}),
    ] {
        record(&owner.access_token, body).await.expect(201);
    }
    let draft = draft_this_month(&owner.access_token).await;
    let ai = invoice_line(&draft, Some("ai_requests")).expect("ai line");
    // 10 x 0.25 + 30 x 0.1.
    assert_eq!((ai["quantity"].as_i64(), ai["amount"].as_str()), (Some(40), Some("5.50")));
    assert_eq!(ai["amount"], price(component_of(&components, "ai_requests"), Decimal::from(40)));
    assert_eq!(ai["tiers"].as_array().map(Vec::len), Some(2), "two tiers priced units: {ai:#}");
    let gpu = invoice_line(&draft, Some("gpu_seconds")).expect("gpu line");
    assert_eq!(gpu["amount"], "2.50");
    let api = invoice_line(&draft, Some("api_calls")).expect("api line");
    assert_eq!(api["amount"], price(component_of(&components, "api_calls"), dec(&api["quantity"])));
    assert!(invoice_line(&draft, Some("storage")).is_none(), "no storage counted, no line");
    let base = invoice_line(&draft, None).expect("base line");
    assert_eq!(base["amount"], "0.00", "the free plan's list price");
    let subtotal: Decimal = draft["lines"].as_array().expect("lines").iter().map(|l| dec(&l["amount"])).sum();
    assert_eq!(draft["subtotal"], cents(subtotal).as_str());
    assert_eq!((draft["tax_amount"].as_str(), &draft["total_amount"]), (Some("0.00"), &draft["subtotal"]));

    let id = draft["invoice_id"].as_str().expect("id");
    let finalized =
        post(&format!("/v1/billing/invoices/{id}/finalize")).token(&owner.access_token).send().await.expect(200).body;
    let number = finalized["number"].as_str().expect("number").to_owned();
    assert_eq!(sequence_of(&number), 1, "a new tenant's first invoice");
    assert_eq!(number, format!("INV-{}-0001", Utc::now().year()));
    assert_eq!(finalized["status"], "finalized");
    assert_eq!(finalized["lines"], draft["lines"], "finalizing changes no line");
    assert_eq!(finalized["total_amount"], draft["total_amount"]);
    assert!(finalized["due_date"].is_string() && finalized["finalized_at"].is_string());
    let url = finalized["pdf_url"].as_str().expect("pdf_url");

    let response = reqwest::get(url).await.expect("download");
    assert!(response.status().is_success(), "the presigned URL answered {}", response.status());
    let pdf = response.bytes().await.expect("bytes").to_vec();
    assert!(pdf.starts_with(b"%PDF"), "not a PDF");
    let text = pdf_extract::extract_text_from_mem(&pdf).expect("text extraction");
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut expected: Vec<String> = vec![number.clone(), finalized["total_amount"].as_str().expect("total").to_owned()];
    for l in finalized["lines"].as_array().expect("lines") {
        expected.push(l["description"].as_str().expect("description").to_owned());
        expected.push(l["amount"].as_str().expect("amount").to_owned());
    }
    for needle in expected {
        let needle = needle.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(&needle), "{needle:?} missing from the PDF's text:\n{text}");
    }
    // GET answers the same number and a fresh link; the PDF was stored once.
    let fetched = get(&format!("/v1/billing/invoices/{id}")).token(&owner.access_token).send().await.expect(200).body;
    assert_eq!(fetched["number"], number.as_str());
    assert!(fetched["pdf_url"].is_string());
    let events = outbox_events(&owner.tenant_id).await;
    let finals: Vec<&Value> = events.iter().filter(|e| e["type"] == "invoice.finalized").collect();
    assert_eq!(finals.len(), 1);
    assert_eq!(finals[0]["data"]["number"], number.as_str());
    assert_eq!(finals[0]["data"]["total_amount"], finalized["total_amount"]);
}

/// Twenty drafts finalized at once: twenty numbers, consecutive from 1; a
/// second finalization answers the number given.
#[tokio::test]
async fn billing_twenty_concurrent_finalizations_take_twenty_consecutive_numbers() {
    let owner = register_owner().await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(draft_this_month(&owner.access_token).await["invoice_id"].as_str().expect("id").to_owned());
    }
    let replies =
        join_all(ids.iter().map(|id| {
            post(&format!("/v1/billing/invoices/{id}/finalize")).token(&owner.access_token).patient().send()
        }))
        .await;
    let mut sequences = Vec::new();
    for reply in replies {
        let body = reply.expect(200).body;
        assert_eq!(body["status"], "finalized");
        sequences.push(sequence_of(body["number"].as_str().expect("number")));
    }
    sequences.sort_unstable();
    assert_eq!(sequences, (1..=20).collect::<Vec<u32>>(), "distinct, consecutive, no gap");

    let again =
        post(&format!("/v1/billing/invoices/{}/finalize", ids[7])).token(&owner.access_token).send().await.expect(200);
    let first = get(&format!("/v1/billing/invoices/{}", ids[7])).token(&owner.access_token).send().await.expect(200);
    assert_eq!(again.body["number"], first.body["number"]);
    assert_eq!(again.body["finalized_at"], first.body["finalized_at"]);
    let listed =
        get("/v1/billing/invoices?status=finalized&limit=100").token(&owner.access_token).send().await.expect(200);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(20));
    let counter = tenant_items(&owner.tenant_id, "BILLING#INVOICE_COUNTER#").await;
    assert_eq!(counter.len(), 1);
    assert_eq!(counter[0]["last_number"].as_n().ok().map(String::as_str), Some("20"), "no number burnt");
}

// ----- a webhook receiver -----

type Received = Arc<Mutex<Vec<Value>>>;

/// An HTTP receiver on 127.0.0.1 that records every delivery's body.
struct Receiver {
    url: String,
    received: Received,
}

impl Receiver {
    async fn start() -> Self {
        let received: Received = Arc::default();
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, received }
    }

    fn alerts(&self, threshold: u64) -> Vec<Value> {
        self.received
            .lock()
            .expect("received")
            .iter()
            .filter(|b| b["type"] == "usage.threshold_reached" && b["data"]["threshold_percent"] == threshold)
            .cloned()
            .collect()
    }
}

async fn receive(State(received): State<Received>, body: Bytes) -> axum::http::StatusCode {
    received.lock().expect("received").push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    axum::http::StatusCode::OK
}

/// The 80 % alert of a contract's AI requests limit arrives once at a real
/// receiver; 100 % arrives when reached.
#[tokio::test]
async fn billing_the_80_percent_alert_arrives_once_at_a_webhook_receiver() {
    let owner = register_owner().await;
    post("/v1/billing/subscription/enterprise")
        .token(&owner.access_token)
        .json(&contract(json!({"ai_requests_monthly": 100})))
        .send()
        .await
        .expect(201);
    let receiver = Receiver::start().await;
    post("/v1/webhooks")
        .token(&owner.access_token)
        .json(&json!({"url": receiver.url, "event_types": ["usage.threshold_reached"], "retry_schedule_seconds": [1, 2], "description": "alerts"}))
        .send()
        .await
        .expect(201);
    let period = today().format("%Y-%m").to_string();

    record(&owner.access_token, json!({"metric_type": "ai_requests", "quantity": 80})).await.expect(201);
    let first = eventually("the 80 % alert", Duration::from_secs(60), || {
        let alerts = receiver.alerts(80);
        async move { (!alerts.is_empty()).then_some(alerts) }
    })
    .await;
    let data = &first[0]["data"];
    assert_eq!(data["limit"], "ai_requests_monthly");
    assert_eq!((data["used"].as_str(), data["limit_value"].as_i64()), (Some("80"), Some(100)));
    assert_eq!(data["period"], period.as_str());
    assert_eq!(line(&usage(&owner.access_token).await, "ai_requests")["usage_percentage"], 80.0);

    // 85: above 80 % again, no new crossing.
    record(&owner.access_token, json!({"metric_type": "ai_requests", "quantity": 5})).await.expect(201);
    assert_eq!(usage(&owner.access_token).await["current_period"]["ai_requests"], 85);
    // 100: the 100 % alert; the meter reads a tenant's changes in order, so
    // by then it has seen the 85 too.
    record(&owner.access_token, json!({"metric_type": "ai_requests", "quantity": 15})).await.expect(201);
    let full = eventually("the 100 % alert", Duration::from_secs(60), || {
        let alerts = receiver.alerts(100);
        async move { (!alerts.is_empty()).then_some(alerts) }
    })
    .await;
    assert_eq!(full[0]["data"]["used"], "100");
    assert_eq!(full[0]["data"]["limit"], "ai_requests_monthly");
    assert_eq!(receiver.alerts(80).len(), 1, "the 80 % alert once: {:#?}", receiver.alerts(80));
    assert_eq!(receiver.alerts(100).len(), 1);
    let told: Vec<Value> =
        outbox_events(&owner.tenant_id).await.into_iter().filter(|e| e["type"] == "usage.threshold_reached").collect();
    assert_eq!(told.len(), 2, "{told:#?}");
    let audit = get("/v1/audit/logs?resource_type=usage_alert").token(&owner.access_token).send().await.expect(200);
    assert_eq!(audit.body["data"].as_array().map(Vec::len), Some(2), "{:#}", audit.body);
}

/// Nobody posts API calls: the meter counts the tenant's authenticated
/// requests from the rate-limit writes.
#[tokio::test]
async fn billing_api_calls_are_metered_from_the_tenants_own_requests() {
    let owner = register_owner().await;
    const N: usize = 7;
    for _ in 0..N {
        get("/v1/tenants/me").token(&owner.access_token).send().await.expect(200);
    }
    let mut reads = 0;
    let counted = eventually("the meter to count the requests", Duration::from_secs(60), || {
        reads += 1;
        let token = owner.access_token.clone();
        async move {
            let read = usage(&token).await;
            let calls = read["current_period"]["api_calls"].as_u64()?;
            (calls >= N as u64).then_some(calls)
        }
    })
    .await;
    // Never more than the requests made: N, the reads of the usage, and
    // nothing else (sign-up is not authenticated).
    assert!(counted <= (N + reads) as u64, "counted {counted} of {} requests", N + reads);
    let me = get("/v1/tenants/me/usage").token(&owner.access_token).send().await.expect(200).body;
    assert!(me["current_usage"]["api_calls_monthly"].as_u64().is_some_and(|c| c >= counted), "{me:#}");
    assert!(tenant_items(&owner.tenant_id, "USAGE#EVENT#").await.is_empty(), "no usage was posted");
}

/// Billing is for admins (seed 000's denial body), usage may be posted by a
/// developer and by a key with `usage:write` (which cannot read it), and
/// another tenant's invoice is not found.
#[tokio::test]
async fn billing_roles_scopes_and_tenant_isolation() {
    let owner = register_owner().await;
    let developer = member_with_role(&owner, "developer").await;
    let denial = |reply: Reply| {
        let reply = reply.expect_error(403, "insufficient_permissions");
        let d = &reply.body["details"];
        assert_eq!(d["required_role"], "admin");
        assert_eq!(d["current_role"], "developer");
        assert_eq!(d["resource"], "billing_information");
        assert_eq!(d["tenant_id"], owner.tenant_id.as_str());
    };
    denial(get(&format!("/v1/tenants/{}/billing", owner.tenant_id)).token(&developer.access_token).send().await);
    let account = json!({"company_name": "Dev Co", "billing_email": "ap@dev.example",
                         "billing_address": {"line1": "1 Main St", "city": "Springfield", "country": "US"}});
    denial(post("/v1/billing/account").token(&developer.access_token).json(&account).send().await);
    denial(get("/v1/billing/usage").token(&developer.access_token).send().await);
    get("/v1/billing/account").token(&owner.access_token).send().await.expect_error(404, "not_found");
    // The owner may.
    let mine =
        get(&format!("/v1/tenants/{}/billing", owner.tenant_id)).token(&owner.access_token).send().await.expect(200);
    assert!(mine.body["account"].is_null() && mine.body["subscription"].is_null());
    assert_eq!(mine.body["tenant_id"], owner.tenant_id.as_str());

    // A developer records usage.
    record(&developer.access_token, json!({"metric_type": "ai_requests", "quantity": 3})).await.expect(201);
    // A key with usage:write records usage, and may not read it.
    let key = create_api_key(&owner.access_token, &["usage:write"]).await;
    post("/v1/billing/usage")
        .api_key(&key.secret)
        .json(&json!({"metric_type": "ai_requests", "quantity": 4}))
        .send()
        .await
        .expect(201);
    let refused = get("/v1/billing/usage").api_key(&key.secret).send().await.expect_error(403, "insufficient_scope");
    assert_eq!(refused.body["details"]["required_scope"], "billing:read");
    assert_eq!(usage(&owner.access_token).await["current_period"]["ai_requests"], 7);

    // Another tenant's invoice answers 404 like a missing one.
    let other = register_owner().await;
    let theirs = draft_this_month(&other.access_token).await;
    let id = theirs["invoice_id"].as_str().expect("id");
    get(&format!("/v1/billing/invoices/{id}")).token(&owner.access_token).send().await.expect_error(404, "not_found");
    for action in ["finalize", "void"] {
        post(&format!("/v1/billing/invoices/{id}/{action}"))
            .token(&owner.access_token)
            .send()
            .await
            .expect_error(404, "not_found");
    }
    get(&format!("/v1/tenants/{}/billing", other.tenant_id))
        .token(&owner.access_token)
        .send()
        .await
        .expect_error(404, "not_found");
    let still = get(&format!("/v1/billing/invoices/{id}")).token(&other.access_token).send().await.expect(200);
    assert_eq!((still.body["status"].as_str(), &still.body["number"]), (Some("draft"), &Value::Null));
    // A body naming another tenant is refused.
    let mut foreign = our_components();
    foreign["tenant_id"] = json!(other.tenant_id);
    post("/v1/billing/metered-components")
        .token(&owner.access_token)
        .json(&foreign)
        .send()
        .await
        .expect_error(403, "tenant_mismatch");
}

/// Each refusal names its field, and a refused request writes nothing.
#[tokio::test]
async fn billing_validation_names_the_field_and_writes_nothing() {
    let owner = register_owner().await;
    let token = owner.access_token.as_str();
    let valid = json!({"components": [{"name": "render_minutes", "display_name": "Render minutes", "unit": "minute",
                       "pricing_tiers": [{"up_to": 100, "price_per_unit": 0.5}, {"above": 100, "price_per_unit": 0.25}]}]});
    configure(token, &valid).await;
    record(token, json!({"metric_type": "render_minutes", "quantity": 12})).await.expect(201);
    let components_before = get("/v1/billing/metered-components").token(token).send().await.expect(200).body;
    let usage_before = usage(token).await;
    let events_before = tenant_items(&owner.tenant_id, "USAGE#EVENT#").await.len();

    let refused = |body: Value, path: &'static str| async move {
        post(path).token(token).json(&body).send().await.expect_error(400, "validation_failed").invalid_fields()
    };
    let component = |tiers: Value| json!({"components": [{"name": "render_minutes", "display_name": "Changed", "unit": "minute", "pricing_tiers": tiers}]});
    // A gap: the open tier starts at 200, the one before ends at 100.
    let gap = component(json!([{"up_to": 100, "price_per_unit": 1}, {"above": 200, "price_per_unit": 0.5}]));
    assert_eq!(refused(gap, "/v1/billing/metered-components").await, ["components[0].pricing_tiers[1].above"]);
    let closed = component(json!([{"up_to": 100, "price_per_unit": 1}, {"up_to": 200, "price_per_unit": 0.5}]));
    assert_eq!(refused(closed, "/v1/billing/metered-components").await, ["components[0].pricing_tiers"]);
    let unknown = json!({"metric_type": "gpu_seconds", "quantity": 1});
    assert_eq!(refused(unknown, "/v1/billing/usage").await, ["metric_type"]);
    let zero = json!({"metric_type": "render_minutes", "quantity": 0});
    assert_eq!(refused(zero, "/v1/billing/usage").await, ["quantity"]);
    let ahead = (Utc::now() + chrono::Duration::minutes(6)).to_rfc3339();
    let future = json!({"metric_type": "render_minutes", "quantity": 1, "timestamp": ahead});
    assert_eq!(refused(future, "/v1/billing/usage").await, ["timestamp"]);
    let batch = json!({"records": [{"metric_type": "render_minutes", "quantity": 1},
                                   {"metric_type": "render_minutes", "quantity": 1, "timestamp": ahead}]});
    assert_eq!(refused(batch, "/v1/billing/usage").await, ["records[1].timestamp"]);

    let components_after = get("/v1/billing/metered-components").token(token).send().await.expect(200).body;
    assert_eq!(components_after, components_before, "no component changed");
    let usage_after = usage(token).await;
    for metric in ["render_minutes", "ai_requests", "storage"] {
        assert_eq!(usage_after["current_period"][metric], usage_before["current_period"][metric], "{metric}");
    }
    assert_eq!(usage_after["current_period"]["render_minutes"], 12);
    assert_eq!(tenant_items(&owner.tenant_id, "USAGE#EVENT#").await.len(), events_before, "no event stored");
}

/// A voided event leaves the period; an amended one counts its new quantity;
/// both are in the audit trail.
#[tokio::test]
async fn billing_void_and_amend_change_the_period_total_and_are_audited() {
    let owner = register_owner().await;
    let token = owner.access_token.as_str();
    let (a, b) = (format!("a-{}", unique()), format!("b-{}", unique()));
    let batch = json!({"records": [
        {"event_id": a, "metric_type": "ai_requests", "quantity": 40},
        {"event_id": b, "metric_type": "ai_requests", "quantity": 60}
    ]});
    let posted = record(token, batch).await.expect(201);
    assert_eq!(posted.body["recorded"], 2);
    assert_eq!(usage(token).await["current_period"]["ai_requests"], 100);

    let voided = post(&format!("/v1/billing/usage/{a}/void"))
        .token(token)
        .json(&json!({"reason": "test traffic"}))
        .send()
        .await
        .expect(200)
        .body;
    assert_eq!((voided["status"].as_str(), voided["event_id"].as_str()), (Some("voided"), Some(a.as_str())));
    assert!(voided["voided_at"].is_string());
    assert_eq!(usage(token).await["current_period"]["ai_requests"], 60);

    let amended = post(&format!("/v1/billing/usage/{b}/amend"))
        .token(token)
        .json(&json!({"quantity": 25, "reason": "recount"}))
        .send()
        .await
        .expect(200)
        .body;
    assert_eq!(amended["status"], "recorded");
    assert_eq!(dec(&amended["quantity"]), Decimal::from(25));
    assert_eq!(usage(token).await["current_period"]["ai_requests"], 25);

    post(&format!("/v1/billing/usage/{a}/void")).token(token).send().await.expect_error(409, "invalid_state");
    post(&format!("/v1/billing/usage/{a}/amend"))
        .token(token)
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .expect_error(409, "invalid_state");
    post(&format!("/v1/billing/usage/missing-{}/void", unique()))
        .token(token)
        .send()
        .await
        .expect_error(404, "not_found");
    assert_eq!(usage(token).await["current_period"]["ai_requests"], 25);

    let trail = get("/v1/audit/logs?resource_type=usage_event").token(token).send().await.expect(200).body;
    let entries = trail["data"].as_array().expect("data");
    assert_eq!(entries.len(), 2, "{trail:#}");
    let of = |id: &str| entries.iter().find(|e| e["resource_id"] == id).unwrap_or_else(|| panic!("no entry for {id}"));
    assert_eq!(of(&a)["action"], "update");
    assert_eq!(of(&a)["old_values"]["status"], "recorded");
    assert_eq!(of(&a)["new_values"]["status"], "voided");
    assert_eq!(of(&a)["new_values"]["reason"], "test traffic");
    assert_eq!(dec(&of(&b)["old_values"]["quantity"]), Decimal::from(60));
    assert_eq!(dec(&of(&b)["new_values"]["quantity"]), Decimal::from(25));
    assert_eq!(of(&b)["user"]["id"], owner.user_id.as_str());
}

/// A contract's users limit refuses invitations at once (seed 000's
/// quota_exceeded body); a move to a catalogue plan restores its limits.
#[tokio::test]
async fn billing_subscription_limits_are_enforced_at_once_and_a_plan_change_restores_the_plans() {
    let owner = register_owner().await;
    let token = owner.access_token.as_str();
    let subscribed = post("/v1/billing/subscription/enterprise")
        .token(token)
        .json(&contract(json!({"users": 2})))
        .send()
        .await
        .expect(201)
        .body;
    assert_eq!(
        (subscribed["plan_type"].as_str(), subscribed["status"].as_str()),
        (Some("enterprise_custom"), Some("active"))
    );
    assert_eq!(subscribed["base_monthly_amount"], "10000.00", "120,000 a year");
    let limited = get("/v1/tenants/me/usage").token(token).send().await.expect(200).body;
    assert_eq!(limited["plan_limits"]["users"], 2);

    let emails: Vec<String> = (0..3).map(|i| format!("seat{i}-{}@limits.example", unique())).collect();
    let invite = json!({"emails": emails, "role": "developer"});
    let refused = post("/v1/users/invite").token(token).json(&invite).send().await.expect_error(403, "quota_exceeded");
    let d = &refused.body["details"];
    assert_eq!(d["quota_type"], "users");
    assert_eq!((d["current_usage"].as_i64(), d["plan_limit"].as_i64()), (Some(1), Some(2)));
    assert_eq!((d["requested_increase"].as_i64(), d["available_slots"].as_i64()), (Some(3), Some(1)));

    let changed = patch("/v1/billing/subscription")
        .token(token)
        .json(&json!({"plan_type": "professional"}))
        .send()
        .await
        .expect(200)
        .body;
    assert_eq!(
        (changed["plan_type"].as_str(), changed["base_monthly_amount"].as_str()),
        (Some("professional"), Some("200.00"))
    );
    let got = get("/v1/billing/subscription").token(token).send().await.expect(200).body;
    assert_eq!(got["plan_type"], "professional");
    let restored = get("/v1/tenants/me/usage").token(token).send().await.expect(200).body;
    assert_eq!(restored["plan"], "professional");
    assert_eq!(
        restored["plan_limits"],
        json!({"users": 10, "projects": 50, "ai_requests_monthly": 100000, "storage_gb": 10, "api_calls_monthly": 1000000}),
        "professional's limits"
    );
    let accepted = post("/v1/users/invite").token(token).json(&invite).send().await.expect(201);
    assert_eq!(accepted.body["invitations"].as_array().map(Vec::len), Some(3));
}

/// The hourly job (the message `BillingJobsQueue` gets from the schedule),
/// run as of the first hour of next month: the tenant's stored bytes become
/// storage, and this month is closed with one draft invoice, however often
/// the message comes.
#[tokio::test]
async fn billing_the_hourly_job_samples_storage_and_closes_the_month_with_one_draft() {
    let owner = register_owner().await;
    let token = owner.access_token.as_str();
    let components = our_components();
    configure(token, &components).await;
    record(token, json!({"metric_type": "ai_requests", "quantity": 40})).await.expect(201);
    let (state, clients) = test_state().await;
    // 2.5 MB under the tenant's prefix: 0.0025 GB for the sampled hour.
    let scope = shared::auth::TenantScope::for_tests(owner.tenant_id.parse().expect("tenant id"));
    let key = format!("{}files/{}.bin", shared::blobs::tenant_prefix(&scope), unique());
    state.blobs.put(&key, vec![7u8; 2_500_000], "application/octet-stream").await.expect("upload");

    let this_month = month_start(today());
    let next = next_month(today());
    let at: DateTime<Utc> = next.and_hms_opt(0, 30, 0).expect("time").and_utc();
    let queue = std::env::var("QUEUE_URL_BILLING_WORKER").expect("QUEUE_URL_BILLING_WORKER (the local stack's env)");
    let message = json!({"job": "hourly", "at": at.to_rfc3339()}).to_string();
    for _ in 0..2 {
        clients.sqs.send_message().queue_url(&queue).message_body(&message).send().await.expect("send");
    }
    let invoices = eventually("the period close's draft", Duration::from_secs(120), || async {
        let list = get("/v1/billing/invoices").token(token).send().await.expect(200).body;
        let data = list["data"].as_array().cloned().unwrap_or_default();
        (!data.is_empty()).then_some(data)
    })
    .await;
    // Both messages handled (deleted from the queue) before counting.
    eventually("the jobs queue to drain", Duration::from_secs(120), || async {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = clients
            .sqs
            .get_queue_attributes()
            .queue_url(&queue)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(A::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .ok()?;
        let attributes = out.attributes()?;
        let pending: i64 = attributes.values().filter_map(|v| v.parse::<i64>().ok()).sum();
        (pending == 0).then_some(())
    })
    .await;
    let list = get("/v1/billing/invoices").token(token).send().await.expect(200).body;
    let data = list["data"].as_array().expect("data");
    assert_eq!(data.len(), 1, "one draft however often the job runs: {list:#}");
    // The 00:00 run is also the nightly analytics aggregate: the tenant's
    // rank among its plan's tenants, as of that day.
    let ranks = tenant_items(&owner.tenant_id, "RANK#LATEST").await;
    let rank = ranks.first().map(|i| json_of(&aws_sdk_dynamodb::types::AttributeValue::M(i.clone())));
    let rank = rank.expect("the tenant's rank");
    assert_eq!((rank["as_of"].as_str(), rank["plan"].as_str()), (Some(next.to_string().as_str()), Some("free")));
    let (position, of) = (rank["rank"].as_f64().expect("rank"), rank["of"].as_f64().expect("of"));
    assert!(position >= 1.0 && position <= of, "{rank}");
    assert_eq!(data[0]["invoice_id"], invoices[0]["invoice_id"]);
    let draft = &data[0];
    assert_eq!(draft["status"], "draft");
    let last_day = next.pred_opt().expect("last day");
    assert_eq!(draft["period"], json!({"start": this_month.to_string(), "end": last_day.to_string()}));
    let base = invoice_line(draft, None).expect("base line");
    assert_eq!(base["description"], format!("Free plan - {}", this_month.format("%B %Y")));
    assert_eq!(invoice_line(draft, Some("ai_requests")).expect("ai line")["amount"], "5.50");
    let storage = invoice_line(draft, Some("storage")).expect("storage line");
    assert_eq!(dec(&storage["quantity"]), Decimal::from_str("0.0025").expect("d"));
    // 0.0025 gb_hour x 100.
    assert_eq!(storage["amount"], price(component_of(&components, "storage"), dec(&storage["quantity"])));
    assert_eq!(storage["amount"], "0.25");

    // The bytes, sampled once, as storage in this period.
    let read = usage(token).await;
    assert_eq!(dec(&read["current_period"]["storage"]), Decimal::from_str("0.0025").expect("d"));
    let s = line(&read, "storage");
    assert_eq!(s["amount"], "0.25");
    assert_eq!(s["usage_percentage"], 0.25, "2.5 MB of the free plan's 1 GB");
    let samples = tenant_items(&owner.tenant_id, "BILLING#SAMPLE#").await;
    assert_eq!(samples.len(), 1, "one sample for the hour");
    assert_eq!(samples[0]["bytes"].as_n().ok().map(String::as_str), Some("2500000"));
    let created: Vec<Value> =
        outbox_events(&owner.tenant_id).await.into_iter().filter(|e| e["type"] == "invoice.created").collect();
    assert_eq!(created.len(), 1);
}

/// `"unlimited"` users in a contract lifts the users limit: more seats than
/// the free plan's 10 can be taken at once.
#[tokio::test]
async fn billing_an_unlimited_users_contract_lifts_the_users_limit() {
    let owner = register_owner().await;
    let token = owner.access_token.as_str();
    post("/v1/billing/subscription/enterprise")
        .token(token)
        .json(&contract(json!({"users": "unlimited", "projects": "unlimited"})))
        .send()
        .await
        .expect(201);
    let emails: Vec<String> = (0..12).map(|i| format!("many{i}-{}@limits.example", unique())).collect();
    let reply = post("/v1/users/invite").token(token).json(&json!({"emails": emails, "role": "user"})).send().await;
    assert_eq!(reply.status.as_u16(), 201, "12 invitations under an unlimited contract: {:#}", reply.body);
    let me = get("/v1/tenants/me/usage").token(token).send().await.expect(200).body;
    assert_eq!(me["current_usage"]["users"], 13);
    assert_eq!(me["plan_limits"]["projects"], "unlimited");
}

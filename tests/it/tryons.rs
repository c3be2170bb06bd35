//! Seed 004's virtual try-on: customers upserted by external id, photos
//! uploaded to presigned S3 URLs and confirmed, cart try-ons priced and
//! charged atomically, rendered by the tryon-worker through the outbox, the
//! real bus, queue and bucket, cancelled with exact refunds, and isolated per
//! tenant.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use futures::future::join_all;
use platform_tests::*;
use reqwest::Method;
use serde_json::{Value, json};
use shared::{audit::AuditContext, auth::TenantScope, domain::tryon::Quality, store::tryons::TryonSession};
use tryon_worker::{
    Outcome, TryonWorker,
    engine::{EngineError, LocalEngine, RenderInput, TryOnEngine},
    outbound::Fetcher,
};
use uuid::Uuid;

async fn ledger(token: &str) -> Vec<Value> {
    let body = get("/v1/credits/ledger?limit=100").token(token).send().await.expect(200).body;
    body["data"].as_array().expect("data").clone()
}

async fn balance(key: &str) -> i64 {
    get("/v1/credits").api_key(key).send().await.expect(200).body["balance"].as_i64().expect("balance")
}

#[tokio::test]
async fn a_twelve_item_hd_cart_renders_through_the_worker_with_exact_credit_math() {
    let shop = shop(50).await;
    let customer_id = customer(&shop.key, &format!("shopper-{}", unique())).await;
    let person = upload_photo(&shop.key, &customer_id, &png(300, 600, [20, 40, 200]), "person").await;
    let garment = upload_photo(&shop.key, &customer_id, &png(120, 140, [230, 30, 30]), "garment").await;

    let created = post("/v1/tryons")
        .api_key(&shop.key)
        .header("idempotency-key", &format!("cart-{}", unique()))
        .json(&json!({"customer_id": customer_id, "photo_id": person, "quality": "hd", "items": cart(&garment, 12)}))
        .send()
        .await
        .expect(201);
    let pricing = &created.body["pricing"];
    assert_eq!(
        *pricing,
        json!({"items": 12, "base_credits_per_item": 1, "quality": "hd", "multiplier": 2, "subtotal": 24,
               "discount_percent": 20, "discount": 4, "total": 20})
    );
    assert_eq!(created.body["charge"]["balance_after"], 30);
    assert_eq!(created.body["items"].as_array().expect("items").len(), 12);
    let shares: i64 =
        created.body["items"].as_array().expect("items").iter().map(|i| i["credits"].as_i64().expect("credits")).sum();
    assert_eq!(shares, 20, "the items' shares add up to the price");
    let id = created.body["id"].as_str().expect("id").to_owned();

    let done = eventually("the session to complete", Duration::from_secs(120), || {
        let (key, id) = (shop.key.clone(), id.clone());
        async move {
            let reply = get(&format!("/v1/tryons/{id}")).api_key(&key).send().await.expect(200);
            (reply.body["status"] == "completed").then_some(reply.body)
        }
    })
    .await;
    assert_eq!(done["progress"]["completed"], 12);
    assert_eq!(done["progress"]["percent"], 100.0);
    assert_eq!(done["credits_refunded"], 0);
    let items = done["items"].as_array().expect("items");
    assert!(items.iter().all(|i| i["status"] == "completed" && i["result_url"].is_string()), "{items:?}");

    // A result downloads from its presigned URL and decodes as the hd size.
    let url = items[0]["result_url"].as_str().expect("url");
    let bytes = reqwest::get(url).await.expect("download").bytes().await.expect("bytes");
    let image = image::load_from_memory(&bytes).expect("a decodable image");
    assert_eq!((image.width(), image.height()), (512, 1024));

    // The ledger: one spend of exactly 20 for this session, no refund.
    let entries = ledger(&shop.owner.access_token).await;
    let spends: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "spend").collect();
    assert_eq!(spends.len(), 1);
    assert_eq!(spends[0]["amount"], -20);
    assert_eq!(spends[0]["reference"], format!("tryon:{id}"));
    assert_eq!(spends[0]["balance_after"], 30);
    assert!(entries.iter().all(|e| e["kind"] != "refund"));
    assert_eq!(balance(&shop.key).await, 30);
    let listed = get(&format!("/v1/tryons?customer_id={customer_id}&status=completed"))
        .api_key(&shop.key)
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["data"][0]["id"], id.as_str());
}

#[tokio::test]
async fn not_enough_credits_is_402_and_creates_nothing() {
    let shop = shop(3).await;
    let customer_id = customer(&shop.key, "poor-shopper").await;
    let person = upload_photo(&shop.key, &customer_id, &png(40, 80, [1, 2, 3]), "person").await;
    let garment = upload_photo(&shop.key, &customer_id, &png(20, 20, [9, 9, 9]), "garment").await;
    let reply = post("/v1/tryons")
        .api_key(&shop.key)
        .json(&json!({"customer_id": customer_id, "photo_id": person, "quality": "hd", "items": cart(&garment, 12)}))
        .send()
        .await
        .expect_error(402, "insufficient_credits");
    assert_eq!(reply.body["details"], json!({"balance": 3, "cost": 20}));
    let listed = get("/v1/tryons").api_key(&shop.key).send().await.expect(200);
    assert_eq!(listed.body["data"], json!([]));
    assert_eq!(balance(&shop.key).await, 3);
    assert!(ledger(&shop.owner.access_token).await.iter().all(|e| e["kind"] != "spend"));
}

/// An engine that counts its renders, fails `fail_product`, takes five
/// minutes over `slow_product` (a model that hangs), and can be held at a
/// gate so a test can act while renders are in flight.
#[derive(Clone, Default)]
struct TestEngine {
    renders: Arc<AtomicUsize>,
    fail_product: Option<String>,
    slow_product: Option<String>,
}

impl TryOnEngine for TestEngine {
    async fn render(&self, input: RenderInput<'_>) -> Result<Vec<u8>, EngineError> {
        self.renders.fetch_add(1, Ordering::SeqCst);
        if self.fail_product.as_deref() == Some(input.product_id) {
            return Err(EngineError("the model refused this garment".into()));
        }
        if self.slow_product.as_deref() == Some(input.product_id) {
            tokio::time::sleep(Duration::from_secs(300)).await;
        }
        LocalEngine.render(input).await
    }
}

/// A session made through the store (no item events: no poller will touch
/// it), for tests that drive the worker themselves.
async fn quiet_session(shop: &Shop, items: usize, quality: Quality) -> (TenantScope, TryonSession) {
    store_session(shop, items, quality, false).await
}

/// A session made through the store alone, with its item events (`dispatch`)
/// or without them.
async fn store_session(shop: &Shop, items: usize, quality: Quality, dispatch: bool) -> (TenantScope, TryonSession) {
    let customer_id = customer(&shop.key, &format!("quiet-{}", unique())).await;
    let person = upload_photo(&shop.key, &customer_id, &png(60, 120, [10, 10, 10]), "person").await;
    let garment = upload_photo(&shop.key, &customer_id, &png(30, 30, [200, 0, 0]), "garment").await;
    let body = json!({"customer_id": customer_id, "photo_id": person, "quality": quality.as_str(), "items": cart(&garment, items)});
    let request = shared::web::extract::parse_body::<tryons::NewTryon>(body.to_string().as_bytes()).expect("valid");
    request.check(false).expect("valid");
    let tenant_id = Uuid::parse_str(&shop.owner.tenant_id).expect("tenant");
    let scope = TenantScope::for_tests(tenant_id);
    let (session, items) = tryons::plan(tenant_id, &request);
    let (state, _) = test_state().await;
    let audit = AuditContext::system("test");
    if dispatch {
        state.store.create_tryon(&scope, &session, &items, &audit).await.expect("created");
    } else {
        state.store.create_tryon_undispatched(&scope, &session, &items, &audit).await.expect("created");
    }
    (scope, session)
}

async fn worker(engine: TestEngine) -> TryonWorker<TestEngine> {
    let (state, _) = test_state().await;
    TryonWorker {
        store: state.store.clone(),
        blobs: state.blobs.clone(),
        engine,
        garments: Fetcher::new(true).expect("fetcher"),
    }
}

#[tokio::test]
async fn an_engine_failure_refunds_that_item_only_and_redeliveries_change_nothing() {
    let shop = shop(20).await;
    let (scope, session) = quiet_session(&shop, 5, Quality::Sd).await;
    // 5 sd items: 5 credits, 10 % off = 4.5 -> 5; shares 1 each.
    assert_eq!(session.price.total, 5);
    let engine = TestEngine { fail_product: Some("sku-2".into()), ..TestEngine::default() };
    let renders = engine.renders.clone();
    let worker = worker(engine).await;
    for index in 0..5 {
        let outcome = worker.process(&scope, session.id, index).await.expect("processed");
        if index == 2 {
            assert_eq!(outcome, Outcome::Failed("the model refused this garment".into()));
        } else {
            assert_eq!(outcome, Outcome::Completed);
        }
    }
    // Every item redelivered, twice, some concurrently: no render, no refund.
    let again = join_all((0..5).flat_map(|i| [i, i]).map(|i| worker.process(&scope, session.id, i))).await;
    assert!(again.iter().all(|o| matches!(o, Ok(Outcome::AlreadyDone))), "{again:?}");
    assert_eq!(renders.load(Ordering::SeqCst), 5, "each item rendered once");

    let shown = get(&format!("/v1/tryons/{}", session.id)).api_key(&shop.key).send().await.expect(200);
    assert_eq!(shown.body["status"], "completed");
    assert_eq!(shown.body["progress"]["failed"], 1);
    assert_eq!(shown.body["items"][2]["status"], "failed");
    assert_eq!(shown.body["items"][2]["error"], "the model refused this garment");
    assert!(shown.body["items"][2].get("result_url").is_none());
    assert_eq!(shown.body["credits_refunded"], 1);
    let refunds: Vec<Value> =
        ledger(&shop.owner.access_token).await.into_iter().filter(|e| e["kind"] == "refund").collect();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["amount"], 1);
    assert_eq!(refunds[0]["reference"], format!("tryon:{}:02", session.id));
    assert_eq!(balance(&shop.key).await, 20 - 5 + 1);
}

/// The `tryon.item.requested` message of one item, as the rule delivers it.
fn item_message(scope: &TenantScope, session_id: Uuid, index: u32) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(format!("item-{index}"));
    message.body = Some(
        json!({
            "version": "0", "id": Uuid::new_v4(), "detail-type": "tryon.item.requested", "source": "saas.platform",
            "account": "000000000000", "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {
                "id": Uuid::now_v7(), "type": "tryon.item.requested", "tenant_id": scope.tenant_id(),
                "occurred_at": "2026-01-01T00:00:00Z",
                "data": {"session_id": session_id, "item_index": index}
            }
        })
        .to_string(),
    );
    message
}

/// One item whose render outlasts the invocation (the engine hangs) is cut
/// off at the deadline and reported alone, so SQS retries just it: the
/// batch answers in time, its other items are done, and the slow one is
/// neither failed nor refunded (its claim runs out before the redelivery).
#[tokio::test]
async fn an_item_past_the_invocations_deadline_is_retried_alone() {
    let shop = shop(20).await;
    let (scope, session) = quiet_session(&shop, 3, Quality::Sd).await;
    let engine = TestEngine { slow_product: Some("sku-1".into()), ..TestEngine::default() };
    let worker = worker(engine).await;
    let mut event = SqsEvent::default();
    event.records = (0..3).map(|index| item_message(&scope, session.id, index)).collect();
    let started = std::time::Instant::now();
    // run_worker's deadline is the invocation's less 2 s; 15 s stands in.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let response = shared::worker::handle_batch_until(&worker, event, Some(deadline)).await;
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, ["item-1"], "only the item past the deadline is retried");
    assert!(started.elapsed() < Duration::from_secs(60), "the batch answered at its deadline, not the engine's");

    let shown = get(&format!("/v1/tryons/{}", session.id)).api_key(&shop.key).send().await.expect(200);
    let statuses: Vec<&str> =
        shown.body["items"].as_array().expect("items").iter().map(|i| i["status"].as_str().unwrap_or("")).collect();
    assert_eq!(statuses, ["completed", "processing", "completed"]);
    assert_eq!(shown.body["credits_refunded"], 0);
}

/// Cancel racing the worker: every item ends exactly once, either rendered
/// (never refunded) or cancelled (refunded exactly its share, once), however
/// the race falls; a second cancel finds nothing left.
#[tokio::test]
async fn cancel_racing_the_worker_refunds_each_cancelled_item_once_and_no_completed_one() {
    let shop = shop(100).await;
    let (scope, session) = quiet_session(&shop, 12, Quality::Hd).await;
    assert_eq!(session.price.total, 20);
    let worker = worker(TestEngine::default()).await;
    let cancel =
        |key: String| async move { post(&format!("/v1/tryons/{}/cancel", session.id)).api_key(&key).send().await };
    let renders = join_all((0..12).map(|i| worker.process(&scope, session.id, i)));
    let (outcomes, cancels) = tokio::join!(renders, join_all([cancel(shop.key.clone()), cancel(shop.key.clone())]));
    let cancelled_by_calls: Vec<u64> = cancels
        .iter()
        .flat_map(|r| {
            assert_eq!(r.status, 200, "{:?}", r.body);
            r.body["cancelled_items"]
                .as_array()
                .expect("list")
                .iter()
                .map(|v| v.as_u64().expect("index"))
                .collect::<Vec<_>>()
        })
        .collect();
    let completed: Vec<u32> = (0..12).filter(|i| matches!(outcomes[*i as usize], Ok(Outcome::Completed))).collect();
    assert!(outcomes.iter().all(|o| matches!(o, Ok(Outcome::Completed | Outcome::AlreadyDone))), "{outcomes:?}");
    assert_eq!(
        completed.len() + cancelled_by_calls.len(),
        12,
        "every item ends once: {completed:?} {cancelled_by_calls:?}"
    );

    let shown = get(&format!("/v1/tryons/{}", session.id)).api_key(&shop.key).send().await.expect(200).body;
    let items = shown["items"].as_array().expect("items");
    let cancelled_share: i64 =
        items.iter().filter(|i| i["status"] == "cancelled").map(|i| i["credits"].as_i64().expect("credits")).sum();
    assert_eq!(items.iter().filter(|i| i["status"] == "cancelled").count(), cancelled_by_calls.len());
    assert_eq!(items.iter().filter(|i| i["status"] == "completed").count(), completed.len());
    assert_eq!(shown["credits_refunded"], cancelled_share);

    let refunds: Vec<Value> =
        ledger(&shop.owner.access_token).await.into_iter().filter(|e| e["kind"] == "refund").collect();
    let mut references: Vec<&str> = refunds.iter().map(|r| r["reference"].as_str().expect("reference")).collect();
    references.sort_unstable();
    references.dedup();
    assert_eq!(references.len(), refunds.len(), "no item refunded twice");
    let positive_shares =
        items.iter().filter(|i| i["status"] == "cancelled" && i["credits"].as_i64() > Some(0)).count();
    assert_eq!(refunds.len(), positive_shares);
    for refund in &refunds {
        let index: usize = refund["reference"]
            .as_str()
            .and_then(|r| r.rsplit(':').next())
            .and_then(|i| i.parse().ok())
            .expect("index");
        assert_eq!(items[index]["status"], "cancelled", "a refunded item was cancelled, never completed");
        assert_eq!(refund["amount"], items[index]["credits"]);
    }
    assert_eq!(balance(&shop.key).await, 100 - 20 + cancelled_share);

    // Cancelling again: nothing left, nothing refunded.
    let again = post(&format!("/v1/tryons/{}/cancel", session.id)).api_key(&shop.key).send().await.expect(200);
    assert_eq!(again.body["cancelled_items"], json!([]));
    assert_eq!(again.body["refunded_credits"], 0);
    assert_eq!(balance(&shop.key).await, 100 - 20 + cancelled_share);
    assert!(["completed", "cancelled"].contains(&again.body["status"].as_str().expect("status")));
}

/// Concurrent cancels of one session: each answer names only the items that
/// call cancelled, so together they name every item once and their refunds
/// add up to the price, as the ledger does.
#[tokio::test]
async fn concurrent_cancels_each_report_only_what_they_cancelled() {
    let shop = shop(40).await;
    let (_, session) = quiet_session(&shop, 12, Quality::Hd).await;
    assert_eq!(session.price.total, 20);
    let cancel = || {
        let key = shop.key.clone();
        async move { post(&format!("/v1/tryons/{}/cancel", session.id)).api_key(&key).send().await }
    };
    let answers = join_all((0..6).map(|_| cancel())).await;
    let mut reported: Vec<u64> = Vec::new();
    let mut refunded = 0;
    for answer in &answers {
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert_eq!(answer.body["status"], "cancelled", "{:?}", answer.body);
        let items = answer.body["cancelled_items"].as_array().expect("cancelled_items");
        reported.extend(items.iter().map(|i| i.as_u64().expect("index")));
        refunded += answer.body["refunded_credits"].as_i64().expect("refunded_credits");
    }
    let shown = get(&format!("/v1/tryons/{}", session.id)).api_key(&shop.key).send().await.expect(200).body;
    let cancelled = shown["items"].as_array().expect("items").iter().filter(|i| i["status"] == "cancelled").count();
    assert_eq!(cancelled, 12);
    assert_eq!(reported.len(), cancelled, "the answers name {reported:?}");
    reported.sort_unstable();
    assert_eq!(reported, (0..12).collect::<Vec<u64>>(), "no item in two answers");
    assert_eq!(refunded, 20, "the answers' refunds add up to the price");
    assert_eq!(shown["credits_refunded"], 20);
    let with_share =
        shown["items"].as_array().expect("items").iter().filter(|i| i["credits"].as_i64() > Some(0)).count();
    let refunds = ledger(&shop.owner.access_token).await.into_iter().filter(|e| e["kind"] == "refund").count();
    assert_eq!(refunds, with_share, "one refund per item with a share");
    assert_eq!(balance(&shop.key).await, 40);
}

#[tokio::test]
async fn cancelling_before_the_worker_refunds_everything_once() {
    let shop = shop(20).await;
    let (_, session) = quiet_session(&shop, 3, Quality::FourK).await;
    assert_eq!(session.price.total, 12);
    let reply = post(&format!("/v1/tryons/{}/cancel", session.id)).api_key(&shop.key).send().await.expect(200);
    assert_eq!(reply.body["cancelled_items"], json!([0, 1, 2]));
    assert_eq!(reply.body["refunded_credits"], 12);
    assert_eq!(reply.body["status"], "cancelled");
    assert_eq!(balance(&shop.key).await, 20);
    let worker = worker(TestEngine::default()).await;
    let scope = TenantScope::for_tests(Uuid::parse_str(&shop.owner.tenant_id).expect("tenant"));
    assert_eq!(worker.process(&scope, session.id, 0).await.expect("processed"), Outcome::AlreadyDone);
}

#[tokio::test]
async fn customers_upsert_by_external_id_and_photos_are_checked() {
    let shop = shop(0).await;
    let external = format!("ext-{}", unique());
    let first = post("/v1/customers")
        .api_key(&shop.key)
        .json(&json!({"external_id": external, "name": "A"}))
        .send()
        .await
        .expect(201);
    let again = post("/v1/customers")
        .api_key(&shop.key)
        .json(&json!({"external_id": external, "name": "B", "metadata": {"tier": "gold"}}))
        .send()
        .await
        .expect(200);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.body["name"], "B");
    assert_eq!(again.body["email"], Value::Null);
    // Concurrent upserts of a new external id make one customer.
    let racing = format!("race-{}", unique());
    let replies =
        join_all((0..8).map(|_| post("/v1/customers").api_key(&shop.key).json(&json!({"external_id": racing})).send()))
            .await;
    let ids: Vec<&Value> = replies.iter().map(|r| &r.body["id"]).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(replies.iter().filter(|r| r.status == 201).count(), 1);
    let listed = eventually("both customers listed", Duration::from_secs(10), || {
        let key = shop.key.clone();
        async move {
            let body = get("/v1/customers").api_key(&key).send().await.expect(200).body;
            (body["data"].as_array().map(Vec::len) == Some(2)).then_some(body)
        }
    })
    .await;
    assert_eq!(listed["data"][0]["external_id"], external.as_str());

    let customer_id = first.body["id"].as_str().expect("id").to_owned();
    // Not a PNG although declared one: refused, and the object is deleted.
    let fake = b"<html>definitely not a png</html>".to_vec();
    let created = post(&format!("/v1/customers/{customer_id}/photos"))
        .api_key(&shop.key)
        .json(&json!({"content_type": "image/png", "size_bytes": fake.len()}))
        .send()
        .await
        .expect(201);
    let photo_id = created.body["id"].as_str().expect("id");
    let confirm = format!("/v1/customers/{customer_id}/photos/{photo_id}/confirm");
    post(&confirm).api_key(&shop.key).send().await.expect_error(409, "conflict");
    let url = created.body["upload"]["url"].as_str().expect("url");
    reqwest::Client::new().put(url).header("content-type", "image/png").body(fake).send().await.expect("upload");
    let refused = post(&confirm).api_key(&shop.key).send().await.expect_error(422, "invalid_upload");
    assert_eq!(refused.body["details"]["photo"]["status"], "rejected");
    // Declared size must match; oversize declarations are refused up front.
    let reply = post(&format!("/v1/customers/{customer_id}/photos"))
        .api_key(&shop.key)
        .json(&json!({"content_type": "image/gif", "size_bytes": 20 * 1024 * 1024}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["content_type", "size_bytes"]);

    let good = upload_photo(&shop.key, &customer_id, &png(10, 10, [0, 0, 0]), "person").await;
    let photos = get(&format!("/v1/customers/{customer_id}/photos")).api_key(&shop.key).send().await.expect(200);
    let statuses: Vec<&str> =
        photos.body["data"].as_array().expect("data").iter().map(|p| p["status"].as_str().expect("s")).collect();
    assert_eq!(statuses, ["rejected", "ready"]);

    // Deleting the customer deletes its photo objects in S3.
    let (state, _) = test_state().await;
    let tenant = TenantScope::for_tests(Uuid::parse_str(&shop.owner.tenant_id).expect("tenant"));
    let key = format!(
        "{}photos/{good}",
        shared::store::customers::customer_blob_prefix(&tenant, Uuid::parse_str(&customer_id).expect("id"))
    );
    assert!(state.blobs.head(&key).await.expect("head").is_some());
    delete(&format!("/v1/customers/{customer_id}")).api_key(&shop.key).send().await.expect(204);
    assert!(state.blobs.head(&key).await.expect("head").is_none(), "the photo object is gone");
    get(&format!("/v1/customers/{customer_id}")).api_key(&shop.key).send().await.expect_error(404, "not_found");
    // The external id is free again.
    post("/v1/customers").api_key(&shop.key).json(&json!({"external_id": external})).send().await.expect(201);
}

#[tokio::test]
async fn another_tenants_customers_photos_and_tryons_answer_404() {
    let a = shop(30).await;
    let b = shop(30).await;
    let customer_id = customer(&a.key, "shared-external-id").await;
    let person = upload_photo(&a.key, &customer_id, &png(20, 40, [5, 5, 5]), "person").await;
    let (_, session) = quiet_session(&a, 1, Quality::Sd).await;
    let photo_path = format!("/v1/customers/{customer_id}/photos");
    for (method, path) in [
        (Method::GET, format!("/v1/customers/{customer_id}")),
        (Method::DELETE, format!("/v1/customers/{customer_id}")),
        (Method::GET, photo_path.clone()),
        (Method::POST, format!("{photo_path}/{person}/confirm")),
        (Method::GET, format!("/v1/tryons/{}", session.id)),
        (Method::POST, format!("/v1/tryons/{}/cancel", session.id)),
    ] {
        Call::new(method.clone(), &path).api_key(&b.key).send().await.expect_error(404, "not_found");
    }
    post(&photo_path)
        .api_key(&b.key)
        .json(&json!({"content_type": "image/png", "size_bytes": 10}))
        .send()
        .await
        .expect_error(404, "not_found");
    post("/v1/tryons")
        .api_key(&b.key)
        .json(&json!({"customer_id": customer_id, "photo_id": person, "quality": "sd",
                      "items": [{"product_id": "x", "garment_image_url": "https://cdn.example.com/x.png"}]}))
        .send()
        .await
        .expect_error(404, "not_found");
    // B's own customer with the same external id is B's, not A's.
    let bs = post("/v1/customers")
        .api_key(&b.key)
        .json(&json!({"external_id": "shared-external-id"}))
        .send()
        .await
        .expect(201);
    assert_ne!(bs.body["id"], customer_id.as_str());
    // A's data is untouched.
    get(&format!("/v1/customers/{customer_id}")).api_key(&a.key).send().await.expect(200);
    assert_eq!(balance(&b.key).await, 30);
}

/// A message the worker can never handle (here: an item that does not
/// exist) is retried, then parked in the worker's DLQ.
#[tokio::test]
async fn a_poison_item_message_ends_in_the_workers_dlq() {
    let (_, clients) = test_state().await;
    let marker = Uuid::now_v7();
    let body = json!({
        "version": "0", "id": Uuid::new_v4(), "detail-type": "tryon.item.requested", "source": "saas.platform",
        "account": "000000000000", "time": "2026-11-22T00:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"id": Uuid::now_v7(), "type": "tryon.item.requested", "tenant_id": Uuid::now_v7(),
                   "occurred_at": "2026-11-22T00:00:00Z", "data": {"session_id": marker, "item_index": 0}},
    })
    .to_string();
    let queue = std::env::var("QUEUE_URL_TRYON_WORKER").expect("queue url");
    clients.sqs.send_message().queue_url(&queue).message_body(&body).send().await.expect("send");
    let dlq = std::env::var("DLQ_URL_TRYON_WORKER").expect("dlq url");
    eventually("the poison message in the DLQ", Duration::from_secs(60), || async {
        let output = clients
            .sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .expect("receive");
        output.messages().iter().any(|m| m.body().is_some_and(|b| b.contains(&marker.to_string()))).then_some(())
    })
    .await;
}

/// The outbox events of one type in the tenant's partition that mention
/// `session_id` (what the relay publishes).
async fn session_events(scope: &TenantScope, event_type: &str, session_id: Uuid) -> Vec<Value> {
    outbox_events(&scope.tenant_id().to_string())
        .await
        .into_iter()
        .filter(|event| event["type"] == event_type && event["data"]["session_id"] == session_id.to_string())
        .collect()
}

/// The creating transaction writes one `tryon.item.requested` per item into
/// the outbox, so a session made through the store alone (no handler, no
/// publish after the commit) reaches the real worker through the relay; the
/// session's final transition emits `tryon.session.completed` exactly once.
#[tokio::test]
async fn a_session_is_dispatched_by_the_outbox_events_of_its_own_transaction() {
    let shop = shop(10).await;
    let (scope, session) = store_session(&shop, 2, Quality::Sd, true).await;
    let requested = session_events(&scope, "tryon.item.requested", session.id).await;
    let mut indexes: Vec<u64> = requested.iter().map(|e| e["data"]["item_index"].as_u64().expect("index")).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1], "one event per item, written with the session");
    let done = eventually("the session to complete", Duration::from_secs(60), || {
        let (key, id) = (shop.key.clone(), session.id);
        async move {
            let reply = get(&format!("/v1/tryons/{id}")).api_key(&key).send().await.expect(200);
            (reply.body["status"] == "completed").then_some(reply.body)
        }
    })
    .await;
    assert_eq!(done["progress"]["completed"], 2);
    assert_eq!(balance(&shop.key).await, 10 - 2);
    let finished = session_events(&scope, "tryon.session.completed", session.id).await;
    assert_eq!(finished.len(), 1, "the final transition emits its event once: {finished:?}");
    assert_eq!(finished[0]["data"]["completed"], 2);
    assert_eq!(finished[0]["data"]["credits_charged"], 2);
}

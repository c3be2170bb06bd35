//! Issue 17's compliance part: tenant data exports built by the
//! compliance-worker through the outbox, bus and queue; the erasure of a
//! customer or a member, checked by scanning the WHOLE table and every
//! object of the bucket; the report's residency and retention; who may call.

use std::{io::Read, time::Duration};

use compliance_worker::{ComplianceWorker, Outcome};
use platform_tests::*;
use serde_json::{Value, json};
use shared::auth::TenantScope;
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(120);

/// A customer of `key`'s shop with a unique email, name and metadata.
async fn personal_customer(key: &str, tag: &str) -> (String, String, String) {
    let email = format!("{tag}-{}@shoppers.example", unique());
    let name = format!("Erin Erasable {}", unique());
    let reply = post("/v1/customers")
        .api_key(key)
        .json(&json!({"external_id": format!("ext-{}", unique()), "email": email, "name": name,
                      "metadata": {"nickname": format!("nick-{}", unique())}}))
        .send()
        .await
        .expect(201);
    (reply.body["id"].as_str().expect("id").to_owned(), email, name)
}

/// A completed one-item try-on of `customer_id`: its session id.
async fn rendered_tryon(key: &str, customer_id: &str) -> String {
    let person = upload_photo(key, customer_id, &png(60, 120, [20, 40, 200]), "person").await;
    let garment = upload_photo(key, customer_id, &png(30, 30, [230, 30, 30]), "garment").await;
    let created = post("/v1/tryons")
        .api_key(key)
        .json(&json!({"customer_id": customer_id, "photo_id": person, "quality": "sd", "items": cart(&garment, 1)}))
        .send()
        .await
        .expect(201);
    let id = created.body["id"].as_str().expect("id").to_owned();
    eventually("the try-on to complete", DEADLINE, || {
        let (key, id) = (key.to_owned(), id.clone());
        async move {
            let reply = get(&format!("/v1/tryons/{id}")).api_key(&key).send().await.expect(200);
            (reply.body["status"] == "completed").then_some(())
        }
    })
    .await;
    id
}

/// Asks for an export as `token` and waits for it to complete: its body.
async fn completed_export(token: &str) -> Value {
    let asked = post("/v1/compliance/exports").token(token).send().await.expect(202);
    assert_eq!(asked.body["status"], "pending");
    assert!(asked.body["download_url"].is_null());
    let id = asked.body["id"].as_str().expect("id").to_owned();
    eventually("the export to complete", DEADLINE, || {
        let (token, id) = (token.to_owned(), id.clone());
        async move {
            let reply = get(&format!("/v1/compliance/exports/{id}")).token(&token).send().await.expect(200);
            assert_ne!(reply.body["status"], "failed", "{:#}", reply.body);
            (reply.body["status"] == "completed").then_some(reply.body)
        }
    })
    .await
}

/// The zip behind a download URL: entry names, and the text of every JSON
/// entry by name.
async fn download(url: &str) -> (Vec<String>, std::collections::BTreeMap<String, String>) {
    let bytes = reqwest::get(url).await.expect("download").bytes().await.expect("bytes").to_vec();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut names = Vec::new();
    let mut texts = std::collections::BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        let name = entry.name().expect("name").to_string();
        if name.ends_with(".json") {
            let mut text = String::new();
            entry.read_to_string(&mut text).expect("utf-8 entry");
            texts.insert(name.clone(), text);
        }
        names.push(name);
    }
    (names, texts)
}

/// Every item of the whole table (Scan, every page), as text.
async fn whole_table() -> Vec<String> {
    let (state, clients) = test_state().await;
    let mut found = Vec::new();
    let mut start = None;
    loop {
        let page = clients
            .dynamodb
            .scan()
            .table_name(state.store.table_name())
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .expect("scan");
        found.extend(page.items().iter().map(|item| format!("{item:?}")));
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return found,
        }
    }
}

/// Every object of the bucket: its key and its bytes, as (lossy) text.
async fn whole_bucket() -> Vec<(String, String)> {
    let (state, clients) = test_state().await;
    let bucket = state.config.blob_bucket_name.clone().expect("BLOB_BUCKET_NAME");
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = clients
            .s3
            .list_objects_v2()
            .bucket(&bucket)
            .set_continuation_token(token.take())
            .send()
            .await
            .expect("list");
        for object in page.contents() {
            let key = object.key().expect("key").to_owned();
            let Ok(got) = clients.s3.get_object().bucket(&bucket).key(&key).send().await else { continue };
            let bytes = got.body.collect().await.expect("body").into_bytes();
            found.push((key, String::from_utf8_lossy(&bytes).into_owned()));
        }
        match page.next_continuation_token() {
            Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
            _ => return found,
        }
    }
}

/// Asserts that none of `needles` is anywhere in the table or the bucket.
async fn nowhere(needles: &[&str]) {
    for item in whole_table().await {
        for needle in needles {
            assert!(!item.to_lowercase().contains(&needle.to_lowercase()), "{needle:?} is still in the table: {item}");
        }
    }
    for (key, text) in whole_bucket().await {
        for needle in needles {
            assert!(!key.contains(needle), "{needle:?} is in an object key: {key}");
            assert!(!text.to_lowercase().contains(&needle.to_lowercase()), "{needle:?} is still in object {key}");
        }
    }
}

#[tokio::test]
async fn an_export_holds_the_tenants_people_customers_photos_and_tryons_and_nothing_of_another_tenant() {
    let shop = shop(20).await;
    let dev = member_with_role(&shop.owner, "developer").await;
    let (customer_id, customer_email, _) = personal_customer(&shop.key, "export").await;
    let session_id = rendered_tryon(&shop.key, &customer_id).await;
    // Another tenant with data of its own.
    let other = platform_tests::shop(0).await;
    let (other_customer, other_email, other_name) = personal_customer(&other.key, "other").await;
    upload_photo(&other.key, &other_customer, &png(20, 20, [1, 2, 3]), "person").await;

    let done = completed_export(&shop.owner.access_token).await;
    assert_eq!(done["tenant_id"], shop.owner.tenant_id.as_str());
    assert_eq!(done["requested_by"]["id"], shop.owner.user_id.as_str());
    assert_eq!(done["object_count"], 3, "two photos and one try-on image: {done:#}");
    assert!(done["item_count"].as_i64().expect("item_count") > 10, "{done:#}");
    assert!(done["expires_at"].is_string() && done["file_expires_at"].is_string(), "{done:#}");
    let (names, texts) = download(done["download_url"].as_str().expect("download_url")).await;
    let text: String = texts.values().cloned().collect();

    assert_eq!(names[..2], ["manifest.json".to_owned(), "items.json".to_owned()]);
    let photos: Vec<&String> =
        names.iter().filter(|n| n.starts_with(&format!("objects/customers/{customer_id}/photos/"))).collect();
    assert_eq!(photos.len(), 2, "{names:?}");
    assert!(names.iter().any(|n| n.starts_with(&format!("objects/tryons/{session_id}/"))), "{names:?}");
    for present in [&shop.owner.email, &dev.email, &customer_id, &customer_email, &session_id, &shop.owner.tenant_id] {
        assert!(text.contains(present.as_str()), "{present} is not in the export");
    }
    // Secrets never leave the store.
    let items: Vec<Value> = serde_json::from_str(&texts["items.json"]).expect("items.json is a JSON array");
    assert_eq!(items.len() as i64, done["item_count"].as_i64().expect("count"));
    for item in &items {
        let sk = item["SK"].as_str().expect("every item keeps its key");
        assert!(!sk.starts_with("SESSION#") && !sk.starts_with("IDEM#"), "a credential item: {sk}");
        for name in item.as_object().expect("an object").keys() {
            assert!(
                !(name.ends_with("_hash") || name.ends_with("_sealed") || name.ends_with("_nonce")),
                "{sk} exports {name}"
            );
        }
    }
    assert!(items.iter().any(|i| i["SK"] == format!("USER#{}", dev.user_id)), "the developer is exported");
    assert!(!text.contains("$argon2"), "a password hash is in the export");
    // Nothing of the other tenant.
    for foreign in [&other.owner.tenant_id, &other.owner.email, &other_customer, &other_email, &other_name] {
        assert!(!text.contains(foreign.as_str()), "the export holds {foreign} of another tenant");
        assert!(names.iter().all(|n| !n.contains(foreign.as_str())), "an entry names {foreign}");
    }

    // Listed, and audited: who asked.
    let listed = get("/v1/compliance/exports").token(&shop.owner.access_token).send().await.expect(200);
    assert_eq!(listed.body["data"][0]["id"], done["id"]);
    let asked = audit_entries(&shop.owner.tenant_id)
        .await
        .into_iter()
        .any(|(action, values)| action == "create" && values["id"] == done["id"]);
    assert!(asked, "the request has its audit entry");

    // A redelivered request does not build it again. Run as the worker's
    // function, so that the IAM check sees the read that tells it (tests/registry.rs).
    let (state, _) = test_state().await;
    let worker = ComplianceWorker { store: state.store.clone(), blobs: state.blobs.clone() };
    let scope = TenantScope::for_tests(Uuid::parse_str(&shop.owner.tenant_id).expect("tenant"));
    let id = Uuid::parse_str(done["id"].as_str().expect("id")).expect("uuid");
    let redelivered = shared::aws::call_log::in_function("ComplianceWorkerFunction", worker.export(&scope, id)).await;
    assert_eq!(redelivered.expect("handled"), Outcome::AlreadyDone);
}

#[tokio::test]
async fn an_erased_customer_is_nowhere_in_the_table_or_the_bucket() {
    let shop = shop(20).await;
    // The tenant's audit feed goes to a webhook (which never answers): its
    // deliveries carry the customer's values too.
    post("/v1/webhooks")
        .api_key(&shop.key)
        .json(&json!({"url": "http://127.0.0.1:9/hook", "event_types": ["audit.entry.created"], "description": "audit feed"}))
        .send()
        .await
        .expect(201);
    let (customer_id, email, name) = personal_customer(&shop.key, "erase").await;
    eventually("the customer's creation to be delivered", DEADLINE, || {
        let (tenant, email) = (shop.owner.tenant_id.clone(), email.clone());
        async move {
            let deliveries = tenant_items(&tenant, "WHDELIVERY#").await;
            deliveries.iter().any(|d| format!("{d:?}").contains(&email)).then_some(())
        }
    })
    .await;
    let customer = get(&format!("/v1/customers/{customer_id}")).api_key(&shop.key).send().await.expect(200);
    let nickname = customer.body["metadata"]["nickname"].as_str().expect("nickname").to_owned();
    let external_id = customer.body["external_id"].as_str().expect("external id").to_owned();
    let session_id = rendered_tryon(&shop.key, &customer_id).await;
    // An export made before holds the customer too.
    completed_export(&shop.owner.access_token).await;
    // Another customer of the shop keeps everything.
    let (kept_id, kept_email, _) = personal_customer(&shop.key, "kept").await;

    let reply = post("/v1/compliance/erasures")
        .token(&shop.owner.access_token)
        .json(&json!({"subject_type": "customer", "subject_id": customer_id}))
        .send()
        .await
        .expect(201);
    let erasure = reply.body;
    assert_eq!(erasure["status"], "completed");
    assert_eq!(erasure["subject_type"], "customer");
    assert_eq!(erasure["subject_id"], customer_id.as_str());
    assert_eq!(erasure["counts"]["subject"], 1);
    // Two photos, one try-on image, one export zip.
    assert_eq!(erasure["counts"]["object_deleted"], 4, "{erasure:#}");
    assert!(erasure["counts"]["audit_entry"].as_i64().unwrap_or(0) >= 1, "{erasure:#}");
    assert!(erasure["counts"]["webhook_delivery"].as_i64().unwrap_or(0) >= 1, "{erasure:#}");
    assert!(!erasure.to_string().contains(&email));

    nowhere(&[&email, &name, &nickname, &external_id]).await;
    let (state, _) = test_state().await;
    let photos = state.blobs.list(&format!("tenants/{}/customers/{customer_id}/", shop.owner.tenant_id)).await;
    assert_eq!(photos.expect("list"), []);
    let images = state.blobs.list(&format!("tenants/{}/tryons/{session_id}/", shop.owner.tenant_id)).await;
    assert_eq!(images.expect("list"), []);

    // The customer stays, anonymised (its try-on and ledger point at it).
    let after = get(&format!("/v1/customers/{customer_id}")).api_key(&shop.key).send().await.expect(200);
    assert_eq!((after.body["email"].clone(), after.body["name"].clone()), (Value::Null, Value::Null));
    assert_eq!(after.body["metadata"], json!({}));
    assert_eq!(after.body["external_id"], format!("erased-{customer_id}"));
    let kept = get(&format!("/v1/customers/{kept_id}")).api_key(&shop.key).send().await.expect(200);
    assert_eq!(kept.body["email"], kept_email.as_str());

    // Asking again answers the same erasure.
    let again = post("/v1/compliance/erasures")
        .token(&shop.owner.access_token)
        .json(&json!({"subject_type": "customer", "subject_id": customer_id}))
        .send()
        .await
        .expect(200);
    assert_eq!(again.body["id"], erasure["id"]);
    let report = get("/v1/compliance/report").token(&shop.owner.access_token).send().await.expect(200);
    assert_eq!(report.body["erasure_count"], 1);
    assert!(report.body["last_export"]["download_url"].is_null(), "the erased export's zip is gone");
}

#[tokio::test]
async fn an_erased_member_is_nowhere_in_the_table_and_cannot_sign_in() {
    let owner = register_owner().await;
    let email = format!("quinn-{}@members.example", unique());
    let (first, last) = (format!("Quinn{}", unique()), format!("Erasable{}", unique()));
    let created = post("/v1/users")
        .token(&owner.access_token)
        .json(
            &json!({"email": email, "password": PASSWORD, "first_name": first, "last_name": last, "role": "developer"}),
        )
        .send()
        .await
        .expect(201);
    let user_id = created.body["id"].as_str().expect("id").to_owned();
    // Signed in: a session, a login, an audited change made by them.
    let login = post("/v1/auth/login").json(&json!({"email": email, "password": PASSWORD})).send().await.expect(200);
    let token = login.body["access_token"].as_str().expect("token").to_owned();
    post("/v1/customers")
        .token(&token)
        .json(&json!({"external_id": format!("by-{}", unique()), "name": "Made by Quinn"}))
        .send()
        .await
        .expect(201);

    let reply = post("/v1/compliance/erasures")
        .token(&owner.access_token)
        .json(&json!({"subject_type": "user", "subject_id": user_id}))
        .send()
        .await
        .expect(201);
    assert_eq!(reply.body["counts"]["subject"], 1, "{:#}", reply.body);
    assert!(reply.body["counts"]["session"].as_i64().unwrap_or(0) >= 1, "{:#}", reply.body);

    nowhere(&[&email, &first, &last]).await;
    get(&format!("/v1/users/{user_id}")).token(&owner.access_token).send().await.expect_error(404, "not_found");
    post("/v1/auth/login").json(&json!({"email": email, "password": PASSWORD})).send().await.expect(401);
    get("/v1/auth/me").token(&token).send().await.expect(401);
    // The audit trail keeps what happened, by id.
    let erased = audit_entries(&owner.tenant_id)
        .await
        .into_iter()
        .any(|(action, values)| action == "erase" && values == json!({"erased": true}));
    assert!(erased, "the erasure of the member is audited without personal values");
    // The member is gone from the tenant; the owner is untouched.
    assert_eq!(member_emails(&owner).await, std::slice::from_ref(&owner.email));
}

#[tokio::test]
async fn the_owner_and_oneself_cannot_be_erased_and_another_tenants_ids_are_404() {
    let owner = register_owner().await;
    let admin = member_with_role(&owner, "admin").await;
    let erase = |token: &str, kind: &str, id: &str| {
        post("/v1/compliance/erasures").token(token).json(&json!({"subject_type": kind, "subject_id": id}))
    };
    let refused = erase(&admin.access_token, "user", &owner.user_id).send().await.expect_error(409, "conflict");
    assert_eq!(refused.body["details"]["reason"], "owner");
    let refused = erase(&admin.access_token, "user", &admin.user_id).send().await.expect_error(409, "conflict");
    assert_eq!(refused.body["details"]["reason"], "self");

    let other = platform_tests::shop(0).await;
    let (other_customer, other_email, _) = personal_customer(&other.key, "foreign").await;
    let other_member = member_with_role(&other.owner, "developer").await;
    erase(&owner.access_token, "customer", &other_customer).send().await.expect_error(404, "not_found");
    erase(&owner.access_token, "user", &other_member.user_id).send().await.expect_error(404, "not_found");
    erase(&owner.access_token, "user", &Uuid::now_v7().to_string()).send().await.expect_error(404, "not_found");
    // Nothing of the other tenant changed.
    let kept = get(&format!("/v1/customers/{other_customer}")).api_key(&other.key).send().await.expect(200);
    assert_eq!(kept.body["email"], other_email.as_str());
    let bad = erase(&owner.access_token, "shopper", "nope").send().await.expect_error(400, "validation_failed");
    assert_eq!(bad.invalid_fields(), ["subject_id", "subject_type"]);
    // Another tenant's export is 404 too.
    let theirs = post("/v1/compliance/exports").token(&other.owner.access_token).send().await.expect(202);
    let id = theirs.body["id"].as_str().expect("id");
    get(&format!("/v1/compliance/exports/{id}")).token(&owner.access_token).send().await.expect_error(404, "not_found");
}

#[tokio::test]
async fn only_admins_signed_in_as_people_reach_compliance() {
    let owner = register_owner().await;
    let customer_id = Uuid::now_v7().to_string();
    for role in ["developer", "user"] {
        let member = member_with_role(&owner, role).await;
        let token = member.access_token.as_str();
        let replies = [
            post("/v1/compliance/exports").token(token).send().await,
            get("/v1/compliance/exports").token(token).send().await,
            get("/v1/compliance/report").token(token).send().await,
            post("/v1/compliance/erasures")
                .token(token)
                .json(&json!({"subject_type": "customer", "subject_id": customer_id}))
                .send()
                .await,
        ];
        for reply in replies {
            let reply = reply.expect_error(403, "insufficient_permissions");
            assert_eq!(reply.body["details"]["required_role"], "admin", "{:#}", reply.body);
        }
    }
    let key = create_api_key(&owner.access_token, &["customers:read", "customers:write", "audit:read"]).await;
    get("/v1/compliance/report").api_key(&key.secret).send().await.expect_error(403, "insufficient_permissions");
    post("/v1/compliance/exports").api_key(&key.secret).send().await.expect_error(403, "insufficient_permissions");
    get("/v1/compliance/report").send().await.expect(401);
}

#[tokio::test]
async fn the_report_shows_residency_against_the_region_and_the_retention_in_force() {
    let token = platform_admin_token().await;
    let region = std::env::var("AWS_REGION").expect("AWS_REGION (the env file)");
    let area = region.split('-').next().expect("area").to_owned();
    let compliance = json!({"data_classification": "confidential", "audit_logging": true, "retention_policy_days": 10, "gdpr_enabled": true});
    let mut body = valid_tenant_body();
    body["data_residency"] = json!(area);
    body["configuration"] = json!({"compliance": compliance});
    let id = post("/v1/tenants").token(&token).json(&body).send().await.expect(201).body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let report = get("/v1/compliance/report").token(&token).header("x-tenant-id", &id).send().await.expect(200).body;
    assert_eq!(report["tenant_id"], id.as_str());
    assert_eq!(report["compliance"], compliance);
    assert_eq!(report["data_residency"], area.as_str());
    assert_eq!(report["region"], region.as_str());
    assert_eq!(report["residency_matches"], true);
    assert_eq!(report["retention_days"], 10);
    let days = |record: &str| {
        report["retention"].as_array().expect("retention").iter().find(|r| r["record"] == record).expect(record)["days"]
            .clone()
    };
    assert_eq!(days("audit_entry"), 10);
    assert_eq!(days("webhook_delivery"), 10, "capped by the tenant's retention");
    assert_eq!(days("outbox_event"), 7);
    assert_eq!(days("export_file"), 7);
    assert_eq!(report["last_export"], Value::Null);
    assert_eq!(report["erasure_count"], 0);

    // What follows the retention gets its TTL from it: an export job, and
    // (capped) a webhook delivery or an inbound event.
    post("/v1/compliance/exports").token(&token).header("x-tenant-id", &id).send().await.expect(202);
    let jobs = tenant_items(&id, "COMPLIANCE#EXPORT#").await;
    let ttl = jobs[0].get("expires_at").and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok());
    let in_days = |epoch: i64| (epoch - chrono::Utc::now().timestamp()) as f64 / 86_400.0;
    assert!((9.9..=10.1).contains(&in_days(ttl.expect("expires_at"))), "{ttl:?}");
    let (state, _) = test_state().await;
    let scope = TenantScope::for_tests(Uuid::parse_str(&id).expect("uuid"));
    let delivery = state.store.capped_expiry(&scope, 30).await.expect("expiry");
    assert!((9.9..=10.1).contains(&in_days(delivery)), "a 30-day record is capped at 10");
    let rejection = state.store.capped_expiry(&scope, 7).await.expect("expiry");
    assert!((6.9..=7.1).contains(&in_days(rejection)), "a shorter lifetime stays");

    // Elsewhere, and unstated.
    let mut body = valid_tenant_body();
    body["data_residency"] = json!(if area == "eu" { "us" } else { "eu" });
    let elsewhere = post("/v1/tenants").token(&token).json(&body).send().await.expect(201).body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let report =
        get("/v1/compliance/report").token(&token).header("x-tenant-id", &elsewhere).send().await.expect(200).body;
    assert_eq!(report["residency_matches"], false);
    assert_eq!(report["retention_days"], 365);
    let owner = register_owner().await;
    let report = get("/v1/compliance/report").token(&owner.access_token).send().await.expect(200).body;
    assert_eq!((report["data_residency"].clone(), report["residency_matches"].clone()), (Value::Null, Value::Null));
    assert_eq!(report["compliance"], json!({}));
}

#[tokio::test]
async fn an_erasure_that_died_after_the_subject_went_is_finished_by_the_next_request() {
    use shared::{
        audit::AuditContext,
        domain::compliance::{Erasure, ErasureStatus, ErasureTerms, SubjectType},
        store::compliance::erasure_id,
    };
    let shop = shop(0).await;
    let (customer_id, email, name) = personal_customer(&shop.key, "retry").await;
    let (state, _) = test_state().await;
    let tenant_id = Uuid::parse_str(&shop.owner.tenant_id).expect("tenant");
    let scope = TenantScope::for_tests(tenant_id);
    let id = Uuid::parse_str(&customer_id).expect("uuid");
    let customer = state.store.get_customer(&scope, id).await.expect("read").expect("customer");
    // A first attempt recorded itself, anonymised the customer, and died
    // before scrubbing the rest.
    let audit = AuditContext::system("test");
    let first = Erasure {
        id: erasure_id(&scope, SubjectType::Customer, id),
        tenant_id,
        subject_type: SubjectType::Customer,
        subject_id: id,
        status: ErasureStatus::Running,
        requested_by: audit.actor.clone(),
        created_at: chrono::Utc::now(),
        completed_at: None,
        attempts: 1,
        counts: Default::default(),
        terms: Some(ErasureTerms::new(id, vec![email.clone()], vec![name.clone(), customer.external_id.clone()])),
    };
    state.store.begin_erasure(&scope, &first).await.expect("begun");
    assert!(state.store.erase_customer_record(&scope, &customer, &audit).await.expect("anonymised"));
    let holds = |items: &[shared::store::Item], needle: &str| items.iter().any(|i| format!("{i:?}").contains(needle));
    let items = state.store.partition_items(&scope).await.expect("items");
    assert!(holds(&items, &email), "the creation's audit entry still holds the email");

    // The customer holds nothing any more: the terms come from the record.
    let reply = post("/v1/compliance/erasures")
        .token(&shop.owner.access_token)
        .json(&json!({"subject_type": "customer", "subject_id": customer_id}))
        .send()
        .await
        .expect(201);
    assert_eq!(reply.body["id"], first.id.to_string());
    assert_eq!(reply.body["status"], "completed");
    assert!(reply.body["counts"]["audit_entry"].as_i64().unwrap_or(0) >= 1, "{:#}", reply.body);
    let items = state.store.partition_items(&scope).await.expect("items");
    assert!(!holds(&items, &email) && !holds(&items, &name), "the retry finished the scrub");
    let record = tenant_items(&shop.owner.tenant_id, "COMPLIANCE#ERASURE#").await;
    assert_eq!(record.len(), 1);
    assert!(!record[0].contains_key("terms"), "a completed erasure keeps no personal value");
}

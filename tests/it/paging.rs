//! Every list pages the same way (`?limit=`, `?cursor=`, `next_cursor`),
//! including the ones that used to answer everything at once; and a list
//! that meets an item it cannot decode skips it (logged with its key) rather
//! than answering 500 for good.

use std::{collections::HashMap, time::Duration};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use platform_tests::*;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// How a test calls a list: with a bearer token or an API key.
#[derive(Clone, Copy)]
enum Auth<'a> {
    Token(&'a str),
    Key(&'a str),
}

fn call(path: &str, auth: Auth<'_>) -> Call {
    match auth {
        Auth::Token(token) => get(path).token(token),
        Auth::Key(key) => get(path).api_key(key),
    }
}

/// Follows `next_cursor` from the first page to the end, `limit` at a time,
/// and answers the items of every page in order and how many pages it took.
async fn page_through(path: &str, auth: Auth<'_>, limit: usize) -> (Vec<Value>, usize) {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for pages in 1..=1000 {
        let url = match &cursor {
            Some(c) => format!("{path}{separator}limit={limit}&cursor={c}"),
            None => format!("{path}{separator}limit={limit}"),
        };
        let reply = call(&url, auth).send().await.expect(200);
        let data = reply.body["data"].as_array().expect("data");
        assert!(data.len() <= limit, "a page of {} for limit {limit}", data.len());
        items.extend(data.iter().cloned());
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (items, pages),
        }
    }
    panic!("{path} did not end within 1000 pages");
}

fn ids(items: &[Value], field: &str) -> Vec<String> {
    items.iter().map(|i| i[field].as_str().expect("id").to_owned()).collect()
}

/// A list without filters takes `limit` and `cursor` as every list does and
/// refuses what it does not know, a bad limit and an altered cursor.
async fn refuses_bad_parameters(path: &str, auth: Auth<'_>) {
    let separator = if path.contains('?') { '&' } else { '?' };
    let reply = call(&format!("{path}{separator}status=active"), auth).send().await;
    let reply = reply.expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["status"]);
    assert_eq!(reply.body["details"]["fields"][0]["message"], "unknown query parameter");
    let reply = call(&format!("{path}{separator}limit=0"), auth).send().await.expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["limit"]);
    let reply = call(&format!("{path}{separator}limit=101"), auth).send().await.expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["limit"]);
    let first = call(&format!("{path}{separator}limit=1"), auth).send().await.expect(200);
    let cursor = first.body["next_cursor"].as_str().expect("a cursor after a full page");
    let altered = format!("A{}", &cursor[1..]);
    let altered = if altered == cursor { format!("B{}", &cursor[1..]) } else { altered };
    let reply =
        call(&format!("{path}{separator}cursor={altered}"), auth).send().await.expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["cursor"]);
}

/// Writes items straight into the table, as a bug or an older version might
/// have left them.
async fn put_items(items: Vec<HashMap<String, AttributeValue>>) {
    let (state, clients) = test_state().await;
    for chunk in items.chunks(25) {
        let requests = chunk
            .iter()
            .map(|item| {
                let put = PutRequest::builder().set_item(Some(item.clone())).build().expect("put request");
                WriteRequest::builder().put_request(put).build()
            })
            .collect::<Vec<_>>();
        let mut pending = HashMap::from([(state.store.table_name().to_owned(), requests)]);
        while !pending.is_empty() {
            let output =
                clients.dynamodb.batch_write_item().set_request_items(Some(pending)).send().await.expect("batch write");
            pending = output.unprocessed_items.unwrap_or_default();
            pending.retain(|_, requests| !requests.is_empty());
        }
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// An item with these keys whose attributes fit no entity: `id` missing, a
/// number where names and dates are strings.
fn undecodable(keys: &[(&str, String)]) -> HashMap<String, AttributeValue> {
    let mut item: HashMap<String, AttributeValue> = keys.iter().map(|(k, v)| ((*k).to_owned(), s(v))).collect();
    for field in ["name", "created_at", "action", "timestamp", "external_id"] {
        item.insert(field.to_owned(), AttributeValue::N("42".into()));
    }
    item.insert("status".to_owned(), AttributeValue::M(HashMap::new()));
    item
}

#[tokio::test]
async fn webhook_endpoints_page_with_limit_and_cursor() {
    let owner = register_owner().await;
    let auth = Auth::Token(&owner.access_token);
    let mut created = Vec::new();
    for i in 0..5 {
        let reply = post("/v1/webhooks")
            .token(&owner.access_token)
            .json(&json!({"url": format!("http://127.0.0.1:9/hook-{i}"), "event_types": ["tryon.*"]}))
            .send()
            .await
            .expect(201);
        created.push(reply.body["id"].as_str().expect("id").to_owned());
    }
    let first = call("/v1/webhooks?limit=2", auth).send().await.expect(200);
    assert_eq!(ids(first.body["data"].as_array().expect("data"), "id"), created[..2]);
    assert!(first.body["data"][0].get("secret").is_none(), "a list never shows the secret");
    let (all, pages) = page_through("/v1/webhooks", auth, 2).await;
    assert_eq!(ids(&all, "id"), created, "every endpoint once, in creation order");
    assert!(pages >= 3, "{pages} pages for 5 endpoints 2 at a time");
    let everything = call("/v1/webhooks", auth).send().await.expect(200);
    assert_eq!(ids(everything.body["data"].as_array().expect("data"), "id"), created);
    assert!(everything.body["next_cursor"].is_null());
    refuses_bad_parameters("/v1/webhooks", auth).await;

    // A cursor of this list is no cursor of another tenant's.
    let other = register_owner().await;
    let cursor = first.body["next_cursor"].as_str().expect("cursor");
    let reply = call(&format!("/v1/webhooks?cursor={cursor}"), Auth::Token(&other.access_token)).send().await;
    assert_eq!(reply.expect_error(400, "validation_failed").invalid_fields(), ["cursor"]);
}

/// More invitations than one page, or the 100 the old single query read, are
/// all reachable by cursor.
#[tokio::test]
async fn invitations_page_past_one_hundred() {
    let owner = register_owner().await;
    let auth = Auth::Token(&owner.access_token);
    let invited = post("/v1/users/invite")
        .token(&owner.access_token)
        .json(&json!({"emails": [format!("invitee-{}@members.example", unique())], "role": "user"}))
        .send()
        .await
        .expect(201);
    let mut emails = vec![invited.body["invitations"][0]["email"].as_str().expect("email").to_owned()];
    // Planted past the users quota, which would refuse this many through
    // the API: the list must show them all the same.
    let tenant_id = Uuid::parse_str(&owner.tenant_id).expect("tenant id");
    let mut items = Vec::new();
    for i in 0..110 {
        let email = format!("planted-{i:03}-{}@members.example", unique());
        let mut item = shared::store::members::invitation_item(tenant_id, &email, shared::auth::Role::User, None)
            .expect("invitation item");
        item.insert("PK".into(), s(format!("T#{tenant_id}#")));
        items.push(item);
        emails.push(email);
    }
    put_items(items).await;
    emails.sort();

    let first = call("/v1/users/invitations", auth).send().await.expect(200);
    assert_eq!(first.body["data"].as_array().expect("data").len(), 20, "the default page is 20");
    assert!(first.body["next_cursor"].is_string());
    let (all, pages) = page_through("/v1/users/invitations", auth, 100).await;
    assert_eq!(ids(&all, "email"), emails, "every invitation once, by address");
    assert!(pages >= 2);
    let (all, _) = page_through("/v1/users/invitations", auth, 7).await;
    assert_eq!(ids(&all, "email"), emails);
    refuses_bad_parameters("/v1/users/invitations", auth).await;
}

#[tokio::test]
async fn customer_photos_page_with_limit_and_cursor() {
    let shop = shop(0).await;
    let auth = Auth::Key(&shop.key);
    let customer_id = customer(&shop.key, &format!("paged-{}", unique())).await;
    let mut created = Vec::new();
    for _ in 0..5 {
        let reply = post(&format!("/v1/customers/{customer_id}/photos"))
            .api_key(&shop.key)
            .json(&json!({"content_type": "image/png", "size_bytes": 100}))
            .send()
            .await
            .expect(201);
        created.push(reply.body["id"].as_str().expect("id").to_owned());
    }
    let path = format!("/v1/customers/{customer_id}/photos");
    let first = call(&format!("{path}?limit=3"), auth).send().await.expect(200);
    assert_eq!(ids(first.body["data"].as_array().expect("data"), "id"), created[..3]);
    let (all, pages) = page_through(&path, auth, 2).await;
    assert_eq!(ids(&all, "id"), created, "every photo once, oldest first");
    assert!(pages >= 3);
    refuses_bad_parameters(&path, auth).await;
    // Another customer's cursor does not page this one.
    let other = customer(&shop.key, &format!("paged-{}", unique())).await;
    let cursor = first.body["next_cursor"].as_str().expect("cursor");
    let reply = call(&format!("/v1/customers/{other}/photos?cursor={cursor}"), auth).send().await;
    assert_eq!(reply.expect_error(400, "validation_failed").invalid_fields(), ["cursor"]);
    call(&format!("/v1/customers/{}/photos?limit=2", Uuid::now_v7()), auth).send().await.expect_error(404, "not_found");

    // A delete still removes every photo item, however many pages they fill.
    delete(&format!("/v1/customers/{customer_id}")).api_key(&shop.key).send().await.expect(204);
    let prefix = format!("CUSTOMER#{customer_id}");
    assert!(tenant_items(&shop.owner.tenant_id, &prefix).await.is_empty());
}

/// A customer item nobody can decode (keys right, attributes wrong) is
/// skipped by the list, which keeps answering the others, on every page;
/// the server logs its key.
#[tokio::test]
async fn a_customer_that_cannot_be_decoded_is_skipped_and_logged() {
    let server = ServerProcess::start("warn").await;
    let shop = shop(0).await;
    let auth = Auth::Key(&shop.key);
    let good_first = customer(&shop.key, &format!("good-{}", unique())).await;
    let broken_id = Uuid::now_v7();
    let broken_sk = format!("CUSTOMER#{broken_id}");
    put_items(vec![undecodable(&[
        ("PK", format!("T#{}#", shop.owner.tenant_id)),
        ("SK", broken_sk.clone()),
        ("GSI1PK", format!("T#{}#CUSTOMERS", shop.owner.tenant_id)),
        ("GSI1SK", broken_id.to_string()),
    ])])
    .await;
    let good_last = customer(&shop.key, &format!("good-{}", unique())).await;

    let listed = call("/v1/customers", auth).send().await.expect(200);
    assert_eq!(ids(listed.body["data"].as_array().expect("data"), "id"), [good_first.clone(), good_last.clone()]);
    // One at a time, the broken item's page is empty and carries on.
    let (all, pages) = page_through("/v1/customers", auth, 1).await;
    assert_eq!(ids(&all, "id"), [good_first.clone(), good_last.clone()]);
    assert!(pages >= 3, "the broken item took a page of its own");

    let reply = server.call(Method::GET, "/v1/customers").api_key(&shop.key).send().await.expect(200);
    assert_eq!(ids(reply.body["data"].as_array().expect("data"), "id"), [good_first, good_last]);
    let line = eventually("the skipped item to be logged", Duration::from_secs(10), || {
        let log = server.log();
        let sk = broken_sk.clone();
        async move { log.lines().find(|l| l.contains(&sk)).map(str::to_owned) }
    })
    .await;
    assert!(line.contains("WARN") || line.contains("warn"), "{line}");
    assert!(line.contains(&format!("T#{}#", shop.owner.tenant_id)), "the log names the partition: {line}");
}

/// The platform admin's tenant lists, all tenants and a parent's children,
/// skip a tenant item that does not decode.
#[tokio::test]
async fn a_tenant_that_cannot_be_decoded_is_skipped_by_the_platform_admins_lists() {
    let token = platform_admin_token().await;
    let auth = Auth::Token(&token);
    let create = |body: Value| {
        let token = token.clone();
        async move {
            let reply = post("/v1/tenants").token(&token).json(&body).send().await.expect(201);
            reply.body["id"].as_str().expect("id").to_owned()
        }
    };
    let mut parent = valid_tenant_body();
    parent["type"] = json!("MAIN");
    let parent_id = create(parent).await;
    let mut child = valid_tenant_body();
    child["parent_id"] = json!(parent_id);
    let first_child = create(child.clone()).await;
    let broken_id = Uuid::now_v7();
    put_items(vec![undecodable(&[
        ("PK", format!("T#{broken_id}#")),
        ("SK", "TENANT".to_owned()),
        ("GSI1PK", "TENANTS".to_owned()),
        ("GSI1SK", broken_id.to_string()),
        ("GSI2PK", format!("PARENT#{parent_id}")),
        ("GSI2SK", broken_id.to_string()),
    ])])
    .await;
    child["slug"] = json!(format!("ub-{}", unique()));
    let last_child = create(child).await;

    let children = call(&format!("/v1/tenants?parent_id={parent_id}"), auth).send().await.expect(200);
    assert_eq!(ids(children.body["data"].as_array().expect("data"), "id"), [first_child.clone(), last_child.clone()]);
    let (all, _) = page_through(&format!("/v1/tenants?parent_id={parent_id}"), auth, 1).await;
    assert_eq!(ids(&all, "id"), [first_child.clone(), last_child.clone()]);

    let (all, _) = page_through("/v1/tenants", auth, 100).await;
    let all = ids(&all, "id");
    for id in [&parent_id, &first_child, &last_child] {
        assert!(all.contains(id), "{id} is listed");
    }
    assert!(!all.contains(&broken_id.to_string()));
}

/// An audit entry that does not decode leaves the audit log readable.
#[tokio::test]
async fn an_audit_entry_that_cannot_be_decoded_is_skipped() {
    let owner = register_owner().await;
    let auth = Auth::Token(&owner.access_token);
    post("/v1/projects").token(&owner.access_token).json(&json!({"name": "Audited"})).send().await.expect(201);
    let before = call("/v1/audit/logs?limit=100", auth).send().await.expect(200);
    let before = ids(before.body["data"].as_array().expect("data"), "id");
    assert!(!before.is_empty());
    let broken_id = Uuid::now_v7();
    put_items(vec![undecodable(&[
        ("PK", format!("T#{}#", owner.tenant_id)),
        ("SK", format!("AUDIT#{broken_id}")),
        ("resource_type", "project".to_owned()),
    ])])
    .await;

    // Entries may still be arriving (the tenant's provisioning), so the
    // later reads hold at least the earlier good ones, and never the broken.
    let after = call("/v1/audit/logs?limit=100", auth).send().await.expect(200);
    let after = ids(after.body["data"].as_array().expect("data"), "id");
    let (paged, _) = page_through("/v1/audit/logs", auth, 1).await;
    let paged = ids(&paged, "id");
    for listed in [&after, &paged] {
        assert!(before.iter().all(|id| listed.contains(id)), "{before:?} within {listed:?}");
        assert!(!listed.contains(&broken_id.to_string()));
        let mut newest_first = listed.clone();
        newest_first.sort_by(|a, b| b.cmp(a));
        assert_eq!(*listed, newest_first);
    }
    // A filter the broken entry matches runs past it too.
    let projects = call("/v1/audit/logs?resource_type=project", auth).send().await.expect(200);
    let projects = projects.body["data"].as_array().expect("data");
    assert!(!projects.is_empty() && projects.iter().all(|e| e["resource_type"] == "project"), "{projects:?}");
}

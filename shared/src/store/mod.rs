//! The one DynamoDB table, used the DynamoDB way: every access is a key lookup
//! or a Query; invariants are conditions; multi-item changes are transactions.
//! Layout (docs/data-model.md has the full table):
//! `T#<tenant>#` partitions hold everything a tenant owns; `SLUG#`/`EMAIL#`
//! items claim unique values; GSI1 lists all tenants, GSI2 a tenant's children.

pub mod ai;
pub mod alerts;
pub mod api_keys;
pub mod audit_log;
pub mod billing;
pub mod compliance;
pub mod credits;
mod cursor;
pub mod customers;
pub mod idempotency;
pub mod integrations;
pub mod members;
pub mod metrics;
pub mod mfa;
pub mod projects;
pub mod quota;
pub mod recovery;
pub mod sessions;
pub mod sso;
pub mod standing;
pub mod sync;
pub mod tenants;
pub mod throttle;
pub mod tryons;
pub mod tx;
pub mod users;
pub mod webhooks;
pub mod workflows;

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    Client, error::SdkError, operation::query::builders::QueryFluentBuilder, types::AttributeValue,
};
pub use cursor::CursorCodec;
use serde::de::DeserializeOwned;

use crate::error::{AppError, AppResult};

/// `?limit=&cursor=` as API.md defines them (the web layer parses them).
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: i32,
    pub cursor: Option<String>,
}

pub type Item = HashMap<String, AttributeValue>;

#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) client: Client,
    pub(crate) table: String,
    /// Only processes that serve lists need one (workers do not).
    cursors: Option<CursorCodec>,
}

/// How many Query round trips one page may take when a filter discards items.
const MAX_QUERY_ROUNDS: usize = 10;

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), cursors: None }
    }

    /// The same store reading through `client` (a tenant-scoped one:
    /// `AppState::tenant_store`).
    pub fn with_client(&self, client: Client) -> Self {
        Self { client, table: self.table.clone(), cursors: self.cursors.clone() }
    }

    pub fn with_cursors(mut self, cursors: CursorCodec) -> Self {
        self.cursors = Some(cursors);
        self
    }

    fn cursors(&self) -> Result<&CursorCodec, AppError> {
        self.cursors.as_ref().ok_or_else(|| AppError::internal(anyhow::anyhow!("this process has no cursor key ring")))
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// One consistent GetItem: the item as stored, if any.
    pub(crate) async fn get_item(&self, key: Item) -> AppResult<Option<Item>> {
        Ok(self.client.get_item().table_name(&self.table).set_key(Some(key)).consistent_read(true).send().await?.item)
    }

    /// The items at `keys` (absent ones are left out) in one BatchGetItem,
    /// retrying what DynamoDB leaves unprocessed under throttling a few
    /// times; `projection` names the attributes wanted (`#role` style names
    /// in `names`).
    pub(crate) async fn batch_get(
        &self,
        keys: Vec<Item>,
        projection: Option<(&str, &[(&str, &str)])>,
        consistent: bool,
    ) -> AppResult<Vec<Item>> {
        let mut request =
            aws_sdk_dynamodb::types::KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(consistent);
        if let Some((expression, names)) = projection {
            request = request.projection_expression(expression);
            for (name, attribute) in names {
                request = request.expression_attribute_names(*name, *attribute);
            }
        }
        let mut pending = HashMap::from([(self.table.clone(), request.build().map_err(AppError::internal)?)]);
        let mut found = Vec::new();
        for _ in 0..5 {
            let output = self.client.batch_get_item().set_request_items(Some(pending)).send().await?;
            found.extend(output.responses.unwrap_or_default().into_values().flatten());
            pending = output.unprocessed_keys.unwrap_or_default();
            if pending.is_empty() {
                return Ok(found);
            }
        }
        Err(AppError::internal(anyhow::anyhow!("BatchGetItem left keys unprocessed after 5 rounds")))
    }

    /// The items at `keys` that exist, deserialised, a hundred keys a
    /// BatchGetItem (its limit); `strip` names attributes dropped unread
    /// (a user's password hash).
    pub(crate) async fn all_at<T: DeserializeOwned>(&self, keys: Vec<Item>, strip: &[&str]) -> AppResult<Vec<T>> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut items = self.batch_get(chunk.to_vec(), None, true).await?;
            for item in &mut items {
                for attribute in strip {
                    item.remove(*attribute);
                }
            }
            found.extend(decode_listed(items));
        }
        Ok(found)
    }

    /// One consistent GetItem, deserialised.
    pub(crate) async fn get_as<T: DeserializeOwned>(&self, key: Item) -> AppResult<Option<T>> {
        self.get_item(key).await?.map(from_item).transpose()
    }

    /// A Query of the tenant's items whose sort key starts with `prefix`.
    pub(crate) fn prefix_query(
        &self,
        scope: &crate::auth::TenantScope,
        prefix: impl Into<String>,
    ) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", attr::s(scope.pk()))
            .expression_attribute_values(":prefix", attr::s(prefix))
    }

    /// Every item `query` finds, all pages (small or bounded sets: a
    /// tenant's components or endpoints, an analytics window's hours).
    pub(crate) async fn query_all(&self, query: QueryFluentBuilder) -> AppResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = query.clone().set_exclusive_start_key(start.take()).send().await?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// One page of a base-table listing, decoded ([`decode_listed`]: an
    /// item that does not decode is skipped and logged); the cursor is
    /// bound to `context`, the listing's own name.
    pub(crate) async fn list_page<T: DeserializeOwned>(
        &self,
        query: QueryFluentBuilder,
        page: &PageRequest,
        context: &str,
    ) -> AppResult<(Vec<T>, Option<String>)> {
        let (items, cursor) = self.query_page(query, page, context, &["PK", "SK"]).await?;
        Ok((decode_listed(items), cursor))
    }

    /// Runs `query` until `page.limit` items passed its filter (or the data ran
    /// out) and returns them with a cursor positioned after the last one.
    /// `context` binds the cursor to this list; `key_attrs` are the key
    /// attributes of the index being queried (base table keys included).
    pub(crate) async fn query_page(
        &self,
        query: QueryFluentBuilder,
        page: &PageRequest,
        context: &str,
        key_attrs: &[&str],
    ) -> Result<(Vec<Item>, Option<String>), AppError> {
        let mut start = match &page.cursor {
            Some(c) => Some(self.cursors()?.decode(context, c)?),
            None => None,
        };
        let limit = page.limit as usize;
        let mut items: Vec<Item> = Vec::with_capacity(limit);
        for _ in 0..MAX_QUERY_ROUNDS {
            let output = query.clone().limit(page.limit).set_exclusive_start_key(start.take()).send().await?;
            items.extend(output.items.unwrap_or_default());
            if items.len() >= limit {
                items.truncate(limit);
                let last = items.last().map(|item| {
                    key_attrs
                        .iter()
                        .filter_map(|k| item.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                        .collect::<Item>()
                });
                // A full page at the very end still gets a cursor; the next
                // call answers an empty page. Cheaper than peeking ahead.
                let cursor = match last {
                    Some(k) => Some(self.cursors()?.encode(context, &k)),
                    None => None,
                };
                return Ok((items, cursor));
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok((items, None)),
            }
        }
        let cursor = match start {
            Some(k) => Some(self.cursors()?.encode(context, &k)),
            None => None,
        };
        Ok((items, cursor))
    }
}

/// Attribute value shorthands for code that builds items by hand.
pub mod attr {
    use aws_sdk_dynamodb::types::AttributeValue;

    pub fn s(value: impl Into<String>) -> AttributeValue {
        AttributeValue::S(value.into())
    }

    pub fn n(value: i64) -> AttributeValue {
        AttributeValue::N(value.to_string())
    }
}

pub(crate) use attr::{n, s};

/// Narrows a Query to items whose attribute equals each given value (absent
/// values filter nothing), ANDed with any `extra` terms whose placeholders
/// the caller has bound. Every list filter goes through here.
pub(crate) fn filter_equal(
    mut query: QueryFluentBuilder,
    filters: &[(&str, Option<AttributeValue>)],
    extra: &[&str],
) -> QueryFluentBuilder {
    let mut terms: Vec<String> = Vec::new();
    for (name, value) in filters {
        if let Some(v) = value {
            terms.push(format!("#{name} = :{name}"));
            query = query
                .expression_attribute_names(format!("#{name}"), *name)
                .expression_attribute_values(format!(":{name}"), v.clone());
        }
    }
    terms.extend(extra.iter().map(|t| (*t).to_owned()));
    if terms.is_empty() { query } else { query.filter_expression(terms.join(" AND ")) }
}

/// How the UUIDv7s made in the millisecond `at` begin: a UUIDv7 starts with
/// its 48-bit millisecond timestamp, so a time range over keys ending in such
/// ids is a key range.
pub(crate) fn uuid7_prefix_at(at: chrono::DateTime<chrono::Utc>) -> String {
    let ms = at.timestamp_millis().max(0) as u64;
    format!("{:08x}-{:04x}", ms >> 16, ms & 0xffff)
}

pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, AppError> {
    serde_dynamo::from_item(item).map_err(|e| AppError::internal(anyhow::anyhow!("corrupt item: {e}")))
}

/// Decodes the items a list read found, skipping any that does not decode:
/// one bad item (written by an older version, or by hand) must not turn
/// every page it lands on into a 500 for good. Each skipped item is logged
/// with its key so it can be found and repaired. Single-item reads stay
/// strict ([`from_item`]): there the caller asked for that very item.
pub(crate) fn decode_listed<T: DeserializeOwned>(items: impl IntoIterator<Item = Item>) -> Vec<T> {
    items
        .into_iter()
        .filter_map(|item| {
            let key = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let (pk, sk) = (key("PK"), key("SK"));
            match serde_dynamo::from_item(item) {
                Ok(value) => Some(value),
                Err(error) => {
                    tracing::warn!(pk, sk, %error, "skipped a listed item that does not decode");
                    None
                }
            }
        })
        .collect()
}

pub(crate) fn to_item<T: serde::Serialize>(value: &T) -> Result<Item, AppError> {
    serde_dynamo::to_item(value).map_err(|e| AppError::internal(anyhow::anyhow!("serialising item: {e}")))
}

pub fn to_attribute(value: &serde_json::Value) -> Result<AttributeValue, AppError> {
    serde_dynamo::to_attribute_value(value)
        .map_err(|e| AppError::internal(anyhow::anyhow!("serialising attribute: {e}")))
}

pub(crate) fn number_attr(item: &Item, name: &str) -> i64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// True when a single-item write (PutItem, UpdateItem, DeleteItem) was
/// refused by its ConditionExpression.
pub(crate) fn condition_failed<E, R>(err: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

/// The key of a platform item (outside every tenant's partition).
pub(crate) fn platform_key(pk: &str, sk: impl Into<String>) -> Item {
    HashMap::from([("PK".into(), attr::s(pk)), ("SK".into(), attr::s(sk))])
}

/// The key of a tenant's item: its partition and `sk`.
pub(crate) fn item_key(scope: &crate::auth::TenantScope, sk: impl Into<String>) -> Item {
    HashMap::from([("PK".into(), attr::s(scope.pk())), ("SK".into(), attr::s(sk))])
}

/// A conditional write's result as "did it apply": its condition failing
/// is `false`, any other failure an error.
pub(crate) fn applied<T, E, R>(result: Result<T, SdkError<E, R>>) -> AppResult<bool>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if condition_failed(&err) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Thing {
        name: String,
        size: i64,
    }

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn a_listed_item_that_does_not_decode_is_skipped_and_the_rest_kept() {
        let items = vec![
            item(&[("PK", s("T#1#")), ("SK", s("THING#1")), ("name", s("a")), ("size", n(1))]),
            item(&[("PK", s("T#1#")), ("SK", s("THING#2")), ("name", n(7))]),
            item(&[("PK", s("T#1#")), ("SK", s("THING#3")), ("name", s("c")), ("size", n(3))]),
        ];
        let things: Vec<Thing> = decode_listed(items);
        assert_eq!(things, [Thing { name: "a".into(), size: 1 }, Thing { name: "c".into(), size: 3 }]);
    }
}

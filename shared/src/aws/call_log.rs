//! `AWS_CALL_LOG=<path>`: one JSON line per AWS call, naming the function it
//! was made for and the resources it touched, so that the registry test
//! (tests/registry.rs) can check every function's IAM policy in
//! template.yaml against what its code really calls. Off (no interceptor at
//! all) unless the variable is set; it never is in AWS.
//!
//! The function is the template's logical id (`CustomersFunction`), held in a
//! task-local set by [`in_function`]: the local server wraps each route group
//! and each worker's batch in it. A call made outside any function (test
//! code, seeding, the pollers that stand in for Lambda's event source
//! mapping) is not logged. Under Lambda, `AWS_LAMBDA_FUNCTION_NAME` names it.
//!
//! A line: `{"function":"TryonsFunction","service":"dynamodb","operation":"Query",
//! "resources":[{"table":"t","index":"GSI1"}]}`. Resources by service:
//! DynamoDB `table` (+ `index`; a transaction's items each with their `action`),
//! S3 `bucket` + `key` (or `prefix` for a listing), SQS `queue_url`,
//! EventBridge `bus`, SES v2 `from` (the sender address), Step Functions
//! `state_machine` (StartExecution, DescribeStateMachine) or `execution` (Stop/DescribeExecution)
//! ARN; Scheduler the schedule's `group` and `name` (and the `role` a
//! create or an update passes); SendTask* name no resource (IAM has none narrower than `*` for them).

use std::{
    fs::File,
    future::Future,
    io::Write,
    sync::{Arc, Mutex},
};

use aws_sdk_dynamodb::config::ConfigBag;
use aws_smithy_runtime_api::{
    box_error::BoxError,
    client::{
        interceptors::{Intercept, context::BeforeSerializationInterceptorContextRef},
        orchestrator::Metadata,
        runtime_components::RuntimeComponents,
    },
};
use serde_json::{Value, json};

/// The variable that turns the log on and names its file (appended to).
pub const ENV: &str = "AWS_CALL_LOG";

tokio::task_local! {
    static CURRENT_FUNCTION: Option<&'static str>;
}

/// Runs `future` as the work of `function` (a template logical id).
pub async fn in_function<F: Future>(function: &'static str, future: F) -> F::Output {
    CURRENT_FUNCTION.scope(Some(function), future).await
}

/// Keeps the current function for work moved onto its own task.
pub fn carry<F: Future>(future: F) -> impl Future<Output = F::Output> {
    CURRENT_FUNCTION.scope(CURRENT_FUNCTION.try_with(|f| *f).ok().flatten(), future)
}

/// The function the running code works for, if any.
pub fn current_function() -> Option<String> {
    CURRENT_FUNCTION
        .try_with(|f| *f)
        .ok()
        .flatten()
        .map(str::to_owned)
        .or_else(|| std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok())
}

/// The interceptor; cheap to clone (one shared file handle).
#[derive(Debug, Clone)]
pub struct CallLog {
    file: Arc<Mutex<File>>,
    /// Calls made with assumed credentials (`aws::tenant_data`): the role
    /// they act as and the tenant its session is tagged with.
    principal: Option<(&'static str, uuid::Uuid)>,
}

impl CallLog {
    /// The log named by [`ENV`], or `None` when it is unset (or cannot be opened,
    /// which is said on stderr: the check that reads it will then fail).
    pub fn from_env() -> Option<Self> {
        let path = std::env::var_os(ENV).filter(|p| !p.is_empty())?;
        match std::fs::OpenOptions::new().create(true).append(true).open(&path) {
            Ok(file) => Some(Self { file: Arc::new(Mutex::new(file)), principal: None }),
            Err(err) => {
                eprintln!("{ENV}: cannot open {}: {err}", path.to_string_lossy());
                None
            }
        }
    }

    /// This log for a client acting as `role` for `tenant`: its lines name
    /// both, and a DynamoDB line the partition keys it asked for (the
    /// registry check evaluates the role's `dynamodb:LeadingKeys` condition
    /// against them).
    pub fn as_principal(&self, role: &'static str, tenant: uuid::Uuid) -> Self {
        Self { file: self.file.clone(), principal: Some((role, tenant)) }
    }

    fn write(&self, line: &Value) {
        let mut text = line.to_string();
        text.push('\n');
        // One write per line on an O_APPEND file: lines of concurrent
        // processes (the suite and a second server) never interleave.
        if let Ok(mut file) = self.file.lock() {
            let _ = file.write_all(text.as_bytes());
        }
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    // Before serialisation: once per operation (not per retry), and presigned
    // requests pass here too (a presigned URL acts with the signer's rights).
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(function) = current_function() else {
            return Ok(());
        };
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let input = context.input();
        // The SDK names services `DynamoDB`, `S3`, `SQS`, `EventBridge`.
        let service = metadata.service().to_ascii_lowercase();
        let resources = match service.as_str() {
            "dynamodb" => dynamodb_resources(input),
            "s3" => s3_resources(input),
            "sqs" => sqs_resources(input),
            "eventbridge" => eventbridge_resources(input),
            "sesv2" => ses_resources(input),
            "sfn" => sfn_resources(input),
            "scheduler" => scheduler_resources(input),
            "sts" => sts_resources(input),
            _ => Vec::new(),
        };
        let mut line = json!({
            "function": function,
            "service": service,
            "operation": metadata.name(),
            "resources": resources,
        });
        if let Some((role, tenant)) = self.principal {
            line["role"] = json!(role);
            line["tenant"] = json!(tenant);
            if service == "dynamodb" {
                line["leading_keys"] = json!(dynamodb_leading_keys(input));
            }
        }
        self.write(&line);
        Ok(())
    }
}

type Input = aws_smithy_runtime_api::client::interceptors::context::Input;

fn sts_resources(input: &Input) -> Vec<Value> {
    use aws_sdk_sts::operation::assume_role::AssumeRoleInput;
    let Some(i) = input.downcast_ref::<AssumeRoleInput>() else { return Vec::new() };
    let tags: serde_json::Map<String, Value> =
        i.tags().iter().map(|t| (t.key().to_owned(), json!(t.value()))).collect();
    vec![json!({ "role": i.role_arn(), "tags": tags })]
}

/// The partition key values a read names (what IAM calls
/// `dynamodb:LeadingKeys`): a GetItem's and a BatchGetItem's keys' `PK`,
/// a Query's partition key equality (`PK = :v`, `GSI1PK = :v`, or a `#name`
/// standing for one). A Scan names none.
fn dynamodb_leading_keys(input: &Input) -> Vec<String> {
    use aws_sdk_dynamodb::{
        operation::{batch_get_item::BatchGetItemInput, get_item::GetItemInput, query::QueryInput},
        types::AttributeValue,
    };
    let pk =
        |key: &std::collections::HashMap<String, AttributeValue>| key.get("PK").and_then(|v| v.as_s().ok()).cloned();
    if let Some(i) = input.downcast_ref::<GetItemInput>() {
        return i.key().and_then(pk).into_iter().collect();
    }
    if let Some(i) = input.downcast_ref::<BatchGetItemInput>() {
        return i
            .request_items()
            .into_iter()
            .flat_map(|items| items.values())
            .flat_map(|keys_and_attributes| keys_and_attributes.keys())
            .filter_map(pk)
            .collect();
    }
    if let Some(i) = input.downcast_ref::<QueryInput>() {
        let names = i.expression_attribute_names();
        let values = i.expression_attribute_values();
        let partition_attribute = if i.index_name().is_some_and(|ix| ix == "GSI1") {
            "GSI1PK"
        } else if i.index_name().is_some_and(|ix| ix == "GSI2") {
            "GSI2PK"
        } else {
            "PK"
        };
        return i
            .key_condition_expression()
            .unwrap_or_default()
            .split(" AND ")
            .filter_map(|clause| {
                let (lhs, rhs) = clause.trim().trim_matches(['(', ')']).split_once('=')?;
                let lhs = lhs.trim();
                let attribute =
                    if lhs.starts_with('#') { names.and_then(|n| n.get(lhs)).map(String::as_str)? } else { lhs };
                (attribute == partition_attribute).then_some(())?;
                values.and_then(|v| v.get(rhs.trim())).and_then(|v| v.as_s().ok()).cloned()
            })
            .collect();
    }
    Vec::new()
}

fn table(table: Option<&str>, index: Option<&str>) -> Vec<Value> {
    vec![json!({ "table": table, "index": index })]
}

fn dynamodb_resources(input: &Input) -> Vec<Value> {
    use aws_sdk_dynamodb::operation::{
        batch_get_item::BatchGetItemInput, batch_write_item::BatchWriteItemInput, delete_item::DeleteItemInput,
        get_item::GetItemInput, put_item::PutItemInput, query::QueryInput, scan::ScanInput,
        transact_get_items::TransactGetItemsInput, transact_write_items::TransactWriteItemsInput,
        update_item::UpdateItemInput,
    };
    if let Some(i) = input.downcast_ref::<GetItemInput>() {
        return table(i.table_name(), None);
    }
    if let Some(i) = input.downcast_ref::<PutItemInput>() {
        return table(i.table_name(), None);
    }
    if let Some(i) = input.downcast_ref::<UpdateItemInput>() {
        return table(i.table_name(), None);
    }
    if let Some(i) = input.downcast_ref::<DeleteItemInput>() {
        return table(i.table_name(), None);
    }
    if let Some(i) = input.downcast_ref::<QueryInput>() {
        return table(i.table_name(), i.index_name());
    }
    if let Some(i) = input.downcast_ref::<ScanInput>() {
        return table(i.table_name(), i.index_name());
    }
    if let Some(i) = input.downcast_ref::<TransactWriteItemsInput>() {
        // IAM checks each item's own action on its table.
        return i
            .transact_items()
            .iter()
            .filter_map(|item| {
                let (action, table) = if let Some(p) = item.put() {
                    ("PutItem", p.table_name())
                } else if let Some(u) = item.update() {
                    ("UpdateItem", u.table_name())
                } else if let Some(d) = item.delete() {
                    ("DeleteItem", d.table_name())
                } else {
                    ("ConditionCheckItem", item.condition_check()?.table_name())
                };
                Some(json!({ "action": action, "table": table }))
            })
            .collect();
    }
    if let Some(i) = input.downcast_ref::<TransactGetItemsInput>() {
        return i
            .transact_items()
            .iter()
            .filter_map(|item| Some(json!({ "action": "GetItem", "table": item.get()?.table_name() })))
            .collect();
    }
    if let Some(i) = input.downcast_ref::<BatchGetItemInput>() {
        let tables = i.request_items().into_iter().flat_map(|items| items.keys());
        return tables.map(|t| json!({ "action": "BatchGetItem", "table": t })).collect();
    }
    if let Some(i) = input.downcast_ref::<BatchWriteItemInput>() {
        let tables = i.request_items().into_iter().flat_map(|items| items.keys());
        return tables.map(|t| json!({ "action": "BatchWriteItem", "table": t })).collect();
    }
    Vec::new()
}

fn object(bucket: Option<&str>, key: Option<&str>) -> Vec<Value> {
    vec![json!({ "bucket": bucket, "key": key })]
}

fn s3_resources(input: &Input) -> Vec<Value> {
    use aws_sdk_s3::operation::{
        delete_object::DeleteObjectInput, delete_objects::DeleteObjectsInput, get_object::GetObjectInput,
        head_object::HeadObjectInput, list_objects_v2::ListObjectsV2Input, put_object::PutObjectInput,
    };
    if let Some(i) = input.downcast_ref::<PutObjectInput>() {
        // Tags on the put need s3:PutObjectTagging as well.
        if i.tagging().is_some() {
            return vec![json!({ "bucket": i.bucket(), "key": i.key(), "tagging": true })];
        }
        return object(i.bucket(), i.key());
    }
    if let Some(i) = input.downcast_ref::<GetObjectInput>() {
        return object(i.bucket(), i.key());
    }
    if let Some(i) = input.downcast_ref::<HeadObjectInput>() {
        return object(i.bucket(), i.key());
    }
    if let Some(i) = input.downcast_ref::<DeleteObjectInput>() {
        return object(i.bucket(), i.key());
    }
    if let Some(i) = input.downcast_ref::<DeleteObjectsInput>() {
        let keys = i.delete().map(|d| d.objects()).unwrap_or_default();
        return keys.iter().map(|o| json!({ "bucket": i.bucket(), "key": o.key() })).collect();
    }
    if let Some(i) = input.downcast_ref::<ListObjectsV2Input>() {
        return vec![json!({ "bucket": i.bucket(), "prefix": i.prefix().unwrap_or_default() })];
    }
    if let Some(i) = input.downcast_ref::<aws_sdk_s3::operation::head_bucket::HeadBucketInput>() {
        return vec![json!({ "bucket": i.bucket() })];
    }
    Vec::new()
}

fn sfn_resources(input: &Input) -> Vec<Value> {
    use aws_sdk_sfn::operation::{
        describe_execution::DescribeExecutionInput, start_execution::StartExecutionInput,
        stop_execution::StopExecutionInput,
    };
    if let Some(i) = input.downcast_ref::<StartExecutionInput>() {
        return vec![json!({ "state_machine": i.state_machine_arn() })];
    }
    if let Some(i) = input.downcast_ref::<StopExecutionInput>() {
        return vec![json!({ "execution": i.execution_arn() })];
    }
    if let Some(i) = input.downcast_ref::<DescribeExecutionInput>() {
        return vec![json!({ "execution": i.execution_arn() })];
    }
    if let Some(i) = input.downcast_ref::<aws_sdk_sfn::operation::describe_state_machine::DescribeStateMachineInput>() {
        return vec![json!({ "state_machine": i.state_machine_arn() })];
    }
    Vec::new()
}

/// The schedule (group and name), and the role a create or an update
/// passes to Scheduler (`iam:PassRole`).
fn scheduler_resources(input: &Input) -> Vec<Value> {
    use aws_sdk_scheduler::operation::{
        create_schedule::CreateScheduleInput, delete_schedule::DeleteScheduleInput, get_schedule::GetScheduleInput,
        update_schedule::UpdateScheduleInput,
    };
    let schedule = |group: Option<&str>, name: Option<&str>, role: Option<&str>| {
        vec![json!({ "group": group.unwrap_or("default"), "name": name, "role": role })]
    };
    if let Some(i) = input.downcast_ref::<CreateScheduleInput>() {
        return schedule(i.group_name(), i.name(), i.target().map(|t| t.role_arn()));
    }
    if let Some(i) = input.downcast_ref::<UpdateScheduleInput>() {
        return schedule(i.group_name(), i.name(), i.target().map(|t| t.role_arn()));
    }
    if let Some(i) = input.downcast_ref::<DeleteScheduleInput>() {
        return schedule(i.group_name(), i.name(), None);
    }
    if let Some(i) = input.downcast_ref::<GetScheduleInput>() {
        return schedule(i.group_name(), i.name(), None);
    }
    Vec::new()
}

fn sqs_resources(input: &Input) -> Vec<Value> {
    use aws_sdk_sqs::operation::{
        change_message_visibility::ChangeMessageVisibilityInput, delete_message::DeleteMessageInput,
        delete_message_batch::DeleteMessageBatchInput, receive_message::ReceiveMessageInput,
        send_message::SendMessageInput, send_message_batch::SendMessageBatchInput,
    };
    let url = if let Some(i) = input.downcast_ref::<SendMessageInput>() {
        i.queue_url()
    } else if let Some(i) = input.downcast_ref::<SendMessageBatchInput>() {
        i.queue_url()
    } else if let Some(i) = input.downcast_ref::<ReceiveMessageInput>() {
        i.queue_url()
    } else if let Some(i) = input.downcast_ref::<DeleteMessageInput>() {
        i.queue_url()
    } else if let Some(i) = input.downcast_ref::<DeleteMessageBatchInput>() {
        i.queue_url()
    } else if let Some(i) = input.downcast_ref::<ChangeMessageVisibilityInput>() {
        i.queue_url()
    } else if let Some(i) =
        input.downcast_ref::<aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesInput>()
    {
        i.queue_url()
    } else {
        return Vec::new();
    };
    vec![json!({ "queue_url": url })]
}

fn eventbridge_resources(input: &Input) -> Vec<Value> {
    use aws_sdk_eventbridge::operation::describe_event_bus::DescribeEventBusInput;
    if let Some(i) = input.downcast_ref::<DescribeEventBusInput>() {
        return vec![json!({ "bus": i.name().unwrap_or("default") })];
    }
    let Some(i) = input.downcast_ref::<aws_sdk_eventbridge::operation::put_events::PutEventsInput>() else {
        return Vec::new();
    };
    let mut buses: Vec<&str> = i.entries().iter().map(|e| e.event_bus_name().unwrap_or("default")).collect();
    buses.sort_unstable();
    buses.dedup();
    buses.into_iter().map(|bus| json!({ "bus": bus })).collect()
}

fn ses_resources(input: &Input) -> Vec<Value> {
    use aws_sdk_sesv2::operation::send_email::SendEmailInput;
    match input.downcast_ref::<SendEmailInput>() {
        Some(i) => vec![json!({ "from": i.from_email_address() })],
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_current_function_follows_the_task_and_work_carried_off_it() {
        assert_eq!(CURRENT_FUNCTION.try_with(|f| *f).ok().flatten(), None);
        let seen = in_function("CustomersFunction", async {
            let spawned = tokio::spawn(carry(async { current_function() }));
            (current_function(), spawned.await.expect("task"))
        })
        .await;
        assert_eq!(seen, (Some("CustomersFunction".to_owned()), Some("CustomersFunction".to_owned())));
        let lost = in_function("CustomersFunction", async { tokio::spawn(async { current_function() }).await })
            .await
            .expect("task");
        assert_eq!(lost, std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok());
    }
}

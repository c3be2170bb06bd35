//! Tenant schedules in EventBridge Scheduler: one schedule per scheduled
//! sync connection or workflow, in the tenants' schedule group, sending
//! its [`ScheduledFiring`] to the worker's queue through the scheduler
//! role. What is scheduled when is `domain::schedule`; this is the calls.
//!
//! The function's environment names where its schedules go:
//! `TENANT_SCHEDULE_GROUP`, `TENANT_SCHEDULER_ROLE_ARN` (the role Scheduler
//! sends with; the function may only pass that one), and per kind
//! (`SYNC`, `WORKFLOW`) `<KIND>_SCHEDULE_TARGET_ARN` (the worker's queue)
//! and `<KIND>_SCHEDULE_DLQ_ARN` (where a firing Scheduler could not
//! deliver lands). Read at each call, so a function that never schedules
//! needs none of them.

use anyhow::{Context, Result, anyhow};
use aws_sdk_scheduler::{
    error::{DisplayErrorContext, ProvideErrorMetadata},
    types::{DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, ScheduleState, Target},
};
use uuid::Uuid;

use crate::domain::schedule::{ScheduleTarget, ScheduledFiring, schedule_name};

/// A firing Scheduler cannot deliver is retried this long, then dead-lettered.
const MAX_EVENT_AGE_SECONDS: i32 = 3600;
const MAX_RETRY_ATTEMPTS: i32 = 10;

#[derive(Clone, Debug)]
pub struct TenantSchedules {
    client: crate::aws::SchedulerClient,
}

struct Place {
    group: String,
    role_arn: String,
    target_arn: String,
    dlq_arn: String,
}

fn var(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

impl Place {
    fn from_env(target: ScheduleTarget) -> Result<Self> {
        let kind = match target {
            ScheduleTarget::SyncConnection => "SYNC",
            ScheduleTarget::Workflow => "WORKFLOW",
        };
        Ok(Self {
            group: group()?,
            role_arn: var("TENANT_SCHEDULER_ROLE_ARN")?,
            target_arn: var(&format!("{kind}_SCHEDULE_TARGET_ARN"))?,
            dlq_arn: var(&format!("{kind}_SCHEDULE_DLQ_ARN"))?,
        })
    }
}

/// The tenants' schedule group.
pub fn group() -> Result<String> {
    var("TENANT_SCHEDULE_GROUP")
}

/// One schedule as it should be.
pub struct WantedSchedule<'a> {
    pub target: ScheduleTarget,
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub expression: &'a str,
    /// An inactive connection or workflow keeps its schedule, disabled.
    pub enabled: bool,
}

impl TenantSchedules {
    pub fn new(client: crate::aws::SchedulerClient) -> Self {
        Self { client }
    }

    /// Makes the schedule or changes it to `wanted`. `exists` says which to
    /// try first (the stored item had a schedule); the other follows when
    /// Scheduler says otherwise, so a half-done earlier call is finished.
    pub async fn put(&self, wanted: &WantedSchedule<'_>, exists: bool) -> Result<()> {
        let place = Place::from_env(wanted.target)?;
        if exists {
            match self.update(&place, wanted).await {
                Err(err) if is_code(&err, "ResourceNotFoundException") => self.create(&place, wanted).await,
                other => other,
            }
        } else {
            match self.create(&place, wanted).await {
                Err(err) if is_code(&err, "ConflictException") => self.update(&place, wanted).await,
                other => other,
            }
        }
        .map_err(|err| anyhow!("scheduling {}: {}", schedule_name(wanted.target, wanted.id), err.message))
    }

    /// Deletes the schedule; one that is already gone is fine.
    pub async fn remove(&self, target: ScheduleTarget, id: Uuid) -> Result<()> {
        let name = schedule_name(target, id);
        match self.client.client().delete_schedule().group_name(group()?).name(&name).send().await {
            Ok(_) => Ok(()),
            Err(err) if err.code() == Some("ResourceNotFoundException") => Ok(()),
            Err(err) => Err(anyhow!("deleting schedule {name}: {}", DisplayErrorContext(&err))),
        }
    }

    fn target(place: &Place, wanted: &WantedSchedule<'_>) -> Result<Target, CallError> {
        Target::builder()
            .arn(&place.target_arn)
            .role_arn(&place.role_arn)
            .input(ScheduledFiring::input(wanted.target, wanted.tenant_id, wanted.id, wanted.expression))
            .dead_letter_config(DeadLetterConfig::builder().arn(&place.dlq_arn).build())
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_event_age_in_seconds(MAX_EVENT_AGE_SECONDS)
                    .maximum_retry_attempts(MAX_RETRY_ATTEMPTS)
                    .build(),
            )
            .build()
            .map_err(|e| CallError { code: None, message: e.to_string() })
    }

    fn state(wanted: &WantedSchedule<'_>) -> ScheduleState {
        if wanted.enabled { ScheduleState::Enabled } else { ScheduleState::Disabled }
    }

    fn window() -> Result<FlexibleTimeWindow, CallError> {
        FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| CallError { code: None, message: e.to_string() })
    }

    async fn create(&self, place: &Place, wanted: &WantedSchedule<'_>) -> Result<(), CallError> {
        let call = self.client.client().create_schedule();
        send_schedule!(call, place, wanted)
    }

    async fn update(&self, place: &Place, wanted: &WantedSchedule<'_>) -> Result<(), CallError> {
        let call = self.client.client().update_schedule();
        send_schedule!(call, place, wanted)
    }
}

/// Create and update take the same whole schedule (two builder types).
macro_rules! send_schedule {
    ($call:ident, $place:ident, $wanted:ident) => {
        $call
            .group_name(&$place.group)
            .name(schedule_name($wanted.target, $wanted.id))
            .schedule_expression($wanted.expression)
            .schedule_expression_timezone("UTC")
            .flexible_time_window(TenantSchedules::window()?)
            .target(TenantSchedules::target($place, $wanted)?)
            .state(TenantSchedules::state($wanted))
            .send()
            .await
            .map(|_| ())
            .map_err(CallError::from_sdk)
    };
}
use send_schedule;

struct CallError {
    code: Option<String>,
    message: String,
}

impl CallError {
    fn from_sdk<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
        err: aws_sdk_scheduler::error::SdkError<E, R>,
    ) -> Self {
        CallError { code: err.code().map(str::to_owned), message: DisplayErrorContext(&err).to_string() }
    }
}

fn is_code(err: &CallError, code: &str) -> bool {
    err.code.as_deref() == Some(code)
}

/// A schedule as a stored item wants it: its expression and whether it is
/// enabled; `None` when the item has no schedule.
pub type Wanted = Option<(String, bool)>;

/// A stored item's schedule changing from `old` to `new` around the item's
/// write. The write is the truth; the schedule follows it in an order that
/// never leaves a stored schedule without its Scheduler schedule:
/// [`ScheduleChange::prepare`] makes or changes it before the write,
/// [`ScheduleChange::finish`] deletes one the item dropped after it, and
/// [`ScheduleChange::undo`] puts back the old one when the write failed.
/// What a crash between the two leaves (a schedule the item does not hold)
/// is found at its next firing, which the worker checks against the item.
pub struct ScheduleChange {
    pub target: ScheduleTarget,
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub old: Wanted,
    pub new: Wanted,
}

impl ScheduleChange {
    fn wanted<'a>(&self, which: &'a Wanted) -> Option<WantedSchedule<'a>> {
        which.as_ref().map(|(expression, enabled)| WantedSchedule {
            target: self.target,
            tenant_id: self.tenant_id,
            id: self.id,
            expression,
            enabled: *enabled,
        })
    }

    pub async fn prepare(&self, schedules: &TenantSchedules) -> Result<()> {
        match self.wanted(&self.new) {
            Some(new) if self.new != self.old => schedules.put(&new, self.old.is_some()).await,
            _ => Ok(()),
        }
    }

    /// After the write; a failure is logged, not answered: the item is
    /// written, and the worker deletes the schedule at its next firing.
    pub async fn finish(&self, schedules: &TenantSchedules) {
        if self.new.is_none()
            && self.old.is_some()
            && let Err(err) = schedules.remove(self.target, self.id).await
        {
            tracing::warn!(error = %err, "a schedule the item dropped is left; its next firing removes it");
        }
    }

    /// After a failed write: the schedule as the item still has it.
    pub async fn undo(&self, schedules: &TenantSchedules) {
        if self.new == self.old || self.new.is_none() {
            return;
        }
        let restored = match self.wanted(&self.old) {
            Some(old) => schedules.put(&old, true).await,
            None => schedules.remove(self.target, self.id).await,
        };
        if let Err(err) = restored {
            tracing::warn!(error = %err, "a schedule could not be put back; its next firing is checked against the item");
        }
    }
}

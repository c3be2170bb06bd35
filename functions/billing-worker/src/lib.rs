//! The billing worker, fed two ways:
//! - the table's stream ([`meter`]): API calls counted from the rate-limit
//!   writes, threshold alerts, low-balance alerts;
//! - the hourly job (EventBridge Scheduler -> `BillingJobsQueue`): each
//!   tenant's stored bytes sampled as `storage` gb_hours, and, in a new
//!   month, the previous period closed with a draft invoice per tenant that
//!   has a subscription or metered components.
//!
//! Every write is idempotent (a marker or a checkpoint in the same
//! transaction), so a redelivered batch or message changes nothing twice.

pub mod meter;

use anyhow::Context;
use aws_lambda_events::event::sqs::SqsMessage;
use chrono::{DateTime, Datelike, Duration, DurationRound, Timelike, Utc};
use futures::StreamExt;
use serde::Deserialize;
use shared::{
    audit::AuditContext,
    auth::{TenantScope, proofs::ScheduledJob},
    blobs::{Blobs, tenant_prefix},
    domain::metrics::{RANKING_WINDOW_DAYS, TenantActivity, rank_by_plan},
    store::Store,
};

pub struct BillingWorker {
    pub store: Store,
    pub blobs: Blobs,
}

/// The schedule's message (`template.yaml`, `BillingHourlySchedule`).
#[derive(Debug, Deserialize)]
struct Job {
    job: String,
    /// The run's time; absent, now. Lets an operator re-run a missed hour
    /// (the queue admits only the schedule's role and operators).
    #[serde(default)]
    at: Option<DateTime<Utc>>,
}

/// What one hourly run did.
#[derive(Debug, Default)]
pub struct HourlyRun {
    pub tenants: usize,
    pub storage_samples: usize,
    pub invoices_drafted: usize,
    /// Tenants ranked by the nightly analytics aggregate (the 00:00 run).
    pub tenants_ranked: usize,
}

/// Tenants visited at once: bounded so one run stays inside the function's
/// timeout without flooding the table.
const CONCURRENT_TENANTS: usize = 8;

impl shared::worker::Worker for BillingWorker {
    type Outcome = HourlyRun;

    async fn handle(&self, message: &SqsMessage) -> anyhow::Result<Self::Outcome> {
        let body = message.body.as_deref().unwrap_or_default();
        let job: Job = serde_json::from_str(body).context("a billing job message")?;
        anyhow::ensure!(job.job == "hourly", "unknown billing job {:?}", job.job);
        self.hourly(job.at.unwrap_or_else(Utc::now)).await
    }
}

impl BillingWorker {
    /// The hourly run at `at`: samples the hour that just ended, and closes
    /// the previous month once.
    pub async fn hourly(&self, at: DateTime<Utc>) -> anyhow::Result<HourlyRun> {
        let hour_start = at.duration_trunc(Duration::hours(1)).context("the run's hour")?;
        let sampled_hour = hour_start - Duration::hours(1);
        let month_start = hour_start
            .with_day(1)
            .and_then(|d| d.date_naive().and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc())
            .context("the month's start")?;
        let previous_period = shared::domain::billing::usage::period_of(month_start - Duration::days(1));
        // The run of 00:00 UTC is also the nightly analytics aggregate:
        // each tenant's rank among its plan's (the enterprise dashboard).
        let nightly = hour_start.hour() == 0;
        let window = shared::domain::metrics::days_ending(sampled_hour, RANKING_WINDOW_DAYS);
        let mut activity = Vec::new();
        let mut run = HourlyRun::default();
        let mut start = None;
        loop {
            let (ids, next) = self.store.tenant_ids_for_job(&ScheduledJob, start).await.map_err(|e| e.into_anyhow())?;
            let results: Vec<anyhow::Result<Visited>> = futures::stream::iter(ids)
                .map(|id| {
                    let scope = ScheduledJob::scope(id);
                    let previous_period = previous_period.clone();
                    let window = nightly.then_some(window.as_slice());
                    async move { self.visit(&scope, sampled_hour, &previous_period, window).await }
                })
                .buffer_unordered(CONCURRENT_TENANTS)
                .collect()
                .await;
            for result in results {
                let visited = result?;
                run.tenants += 1;
                run.storage_samples += usize::from(visited.sampled);
                run.invoices_drafted += usize::from(visited.drafted);
                activity.extend(visited.activity);
            }
            match next {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        if nightly {
            run.tenants_ranked = self.rank(activity, &shared::metrics::day_of(hour_start)).await?;
        }
        Ok(run)
    }

    /// Writes each tenant's rank among its plan's tenants.
    async fn rank(&self, activity: Vec<TenantActivity>, as_of: &str) -> anyhow::Result<usize> {
        let ranked = rank_by_plan(activity, as_of);
        let count = ranked.len();
        let store = &self.store;
        let written: Vec<anyhow::Result<()>> = futures::stream::iter(ranked)
            .map(|(tenant_id, rank)| async move {
                let scope = ScheduledJob::scope(tenant_id);
                store.put_tenant_rank(&scope, &rank).await.map_err(|e| e.into_anyhow())
            })
            .buffer_unordered(CONCURRENT_TENANTS)
            .collect()
            .await;
        written.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
        Ok(count)
    }

    async fn visit(
        &self,
        scope: &TenantScope,
        sampled_hour: DateTime<Utc>,
        previous_period: &str,
        ranking_window: Option<&[String]>,
    ) -> anyhow::Result<Visited> {
        let bytes = self.blobs.total_size(&tenant_prefix(scope)).await.map_err(|e| e.into_anyhow())?;
        let sampled =
            self.store.record_storage_sample(scope, sampled_hour, bytes).await.map_err(|e| e.into_anyhow())?;
        let drafted = self
            .store
            .close_period(scope, previous_period, &AuditContext::system("billing-period-close"))
            .await
            .map_err(|e| e.into_anyhow())?;
        let activity = match ranking_window {
            Some(days) => self.activity(scope, days).await?,
            None => None,
        };
        Ok(Visited { sampled, drafted, activity })
    }

    /// The tenant's plan and its distinct active users and requests over
    /// `days` (its rollups); `None` for a tenant that is gone.
    async fn activity(&self, scope: &TenantScope, days: &[String]) -> anyhow::Result<Option<TenantActivity>> {
        let Some((tenant, _)) = self.store.get_tenant(scope).await.map_err(|e| e.into_anyhow())? else {
            return Ok(None);
        };
        let rollups = self.store.tenant_rollups(scope, days).await.map_err(|e| e.into_anyhow())?;
        let mut total = shared::domain::metrics::Rollup::default();
        for (_, rollup) in &rollups {
            total.add(rollup);
        }
        Ok(Some(TenantActivity {
            tenant_id: scope.tenant_id(),
            plan: tenant.plan,
            active_users: total.active_users.len() as i64,
            requests: total.requests,
        }))
    }
}

/// What visiting one tenant did.
struct Visited {
    sampled: bool,
    drafted: bool,
    activity: Option<TenantActivity>,
}

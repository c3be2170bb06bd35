//! One function process, started the way Lambda starts it: the release binary,
//! a clean environment (the function's configuration plus Lambda's own
//! variables) and a Runtime API of its own.

use std::{
    fs::OpenOptions,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use axum::body::Bytes;
use tokio::sync::oneshot;

use crate::runtime_api::{Reply, RuntimeApi};

/// What Lambda is told about a function, and where its output goes.
#[derive(Clone)]
pub struct FunctionSpec {
    pub name: &'static str,
    pub binary: PathBuf,
    /// The function's configuration (template.yaml's variables) and AWS credentials.
    pub env: Vec<(String, String)>,
    /// stdout and stderr of every process of this function, appended.
    pub log: PathBuf,
    pub timeout: Duration,
}

pub struct Instance {
    child: Child,
    api: RuntimeApi,
    pid: u32,
    spawned_at: Instant,
    name: &'static str,
    log: PathBuf,
    timeout: Duration,
}

/// An invocation whose answer has not been awaited yet.
pub type Pending = oneshot::Receiver<Reply>;

impl Instance {
    /// Starts the process with `first` already queued, so its first `/next` is
    /// answered at once and the cold start is not inflated by the bench.
    pub async fn spawn(spec: &FunctionSpec, first: Bytes) -> Result<(Self, Pending)> {
        let api = RuntimeApi::start(spec.name).await?;
        let pending = api.enqueue(first)?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
            .with_context(|| format!("opening {}", spec.log.display()))?;
        let log_err = log.try_clone().context("duplicating the log file handle")?;
        let mut command = Command::new(&spec.binary);
        command
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", api.host_port())
            .env("AWS_LAMBDA_FUNCTION_NAME", spec.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", spec.name))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("bench/[$LATEST]{}", uuid::Uuid::new_v4().simple()))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let spawned_at = Instant::now();
        let child = command.spawn().with_context(|| format!("starting {}", spec.binary.display()))?;
        let pid = child.id();
        let instance =
            Self { child, api, pid, spawned_at, name: spec.name, log: spec.log.clone(), timeout: spec.timeout };
        Ok((instance, pending))
    }

    pub fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    /// When the runtime first asked for an event (its init was over).
    pub fn first_next(&self) -> Option<Instant> {
        self.api.first_next()
    }

    pub async fn invoke(&mut self, event: Bytes) -> Result<Reply> {
        let pending = self.api.enqueue(event)?;
        self.wait(pending).await
    }

    /// The answer, or why there is none (the process died, or the timeout).
    pub async fn wait(&mut self, pending: Pending) -> Result<Reply> {
        let child = &mut self.child;
        // Polled with std's `try_wait`: tokio's `process` feature would change
        // tokio's features for the whole workspace and rebuild everything on it.
        let exited = async move {
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Ok(status),
                    Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                    Err(err) => break Err(err),
                }
            }
        };
        tokio::select! {
            reply = pending => reply.context("the Runtime API dropped the invocation"),
            status = exited => {
                let status = status.context("waiting for the function process")?;
                let init = self.api.init_error().map(|e| format!("; init error: {e}")).unwrap_or_default();
                bail!("{} exited ({status}) before answering{init}; see {}", self.name, self.log.display())
            }
            () = tokio::time::sleep(self.timeout) => {
                bail!("{} did not answer within {:?}; see {}", self.name, self.timeout, self.log.display())
            }
        }
    }

    /// Peak resident set size so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        peak_rss_kib(self.pid)
    }

    /// CPU time the process's threads have run so far (the scheduler's own
    /// nanosecond count, `/proc/<pid>/task/*/schedstat`). Over many
    /// invocations, its growth per invocation is the function's own work,
    /// free of the wake-ups and loopback hops a latency includes.
    pub fn cpu_time(&self) -> Result<Duration> {
        let dir = format!("/proc/{}/task", self.pid);
        let mut total = 0u64;
        for task in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
            let path = task?.path().join("schedstat");
            // A thread that ended between the listing and the read ran no more.
            let Ok(stat) = std::fs::read_to_string(&path) else { continue };
            total += stat.split_whitespace().next().and_then(|ns| ns.parse::<u64>().ok()).unwrap_or(0);
        }
        Ok(Duration::from_nanos(total))
    }

    /// Kills the process, as Lambda does with an idle execution environment.
    pub fn stop(mut self) -> Result<()> {
        self.kill().with_context(|| format!("stopping {}", self.name))
    }

    fn kill(&mut self) -> std::io::Result<()> {
        if self.child.try_wait()?.is_none() {
            self.child.kill()?;
        }
        // Reaps it (returns at once after SIGKILL), so no zombie is left.
        self.child.wait().map(drop)
    }
}

impl Drop for Instance {
    /// An error path of the bench must not leave functions running.
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// A process's peak resident set size so far (VmHWM), in KiB.
pub fn peak_rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .with_context(|| format!("no VmHWM in {path}"))
}

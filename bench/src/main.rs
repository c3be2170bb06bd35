//! `bench`: runs each function's real release binary as Lambda would (a Runtime
//! API of our own, a clean environment) against the local AWS stack, and prints
//! per function: cold starts, warm latencies, AWS calls per request (through a
//! counting proxy in front of moto), peak RSS and binary size.
//!
//! Every figure that involves AWS includes moto: ~4.5 ms per call, one call at a
//! time (infra/moto_server.py holds a global lock). docs/performance.md says how
//! to read the tables; `scripts/bench.sh` builds everything and runs this.

mod events;
mod function;
mod proxy;
mod receiver;
mod report;
mod runtime_api;
mod template;

use std::{
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use axum::body::Bytes;
use serde_json::Value;
use uuid::Uuid;

use crate::{
    events::Samples,
    function::{FunctionSpec, Instance},
    proxy::{AwsEndpoint, Call},
    receiver::Receiver,
    report::{Cold, FunctionReport, Sample, Warm},
    runtime_api::Reply,
    template::Template,
};

const USAGE: &str = "\
usage: bench --env-file PATH [options]

Runs each function's release binary (the hello-world floor first, then auth ... compliance-worker,
see --only) under a local Lambda
Runtime API against the local stack described by the env file that
`infra/stack.sh up` prints, and prints markdown tables. Each replayed cold
start of a function is paired with a cold start of the floor, spawned just
before or just after it (alternately), and its ratio is taken to that floor.

options:
  --env-file PATH     the local stack's env file (required)
  --release-dir DIR   where the release binaries are ($CARGO_TARGET_DIR/release)
  --local-bin PATH    the local server binary, for `seed-admin` ($CARGO_TARGET_DIR/debug/local)
  --events-dir DIR    the sample events (<workspace>/events)
  --log-dir DIR       where the functions' output goes (<tmp>/saas-platform-bench)
  --spawns N          cold starts per function (20)
  --invocations M     timed warm invocations per request type (200)
  --timeout SECONDS   longest wait for one answer (30)
  --only F1,F2        measure only these (comma-separated names as in the summary table: floor,
                      auth, customers, ...; the setup still runs)
  --restart-stack     before each function, replace the env file's stack by a fresh one
                      (infra/stack.sh down + up with its LOCAL_DIR and port): every
                      function then starts from an empty table
  --env NAME=VALUE    an extra variable for every function (repeatable), for experiments
                      such as RUST_LOG=warn or MALLOC_TRIM_THRESHOLD_=131072
";

struct Options {
    env_file: PathBuf,
    release_dir: PathBuf,
    local_bin: PathBuf,
    events_dir: PathBuf,
    log_dir: PathBuf,
    spawns: usize,
    invocations: usize,
    timeout: Duration,
    extra_env: Vec<(String, String)>,
    only: Option<Vec<String>>,
    restart_stack: bool,
}

impl Options {
    fn parse() -> Result<Self> {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"), PathBuf::from);
        let mut options = Self {
            env_file: PathBuf::new(),
            release_dir: target.join("release"),
            local_bin: target.join("debug").join("local"),
            events_dir: events::default_dir(),
            log_dir: std::env::temp_dir().join("saas-platform-bench"),
            spawns: 20,
            invocations: 200,
            timeout: Duration::from_secs(30),
            extra_env: Vec::new(),
            only: None,
            restart_stack: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            if flag == "-h" || flag == "--help" {
                print!("{USAGE}");
                std::process::exit(0);
            }
            if flag == "--restart-stack" {
                options.restart_stack = true;
                continue;
            }
            let value = args.next().with_context(|| format!("{flag} needs a value\n\n{USAGE}"))?;
            let count = || value.parse::<usize>().with_context(|| format!("{flag}: not a number: {value}"));
            match flag.as_str() {
                "--env-file" => options.env_file = value.clone().into(),
                "--release-dir" => options.release_dir = value.clone().into(),
                "--local-bin" => options.local_bin = value.clone().into(),
                "--events-dir" => options.events_dir = value.clone().into(),
                "--log-dir" => options.log_dir = value.clone().into(),
                "--spawns" => options.spawns = count()?,
                "--invocations" => options.invocations = count()?,
                "--timeout" => options.timeout = Duration::from_secs(count()? as u64),
                "--only" => {
                    let names: Vec<String> = value.split(',').map(str::trim).map(str::to_owned).collect();
                    if let Some(unknown) = names.iter().find(|n| !FUNCTIONS.contains(&n.as_str())) {
                        bail!("--only: {unknown} is not one of {}", FUNCTIONS.join(", "));
                    }
                    options.only = Some(names);
                }
                "--env" => {
                    let (name, value) =
                        value.split_once('=').with_context(|| format!("--env {value}: not NAME=VALUE"))?;
                    options.extra_env.push((name.to_owned(), value.to_owned()));
                }
                _ => bail!("unknown option {flag}\n\n{USAGE}"),
            }
        }
        if options.env_file.as_os_str().is_empty() {
            bail!("--env-file is required\n\n{USAGE}");
        }
        // The provisioner's redeliveries replay tenants its cold starts activated.
        if options.spawns == 0 || options.invocations == 0 {
            bail!("--spawns and --invocations must be at least 1");
        }
        Ok(options)
    }
}

/// Reads `export NAME='value'` lines (docs/infra.md's env file contract).
fn read_env_file(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let assignment = line.strip_prefix("export ").unwrap_or(line);
            let (name, value) =
                assignment.split_once('=').with_context(|| format!("{}: not an assignment: {line}", path.display()))?;
            let value = match value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
                Some(quoted) => quoted.replace(r"'\''", "'"),
                None => value.to_owned(),
            };
            Ok((name.trim().to_owned(), value))
        })
        .collect()
}

/// The hello-world `lambda_http` binary (bench/floor): the cold start and
/// warm answer no function of ours can beat, measured in the same run.
const FLOOR: &str = "floor";

const FUNCTIONS: [&str; 27] = [
    FLOOR,
    "auth",
    "saml",
    "tenants",
    "api-keys",
    "users",
    "projects",
    "credits",
    "audit",
    "docs",
    "customers",
    "tryons",
    "webhooks",
    "integrations",
    "billing",
    "workflows",
    "admin",
    "ai",
    "tenant-provisioner",
    "tryon-worker",
    "webhook-dispatcher",
    "billing-worker",
    "integrations-worker",
    "workflows-worker",
    "ai-worker",
    "compliance",
    "compliance-worker",
];

/// The credentials and region Lambda gives every function.
const AWS_ENV: &[&str] = &["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];
/// Printed above the tables: what the two kinds of AWS-bound figure include.
const MOTO_NOTE: &str = "\
> **Two runs of every measurement.** Against moto: the bench's endpoint keeps the function's
> connections alive and forwards each call to moto on a connection of its own (moto closes them),
> one call at a time behind moto's global lock; moto's Python is most of each call's time.
> **Replayed**: a second run of the same events in fresh processes, each AWS call answered from
> what moto answered in the first run (matched by operation and body, else by position) at memory
> speed; any call without a recorded answer stops the bench. The replayed figures are the
> functions' own time: \"own time\" is latency minus the time waiting on AWS answers. DynamoDB
> in-region adds single-digit ms per call over a kept-alive TLS connection. Percentiles are
> nearest-rank.
";

/// What an answer must be for the measurement to count.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// An API Gateway answer with this status code.
    Http(u16),
    /// An SQS batch answer without failures that activated the tenant.
    Activates,
    /// The same for a tenant that was already active (a redelivery).
    AlreadyActive,
    /// An SQS batch answer, whatever it reports (the job named nothing).
    BatchAnswered,
    /// An SQS batch answer without a failed item.
    BatchOk,
}

/// One kind of request in a warm run: one untimed warm-up, then the timed ones.
struct Kind {
    label: String,
    expect: Expect,
    warmup: Value,
    events: Vec<Value>,
}

struct Account {
    email: String,
    password: String,
}

impl Account {
    fn new(role: &str, run: &str) -> Self {
        Self {
            email: format!("bench-{role}-{run}@bench.example"),
            password: format!("bench-{}", Uuid::new_v4().simple()),
        }
    }
}

struct Bench {
    options: Options,
    /// moto's URL, from the env file.
    endpoint: String,
    /// The stack's state dir (where the env file and moto.pid live) and port,
    /// for `--restart-stack`.
    local_dir: PathBuf,
    moto_port: String,
    /// The env file's variables, re-read after each `--restart-stack`.
    stack_env: Mutex<Vec<(String, String)>>,
    template: Template,
    proxy: AwsEndpoint,
    samples: Samples,
    /// Makes this run's emails and slugs unique in a reused stack.
    run: String,
    /// The webhook endpoint of the dispatcher's throughput run.
    receiver: Receiver,
}

// One thread is plenty for a driver that waits on one invocation at a time,
// and leaves the other core to the function and moto.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let options = Options::parse()?;
    let stack_env = read_env_file(&options.env_file)?;
    let endpoint = stack_env
        .iter()
        .find(|(name, _)| name == "AWS_ENDPOINT_URL")
        .map(|(_, value)| value.clone())
        .context("the env file has no AWS_ENDPOINT_URL")?;
    let upstream = endpoint.strip_prefix("http://").unwrap_or(&endpoint).trim_end_matches('/').to_owned();
    std::fs::create_dir_all(&options.log_dir).with_context(|| format!("creating {}", options.log_dir.display()))?;
    let moto_port = upstream.rsplit_once(':').map(|(_, port)| port.to_owned()).unwrap_or_default();
    // The stack script keeps the env file in its state dir (LOCAL_DIR).
    let local_dir = options.env_file.parent().map(Path::to_path_buf).unwrap_or_default();
    let bench = Bench {
        proxy: AwsEndpoint::start(upstream).await?,
        template: Template::load(&Template::default_path())?,
        endpoint: endpoint.clone(),
        local_dir,
        moto_port,
        samples: Samples::new(options.events_dir.clone()),
        run: Uuid::new_v4().simple().to_string().chars().take(8).collect(),
        receiver: Receiver::start().await?,
        stack_env: Mutex::new(stack_env),
        options,
    };
    let started = chrono::Utc::now();
    let load_before = load_average();
    let reports = bench.run_all().await?;

    println!("# Function bench, {}\n", started.format("%Y-%m-%d %H:%M UTC"));
    println!(
        "- machine: {}, {} cores ({}), load average before: {load_before}, after: {}",
        std::env::consts::ARCH,
        std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model(),
        load_average()
    );
    println!(
        "- stack: moto at {endpoint}, reached through the bench's AWS endpoint (forwarding, recording, replaying); {}",
        if bench.options.restart_stack {
            "a fresh stack (empty table) for each function (--restart-stack)"
        } else {
            "one stack for the whole run (later functions see a fuller table)"
        }
    );
    println!(
        "- cold starts: {} spawns per function; warm: one process per function, one untimed warm-up per request \
         type, then {} timed invocations per request type, one at a time",
        bench.options.spawns, bench.options.invocations
    );
    println!("- binaries: {}", bench.options.release_dir.display());
    if let Some(only) = &bench.options.only {
        println!("- measured: {} only (--only)", only.join(", "));
    }
    if !bench.options.extra_env.is_empty() {
        let extra: Vec<String> = bench.options.extra_env.iter().map(|(k, v)| format!("`{k}={v}`")).collect();
        println!("- extra function environment (--env): {}", extra.join(", "));
    }
    println!("- function output (JSON logs, RUST_LOG from the env file): {}\n", bench.options.log_dir.display());
    println!("{MOTO_NOTE}");
    println!("## Summary\n");
    println!("{}", report::summary(&reports, FLOOR));
    for report in &reports {
        for note in &report.notes {
            println!("- **{}**: {note}", report.name);
        }
    }
    println!();
    println!("## Each function\n");
    for report in &reports {
        println!("{}", report::function_tables(report, &format!("{}-linux", std::env::consts::ARCH)));
    }
    Ok(())
}

impl Bench {
    /// Each wanted function in turn, on a fresh stack each with `--restart-stack`.
    async fn run_all(&self) -> Result<Vec<FunctionReport>> {
        let user = Account::new("user", &self.run);
        let admin = Account::new("admin", &self.run);
        let mut reports = Vec::new();
        let mut set_up = false;
        // Tenants the tenants run created on the current stack, all still provisioning.
        let mut created: Vec<(Uuid, String)> = Vec::new();
        for function in FUNCTIONS.into_iter().filter(|f| self.wants(f)) {
            if self.options.restart_stack {
                self.fresh_stack().await?;
                (set_up, created) = (false, Vec::new());
            }
            // Made after any restart: a fresh stack has fresh secret ARNs.
            let auth = self.spec("auth")?;
            let tenants = self.spec("tenants")?;
            let api_keys = self.spec("api-keys")?;
            let provisioner = self.spec("tenant-provisioner")?;
            if !set_up && function != FLOOR {
                self.set_up(&auth, &tenants, &user, &admin).await?;
                set_up = true;
            }
            let mut report = match function {
                FLOOR => {
                    let spec = self.spec(FLOOR)?;
                    let label = "GET / (hello world)";
                    let gets = (0..self.options.spawns).map(|_| self.samples.unauthenticated_get("/"));
                    let (cold, _) = self.cold(&spec, label, Expect::Http(200), gets.collect::<Result<_>>()?).await?;
                    let kinds = vec![self.kind(label, Expect::Http(200), || self.samples.unauthenticated_get("/"))?];
                    let (warm, _) = self.warm(&spec, kinds).await?;
                    self.report(&spec, cold, warm)?
                }
                "auth" => self.bench_auth(&auth, &user).await?,
                // The ACS with a RelayState that names no sign-in: its cold
                // start (libxml2 and libxmlsec1 loaded and initialised) and
                // the request's front part, one GetItem; verifying a real
                // response needs a sign-in state and an IdP's signature.
                "saml" => {
                    let spec = self.spec("saml")?;
                    let label = "POST /v1/auth/saml/{tenant}/{connection}/acs (unknown RelayState)";
                    let posts = (0..self.options.spawns).map(|_| self.samples.saml_acs());
                    let (cold, _) = self.cold(&spec, label, Expect::Http(401), posts.collect::<Result<_>>()?).await?;
                    let warm_kinds = vec![self.kind(label, Expect::Http(401), || self.samples.saml_acs())?];
                    let (warm, _) = self.warm(&spec, warm_kinds).await?;
                    self.report(&spec, cold, warm)?
                }
                "tenants" => {
                    let (user_token, admin_token) = self.sign_in(&auth, &user, &admin).await?;
                    let key = self.api_key(&api_keys, &user_token).await?;
                    let (report, made) = self.bench_tenants(&tenants, &user_token, &admin_token, &key).await?;
                    created = made;
                    report
                }
                "api-keys" => {
                    let (user_token, _) = self.sign_in(&auth, &user, &admin).await?;
                    self.bench_api_keys(&api_keys, &user_token).await?
                }
                // The bench user owns its tenant (an admin): every list is its to read.
                "customers" | "tryons" | "webhooks" | "users" | "projects" | "credits" | "audit" | "workflows"
                | "ai" | "compliance" | "integrations" => {
                    let (user_token, _) = self.sign_in(&auth, &user, &admin).await?;
                    let path = match function {
                        "audit" => "/v1/audit/logs",
                        "ai" => "/v1/ai/generations",
                        "compliance" => "/v1/compliance/exports",
                        // The signed inbound path needs a provider and its
                        // sealed secret, which this bench does not make yet.
                        "integrations" => "/v1/integrations/providers",
                        other => &format!("/v1/{other}"),
                    };
                    self.bench_list(&self.spec(function)?, path, &user_token).await?
                }
                // Unauthenticated and storeless: the OpenAPI document, as a
                // browser or `curl --compressed` asks for it (gzip), and plain.
                "docs" => {
                    let spec = self.spec("docs")?;
                    let gzip = || self.samples.unauthenticated_get_accepting("/v1/openapi.json", "gzip, deflate, br");
                    let plain = || self.samples.unauthenticated_get("/v1/openapi.json");
                    let label = "GET /v1/openapi.json (accept-encoding: gzip)";
                    let gets = (0..self.options.spawns).map(|_| gzip());
                    let (cold, _) = self.cold(&spec, label, Expect::Http(200), gets.collect::<Result<_>>()?).await?;
                    let kinds = vec![
                        self.kind(label, Expect::Http(200), gzip)?,
                        self.kind("GET /v1/openapi.json (no accept-encoding)", Expect::Http(200), plain)?,
                    ];
                    let (warm, _) = self.warm(&spec, kinds).await?;
                    self.report(&spec, cold, warm)?
                }
                "tryon-worker" => {
                    let spec = self.spec("tryon-worker")?;
                    self.bench_jobs(&spec, "SQS tryon.item.requested (no such item)", || self.samples.tryon_job())
                        .await?
                }
                "webhook-dispatcher" => {
                    let spec = self.spec("webhook-dispatcher")?;
                    let mut report = self
                        .bench_jobs(&spec, "SQS delivery job (no such delivery)", || self.samples.webhook_job())
                        .await?;
                    let (user_token, _) = self.sign_in(&auth, &user, &admin).await?;
                    let (warm, note) = self.bench_deliveries(&spec, &user_token).await?;
                    report.warm.merge(warm);
                    report.notes.push(note);
                    report
                }
                "billing" => {
                    let (user_token, _) = self.sign_in(&auth, &user, &admin).await?;
                    self.bench_billing(&self.spec("billing")?, &user_token).await?
                }
                "integrations-worker" => {
                    let spec = self.spec("integrations-worker")?;
                    let label = "SQS integration.event.received (no such event)";
                    self.bench_jobs(&spec, label, || self.samples.integration_job()).await?
                }
                "admin" => {
                    // The first answer runs every check; later ones within
                    // 5 s are the process's cached report.
                    let (_, admin_token) = self.sign_in(&auth, &user, &admin).await?;
                    self.bench_list(&self.spec("admin")?, "/v1/admin/health", &admin_token).await?
                }
                "ai-worker" => {
                    let spec = self.spec("ai-worker")?;
                    self.bench_jobs(&spec, "SQS ai.phase.requested (no such job)", || self.samples.ai_job()).await?
                }
                "workflows-worker" => {
                    let spec = self.spec("workflows-worker")?;
                    let label = "SQS bus event (no workflow it triggers)";
                    self.bench_jobs(&spec, label, || self.samples.workflow_trigger_job()).await?
                }
                "compliance-worker" => {
                    let spec = self.spec("compliance-worker")?;
                    let label = "SQS compliance.export.requested (no such export)";
                    self.bench_jobs(&spec, label, || self.samples.compliance_job()).await?
                }
                "billing-worker" => {
                    let spec = self.spec("billing-worker")?;
                    self.bench_jobs(&spec, "SQS hourly job (every tenant of the stack)", || self.samples.billing_job())
                        .await?
                }
                _ => {
                    if created.is_empty() {
                        created = self.create_tenants(&auth, &tenants, &user, &admin).await?;
                    }
                    self.bench_provisioner(&provisioner, &std::mem::take(&mut created)).await?
                }
            };
            report.moto_peak_rss_kib = self.moto_peak_rss_kib();
            reports.push(report);
        }
        Ok(reports)
    }

    /// The platform admin (`local seed-admin`) and the bench user (sign-up
    /// through the auth binary) in the current stack.
    /// The user's tenant goes on a custom plan without a practical rate limit:
    /// the bench measures latency, and the free plan's 100 requests a minute
    /// would refuse most of its invocations.
    async fn set_up(&self, auth: &FunctionSpec, tenants: &FunctionSpec, user: &Account, admin: &Account) -> Result<()> {
        progress("setup: platform admin through `local seed-admin`".into());
        self.seed_admin(admin).await?;
        progress("setup: registering the bench user through the auth binary".into());
        let register = self.samples.register(&user.email, &user.password, &format!("Bench {}", self.run))?;
        let registered = self.once(auth, vec![(register, Expect::Http(201))]).await?;
        let tenant_id =
            registered.first().and_then(|b| b["user"]["tenant_id"].as_str()).context("register gave no tenant id")?;
        let (_, admin_token) = self.sign_in(auth, user, admin).await?;
        progress("setup: lifting the bench tenant's rate limit through the tenants binary".into());
        let unlimited = serde_json::json!({
            "plan": "enterprise_custom",
            "custom_limits": {"requests_per_minute": 1_000_000},
        });
        let patch = self.samples.patch_tenant(&admin_token, tenant_id, &unlimited)?;
        self.once(tenants, vec![(patch, Expect::Http(200))]).await?;
        Ok(())
    }

    /// Untimed: an API key (scope tenant:read) of the bench user's tenant.
    async fn api_key(&self, api_keys: &FunctionSpec, user_token: &str) -> Result<String> {
        progress("setup: an API key through the api-keys binary".into());
        let created = self.once(api_keys, vec![(self.samples.create_api_key(user_token)?, Expect::Http(201))]).await?;
        let secret = created.first().and_then(|b| b["secret"].as_str()).context("no secret in the create answer")?;
        Ok(secret.to_owned())
    }

    /// A group whose cheapest authenticated request is its list: cold starts
    /// and warm runs of `GET <path>` (one Query, one rate-limit write).
    async fn bench_list(&self, spec: &FunctionSpec, path: &str, user_token: &str) -> Result<FunctionReport> {
        let label = format!("GET {path}");
        let lists = (0..self.options.spawns).map(|_| self.samples.get(user_token, path));
        let (cold, _) = self.cold(spec, &label, Expect::Http(200), lists.collect::<Result<_>>()?).await?;
        let warm_kinds = vec![self.kind(&label, Expect::Http(200), || self.samples.get(user_token, path))?];
        let (warm, _) = self.warm(spec, warm_kinds).await?;
        self.report(spec, cold, warm)
    }

    /// A worker's cold start and per-message cost, with jobs that name
    /// nothing (the work itself needs data this bench does not make: the
    /// figures are init, the runtime round trip and the first lookups).
    async fn bench_jobs(
        &self,
        spec: &FunctionSpec,
        label: &str,
        mut job: impl FnMut() -> Result<Value>,
    ) -> Result<FunctionReport> {
        let jobs = (0..self.options.spawns).map(|_| job());
        let (cold, _) = self.cold(spec, label, Expect::BatchAnswered, jobs.collect::<Result<_>>()?).await?;
        let warm_kinds = vec![self.kind(label, Expect::BatchAnswered, job)?];
        let (warm, _) = self.warm(spec, warm_kinds).await?;
        self.report(spec, cold, warm)
    }

    /// The dispatcher's delivery throughput with the store out of the way:
    /// batches of 10 jobs for pending deliveries, each POSTed (signed, over
    /// HTTP) to the bench's loopback receiver, with DynamoDB's and SQS's
    /// answers replayed from memory. Setup, untimed: an endpoint through the
    /// webhooks binary, then the deliveries made by the dispatcher's own
    /// fan-out of `webhook.test` events (one batch of jobs per invocation:
    /// against moto a delivery is sent once; the replay repeats the recorded
    /// pending state). `LOCAL_MODE=true` lets it post plain http to loopback,
    /// which a deployment refuses.
    async fn bench_deliveries(&self, dispatcher: &FunctionSpec, user_token: &str) -> Result<(Warm, String)> {
        const BATCH: usize = 10;
        progress("setup: a webhook endpoint at the bench's receiver through the webhooks binary".into());
        let mut webhooks = self.spec("webhooks")?;
        webhooks.env.push(("LOCAL_MODE".into(), "true".into()));
        let create = self.samples.create_webhook(user_token, self.receiver.url())?;
        let created = self.once(&webhooks, vec![(create, Expect::Http(201))]).await?;
        let endpoint = created.first().and_then(|b| b["id"].as_str()).context("no endpoint id in the create answer")?;
        let endpoint = Uuid::parse_str(endpoint).context("endpoint id")?;
        let tenant = created
            .first()
            .and_then(|b| b["tenant_id"].as_str())
            .and_then(|t| Uuid::parse_str(t).ok())
            .context("no tenant_id in the create answer")?;
        let mut dispatcher = dispatcher.clone();
        dispatcher.env.push(("LOCAL_MODE".into(), "true".into()));
        let batches = self.options.invocations + 1;
        progress(format!("setup: {} deliveries through the dispatcher's fan-out", batches * BATCH));
        let ids: Vec<Vec<Uuid>> = (0..batches).map(|_| (0..BATCH).map(|_| Uuid::now_v7()).collect()).collect();
        let fan_outs = ids
            .iter()
            .map(|batch| Ok((self.samples.webhook_test_events(tenant, endpoint, batch)?, Expect::BatchOk)))
            .collect::<Result<Vec<_>>>()?;
        self.once(&dispatcher, fan_outs).await?;

        let label = format!("SQS batch of {BATCH} delivery jobs (signed POSTs to a loopback receiver)");
        let mut batches = ids.iter();
        let kind = self.kind(&label, Expect::BatchOk, || {
            self.samples.delivery_jobs(tenant, endpoint, batches.next().context("no batch left")?)
        })?;
        let received_before = self.receiver.received();
        let (warm, _) = self.warm(&dispatcher, vec![kind]).await?;
        // Against moto and replayed, every job of every batch was POSTed once.
        let received = self.receiver.received() - received_before;
        let expected = 2 * self.options.invocations.saturating_add(1) * BATCH;
        if received != expected {
            bail!("the receiver got {received} deliveries, expected {expected}");
        }
        let (_, samples) = warm.replayed.last().context("no replayed run")?;
        let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
        latencies.sort_unstable();
        let p50 = report::percentile(&latencies, 50.0).context("no samples")?;
        let cpu = *warm.replayed_cpu.last().context("no CPU figure")?;
        let per_delivery = cpu / BATCH as u32;
        let note = format!(
            "Delivery throughput with the store out of the way (replayed, one process, batches of {BATCH} \
             handled concurrently): {:.0} deliveries/s at the batch's p50 latency ({}); CPU {} per delivery, \
             so one vCPU tops out near {:.0} deliveries/s; every one of the {received} POSTs (against moto \
             and replayed) reached the receiver.",
            BATCH as f64 / p50.as_secs_f64(),
            report::ms(p50),
            report::ms(per_delivery),
            1.0 / per_delivery.as_secs_f64().max(f64::EPSILON),
        );
        Ok((warm, note))
    }

    /// Cold starts with a usage post as first request; warm usage posts (one
    /// transaction each, the issue's figure) and `GET /v1/billing/usage`
    /// (one Query). The counting proxy shows every DynamoDB call of each.
    async fn bench_billing(&self, billing: &FunctionSpec, user_token: &str) -> Result<FunctionReport> {
        let posts = (0..self.options.spawns).map(|_| self.samples.record_usage(user_token));
        let (cold, _) =
            self.cold(billing, "POST /v1/billing/usage", Expect::Http(201), posts.collect::<Result<_>>()?).await?;
        let warm_kinds = vec![
            self.kind("POST /v1/billing/usage", Expect::Http(201), || self.samples.record_usage(user_token))?,
            self.kind("GET /v1/billing/usage", Expect::Http(200), || {
                self.samples.get(user_token, "/v1/billing/usage")
            })?,
        ];
        let (warm, _) = self.warm(billing, warm_kinds).await?;
        self.report(billing, cold, warm)
    }

    /// Cold starts with a key creation as first request; warm creations (each
    /// with a fresh Idempotency-Key) and lists.
    async fn bench_api_keys(&self, api_keys: &FunctionSpec, user_token: &str) -> Result<FunctionReport> {
        let creates = (0..self.options.spawns).map(|_| self.samples.create_api_key(user_token));
        let (cold, _) =
            self.cold(api_keys, "POST /v1/api-keys", Expect::Http(201), creates.collect::<Result<_>>()?).await?;
        let warm_kinds = vec![
            self.kind("GET /v1/api-keys", Expect::Http(200), || self.samples.list_api_keys(user_token))?,
            self.kind("POST /v1/api-keys", Expect::Http(201), || self.samples.create_api_key(user_token))?,
        ];
        let (warm, _) = self.warm(api_keys, warm_kinds).await?;
        self.report(api_keys, cold, warm)
    }

    /// Untimed: the tenants a provisioner run needs when no tenants run made them.
    async fn create_tenants(
        &self,
        auth: &FunctionSpec,
        tenants: &FunctionSpec,
        user: &Account,
        admin: &Account,
    ) -> Result<Vec<(Uuid, String)>> {
        let (_, admin_token) = self.sign_in(auth, user, admin).await?;
        progress("setup: creating the tenants to provision through the tenants binary".into());
        let count = self.options.spawns + 1 + self.options.invocations;
        let creates = (0..count)
            .map(|i| Ok((self.samples.create_tenant(&admin_token, &self.slug("s", i))?, Expect::Http(201))))
            .collect::<Result<_>>()?;
        self.once(tenants, creates).await?.iter().map(tenant_of).collect()
    }

    /// Replaces the stack of the env file by a fresh one (same port, same
    /// state dir, so the same env file and keys) with the project's script.
    async fn fresh_stack(&self) -> Result<()> {
        progress(format!("a fresh stack at {}", self.endpoint));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("infra").join("stack.sh");
        for action in ["down", "up"] {
            let mut command = std::process::Command::new(&script);
            command
                .arg(action)
                .env("LOCAL_DIR", &self.local_dir)
                .env("MOTO_PORT", &self.moto_port)
                .stdout(std::process::Stdio::null());
            let status = tokio::task::spawn_blocking(move || command.status())
                .await
                .context("stack.sh task")?
                .with_context(|| format!("running {} {action}", script.display()))?;
            if !status.success() {
                bail!("{} {action} failed ({status})", script.display());
            }
        }
        // A fresh stack has fresh secrets (new ARNs): the specs made from
        // here on read the new file.
        let env = read_env_file(&self.options.env_file)?;
        let endpoint = env.iter().find(|(k, _)| k == "AWS_ENDPOINT_URL").map(|(_, v)| v.as_str());
        if endpoint != Some(self.endpoint.as_str()) {
            bail!("{} moved moto across the restart; the bench cannot follow", self.options.env_file.display());
        }
        *self.stack_env.lock().unwrap_or_else(PoisonError::into_inner) = env;
        Ok(())
    }

    /// moto's peak RSS, when it was started by `infra/stack.sh` for this env file.
    fn moto_peak_rss_kib(&self) -> Option<u64> {
        let pid = std::fs::read_to_string(self.local_dir.join("moto.pid")).ok()?;
        function::peak_rss_kib(pid.trim().parse().ok()?).ok()
    }

    fn wants(&self, function: &str) -> bool {
        self.options.only.as_ref().is_none_or(|only| only.iter().any(|o| o == function))
    }

    fn slug(&self, phase: &str, i: usize) -> String {
        format!("bench-{}-{phase}{i}", self.run)
    }

    /// Cold starts with the sample login as first request; warm JWKS and logins.
    async fn bench_auth(&self, auth: &FunctionSpec, user: &Account) -> Result<FunctionReport> {
        let logins = (0..self.options.spawns).map(|_| self.samples.login(&user.email, &user.password));
        let (cold, _) =
            self.cold(auth, "POST /v1/auth/login", Expect::Http(200), logins.collect::<Result<_>>()?).await?;
        let warm_kinds = vec![
            self.kind("GET /.well-known/jwks.json", Expect::Http(200), || self.samples.jwks())?,
            self.kind("POST /v1/auth/login", Expect::Http(200), || self.samples.login(&user.email, &user.password))?,
        ];
        let (warm, _) = self.warm(auth, warm_kinds).await?;
        self.report(auth, cold, warm)
    }

    /// Access tokens (they live 15 minutes) for the user and the platform
    /// admin, from real logins through the auth binary.
    async fn sign_in(&self, auth: &FunctionSpec, user: &Account, admin: &Account) -> Result<(String, String)> {
        progress("setup: logging the user and the platform admin in through the auth binary".into());
        let logins = vec![
            (self.samples.login(&user.email, &user.password)?, Expect::Http(200)),
            (self.samples.login(&admin.email, &admin.password)?, Expect::Http(200)),
        ];
        let bodies = self.once(auth, logins).await?;
        let [user_token, admin_token] = [0, 1].map(|i| bodies.get(i).and_then(|b| b["access_token"].as_str()));
        let (Some(user_token), Some(admin_token)) = (user_token, admin_token) else {
            bail!("a login answer had no access_token");
        };
        if bodies.get(1).and_then(|b| b["user"]["platform_role"].as_str()) != Some("platform_admin") {
            bail!("the seeded admin is not a platform admin: {:?}", bodies.get(1));
        }
        Ok((user_token.to_owned(), admin_token.to_owned()))
    }

    /// Cold starts with the sample create as first request; warm `me` and
    /// creates. Returns the tenants it created (all still provisioning).
    async fn bench_tenants(
        &self,
        tenants: &FunctionSpec,
        user_token: &str,
        admin_token: &str,
        api_key: &str,
    ) -> Result<(FunctionReport, Vec<(Uuid, String)>)> {
        let creates = (0..self.options.spawns).map(|i| self.samples.create_tenant(admin_token, &self.slug("c", i)));
        let (cold, cold_created) =
            self.cold(tenants, "POST /v1/tenants", Expect::Http(201), creates.collect::<Result<_>>()?).await?;
        let mut i = 0;
        let warm_kinds = vec![
            self.kind("GET /v1/tenants/me", Expect::Http(200), || self.samples.my_tenant(user_token))?,
            self.kind("GET /v1/tenants/me (X-API-Key)", Expect::Http(200), || {
                self.samples.my_tenant_with_key(api_key)
            })?,
            self.kind("POST /v1/tenants", Expect::Http(201), || {
                i += 1;
                self.samples.create_tenant(admin_token, &self.slug("w", i))
            })?,
        ];
        let (warm, warm_bodies) = self.warm(tenants, warm_kinds).await?;
        let created = cold_created
            .iter()
            .chain(warm_bodies.get(2).into_iter().flatten())
            .map(tenant_of)
            .collect::<Result<_>>()?;
        Ok((self.report(tenants, cold, warm)?, created))
    }

    /// Cold starts and warm first deliveries activate fresh tenants; warm
    /// redeliveries replay the cold starts' (already active) tenants.
    async fn bench_provisioner(
        &self,
        provisioner: &FunctionSpec,
        created: &[(Uuid, String)],
    ) -> Result<FunctionReport> {
        let (cold_tenants, warm_tenants) = created.split_at(self.options.spawns.min(created.len()));
        let first_deliveries =
            cold_tenants.iter().map(|(id, slug)| self.samples.tenant_created(*id, slug, 1)).collect::<Result<_>>()?;
        let (cold, _) =
            self.cold(provisioner, "SQS tenant.created (first delivery)", Expect::Activates, first_deliveries).await?;
        let mut fresh = warm_tenants.iter();
        let mut redelivered = cold_tenants.iter().cycle();
        let warm_kinds = vec![
            self.kind("SQS tenant.created (first delivery)", Expect::Activates, || {
                let (id, slug) = fresh.next().context("ran out of tenants to provision")?;
                self.samples.tenant_created(*id, slug, 1)
            })?,
            self.kind("SQS tenant.created (redelivery)", Expect::AlreadyActive, || {
                let (id, slug) = redelivered.next().context("no provisioned tenant to redeliver")?;
                self.samples.tenant_created(*id, slug, 2)
            })?,
        ];
        let (warm, _) = self.warm(provisioner, warm_kinds).await?;
        self.report(provisioner, cold, warm)
    }

    /// The function's environment: its template.yaml variables (and their
    /// local `_FILE` forms) from the env file, with AWS reached through the
    /// bench's endpoint.
    fn spec(&self, name: &'static str) -> Result<FunctionSpec> {
        let binary = self.options.release_dir.join(name);
        if !binary.is_file() {
            bail!("{} is missing: build it with `cargo build --release --locked -p {name}`", binary.display());
        }
        let own = if name == FLOOR {
            Vec::new()
        } else {
            self.template.variables(name).with_context(|| format!("template.yaml builds no `{name}` binary"))?
        };
        let log = self.options.log_dir.join(format!("{name}.log"));
        std::fs::write(&log, b"").with_context(|| format!("truncating {}", log.display()))?;
        let wanted =
            |k: &str| AWS_ENV.contains(&k) || own.iter().any(|v| v == k || k.strip_suffix("_FILE") == Some(v.as_str()));
        let mut env: Vec<(String, String)> = self.stack_env().into_iter().filter(|(k, _)| wanted(k)).collect();
        env.push(("AWS_ENDPOINT_URL".into(), self.proxy.url().to_owned()));
        env.extend(self.options.extra_env.iter().cloned());
        Ok(FunctionSpec { name, binary, env, log, timeout: self.options.timeout })
    }

    fn stack_env(&self) -> Vec<(String, String)> {
        self.stack_env.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn kind(&self, label: &str, expect: Expect, mut make: impl FnMut() -> Result<Value>) -> Result<Kind> {
        let warmup = make()?;
        let events = (0..self.options.invocations).map(|_| make()).collect::<Result<_>>()?;
        Ok(Kind { label: label.to_owned(), expect, warmup, events })
    }

    async fn seed_admin(&self, admin: &Account) -> Result<()> {
        let local = &self.options.local_bin;
        let mut command = std::process::Command::new(local);
        command
            .arg("seed-admin")
            .env_clear()
            .envs(self.stack_env())
            .env("PLATFORM_ADMIN_EMAIL", &admin.email)
            .env("PLATFORM_ADMIN_PASSWORD", &admin.password)
            .env("RUST_LOG", "warn");
        // Blocking, off the runtime's only thread.
        let output =
            tokio::task::spawn_blocking(move || command.output()).await.context("seed-admin task")?.with_context(
                || format!("running {} seed-admin (build it with `cargo build -p local`)", local.display()),
            )?;
        if !output.status.success() {
            bail!(
                "{} seed-admin failed ({}): {}",
                local.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Setup: one process answers these requests; nothing is measured.
    async fn once(&self, spec: &FunctionSpec, requests: Vec<(Value, Expect)>) -> Result<Vec<Value>> {
        let mut requests = requests.into_iter();
        let (first, expect) = requests.next().context("no request")?;
        let (mut instance, pending) = Instance::spawn(spec, to_bytes(&first)?).await?;
        let reply = instance.wait(pending).await?;
        let mut bodies = vec![self.check(spec, expect, &reply)?.1];
        for (event, expect) in requests {
            let reply = instance.invoke(to_bytes(&event)?).await?;
            bodies.push(self.check(spec, expect, &reply)?.1);
        }
        instance.stop()?;
        Ok(bodies)
    }

    /// One process per event: the event is the first request of a fresh
    /// process, against moto (each spawn's calls recorded), then again with
    /// the recorded answers replayed at memory speed.
    async fn cold(
        &self,
        spec: &FunctionSpec,
        request: &str,
        expect: Expect,
        events: Vec<Value>,
    ) -> Result<(Cold, Vec<Value>)> {
        let mut cold = Cold {
            request: request.to_owned(),
            init: vec![],
            first: vec![],
            init_calls: vec![],
            rss_kib: vec![],
            replayed_init: vec![],
            replayed_first: vec![],
            floor_alongside: vec![],
            substituted: 0,
        };
        // The floor is spawned next to each replayed spawn, alternately just
        // before and just after it: on a shared VM the same binary's init
        // moves by more than a millisecond within minutes, so a ratio to a
        // floor measured once, at the start of the run, says as much about
        // the minute as about the binary.
        let floor = if spec.name == FLOOR { None } else { Some(self.spec(FLOOR)?) };
        let mut bodies = Vec::new();
        let mut episodes = Vec::new();
        let total = events.len();
        for (i, event) in events.iter().enumerate() {
            progress(format!("{}: cold start {}/{total}", spec.name, i + 1));
            self.proxy.record();
            let (mut instance, pending) = Instance::spawn(spec, to_bytes(event)?).await?;
            let reply = instance.wait(pending).await?;
            episodes.push(self.proxy.take_episode());
            let first_next = instance.first_next().context("answered without asking for an event")?;
            let (status, body) = self.check(spec, expect, &reply)?;
            cold.init.push(first_next.saturating_duration_since(instance.spawned_at()));
            cold.init_calls.push(self.proxy.between(instance.spawned_at(), first_next));
            cold.first.push(Sample {
                latency: reply.received.saturating_duration_since(instance.spawned_at()),
                status,
                calls: self.calls_of(&reply),
            });
            cold.rss_kib.push(instance.peak_rss_kib()?);
            bodies.push(body);
            instance.stop()?;
        }
        for (i, (event, episode)) in events.iter().zip(episodes).enumerate() {
            progress(format!("{}: cold start {}/{total}, replayed", spec.name, i + 1));
            let floor_first = i % 2 == 0;
            if let (Some(floor), true) = (&floor, floor_first) {
                cold.floor_alongside.push(self.floor_init(floor).await?);
            }
            self.proxy.replay(episode);
            let (mut instance, pending) = Instance::spawn(spec, to_bytes(event)?).await?;
            let reply = instance.wait(pending).await;
            cold.substituted +=
                self.proxy.end_replay().with_context(|| format!("{}: replayed cold start {}", spec.name, i + 1))?;
            let reply = reply?;
            let first_next = instance.first_next().context("answered without asking for an event")?;
            let (status, _) = self.check(spec, expect, &reply).context("replayed")?;
            cold.replayed_init.push(first_next.saturating_duration_since(instance.spawned_at()));
            cold.replayed_first.push(Sample {
                latency: reply.received.saturating_duration_since(instance.spawned_at()),
                status,
                calls: self.calls_of(&reply),
            });
            instance.stop()?;
            if let (Some(floor), false) = (&floor, floor_first) {
                cold.floor_alongside.push(self.floor_init(floor).await?);
            }
        }
        Ok((cold, bodies))
    }

    /// One cold start of the hello-world floor: spawn -> first `/next`.
    async fn floor_init(&self, floor: &FunctionSpec) -> Result<Duration> {
        let event = self.samples.unauthenticated_get("/")?;
        let (mut instance, pending) = Instance::spawn(floor, to_bytes(&event)?).await?;
        let reply = instance.wait(pending).await?;
        self.check(floor, Expect::Http(200), &reply).context("the floor alongside")?;
        let first_next = instance.first_next().context("the floor answered without asking for an event")?;
        let init = first_next.saturating_duration_since(instance.spawned_at());
        instance.stop()?;
        Ok(init)
    }

    /// One process serving every kind's warm-up (the first is its cold start),
    /// then each kind's timed requests, against moto with every invocation's
    /// calls recorded; then a second process doing the same with the recorded
    /// answers replayed. Returns every answer's body per kind (moto's run),
    /// warm-up first.
    async fn warm(&self, spec: &FunctionSpec, kinds: Vec<Kind>) -> Result<(Warm, Vec<Vec<Value>>)> {
        progress(format!("{}: warm run", spec.name));
        let (first, rest) = kinds.split_first().context("no request kinds")?;
        let mut episodes = Vec::new();
        self.proxy.record();
        let (mut instance, pending) = Instance::spawn(spec, to_bytes(&first.warmup)?).await?;
        let reply = instance.wait(pending).await?;
        episodes.push(self.proxy.take_episode());
        let mut all_bodies = vec![vec![self.check(spec, first.expect, &reply).context("warm-up")?.1]];
        for kind in rest {
            self.proxy.record();
            let reply = instance.invoke(to_bytes(&kind.warmup)?).await?;
            episodes.push(self.proxy.take_episode());
            all_bodies.push(vec![self.check(spec, kind.expect, &reply).context("warm-up")?.1]);
        }
        let mut results = Vec::new();
        for (kind, bodies) in kinds.iter().zip(all_bodies.iter_mut()) {
            let mut samples = Vec::new();
            for (i, event) in kind.events.iter().enumerate() {
                self.proxy.record();
                let reply = instance.invoke(to_bytes(event)?).await?;
                episodes.push(self.proxy.take_episode());
                let (status, body) = self
                    .check(spec, kind.expect, &reply)
                    .with_context(|| format!("{}: invocation {}", kind.label, i + 1))?;
                samples.push(Sample { latency: reply.latency(), status, calls: self.calls_of(&reply) });
                bodies.push(body);
            }
            results.push((kind.label.clone(), samples));
        }
        let rss_kib = instance.peak_rss_kib()?;
        instance.stop()?;

        progress(format!("{}: warm run, replayed", spec.name));
        let mut episodes = episodes.into_iter();
        let mut replay = |what: &str| -> Result<()> {
            self.proxy.replay(episodes.next().with_context(|| format!("no recorded episode for {what}"))?);
            Ok(())
        };
        let mut substituted = 0;
        replay("the first warm-up")?;
        let (mut instance, pending) = Instance::spawn(spec, to_bytes(&first.warmup)?).await?;
        let reply = instance.wait(pending).await?;
        substituted += self.proxy.end_replay().context("replayed warm-up")?;
        self.check(spec, first.expect, &reply).context("replayed warm-up")?;
        for kind in rest {
            replay("a warm-up")?;
            let reply = instance.invoke(to_bytes(&kind.warmup)?).await?;
            substituted += self.proxy.end_replay().context("replayed warm-up")?;
            self.check(spec, kind.expect, &reply).context("replayed warm-up")?;
        }
        let mut replayed = Vec::new();
        let mut replayed_cpu = Vec::new();
        for kind in &kinds {
            let cpu_before = instance.cpu_time()?;
            let mut samples = Vec::new();
            for (i, event) in kind.events.iter().enumerate() {
                replay(&kind.label)?;
                let reply = instance.invoke(to_bytes(event)?).await?;
                substituted += self
                    .proxy
                    .end_replay()
                    .with_context(|| format!("{}: replayed invocation {}", kind.label, i + 1))?;
                let (status, _) = self
                    .check(spec, kind.expect, &reply)
                    .with_context(|| format!("{}: replayed invocation {}", kind.label, i + 1))?;
                samples.push(Sample { latency: reply.latency(), status, calls: self.calls_of(&reply) });
            }
            let invocations = u32::try_from(samples.len()).unwrap_or(u32::MAX).max(1);
            replayed_cpu.push(instance.cpu_time()?.saturating_sub(cpu_before) / invocations);
            replayed.push((kind.label.clone(), samples));
        }
        let replayed_rss_kib = instance.peak_rss_kib()?;
        instance.stop()?;
        let warm = Warm {
            kinds: results,
            warmups: kinds.len(),
            rss_kib,
            replayed,
            replayed_cpu,
            replayed_rss_kib,
            substituted,
        };
        Ok((warm, all_bodies))
    }

    /// The AWS calls made while the function held this invocation.
    fn calls_of(&self, reply: &Reply) -> Vec<Call> {
        self.proxy.between(reply.handed_out, reply.received)
    }

    /// Refuses any answer that is not the one the request should get, so the
    /// bench never measures, say, 401s. Returns the status label and the body.
    fn check(&self, spec: &FunctionSpec, expect: Expect, reply: &Reply) -> Result<(String, Value)> {
        let text = String::from_utf8_lossy(&reply.body);
        if !reply.ok {
            bail!("{} reported an invocation error: {text}", spec.name);
        }
        let answer: Value = serde_json::from_slice(&reply.body)
            .with_context(|| format!("{}: answer is not JSON: {text}", spec.name))?;
        match expect {
            Expect::Http(expected) => {
                let status =
                    answer["statusCode"].as_u64().with_context(|| format!("{}: no statusCode in {text}", spec.name))?;
                // JSON bodies are never base64-encoded by lambda_http.
                let body = answer["body"]
                    .as_str()
                    .map_or(Value::Null, |b| serde_json::from_str(b).unwrap_or_else(|_| Value::String(b.to_owned())));
                if status != u64::from(expected) {
                    bail!("{}: expected HTTP {expected}, got {status}: {body}", spec.name);
                }
                Ok((status.to_string(), body))
            }
            Expect::BatchAnswered => {
                let failed = batch_failures(spec, &answer, &text)?;
                Ok((format!("{failed} failed"), answer))
            }
            Expect::BatchOk => {
                no_batch_failures(spec, &answer, &text)?;
                Ok(("no failures".into(), answer))
            }
            Expect::Activates | Expect::AlreadyActive => {
                no_batch_failures(spec, &answer, &text)?;
                // Only an activation writes the transaction (status, invitation, outbox).
                let activated = self.calls_of(reply).iter().any(|c| c.name == "dynamodb:TransactWriteItems");
                match (expect, activated) {
                    (Expect::Activates, true) => Ok(("activated".into(), answer)),
                    (Expect::AlreadyActive, false) => Ok(("already active".into(), answer)),
                    (Expect::Activates, false) => bail!("{}: first delivery did not activate the tenant", spec.name),
                    _ => bail!("{}: a redelivery activated the tenant again", spec.name),
                }
            }
        }
    }

    fn report(&self, spec: &FunctionSpec, cold: Cold, warm: Warm) -> Result<FunctionReport> {
        let bytes =
            std::fs::metadata(&spec.binary).with_context(|| format!("reading {}", spec.binary.display()))?.len();
        Ok(FunctionReport {
            name: spec.name,
            binary: format!("release/{}", spec.name),
            binary_bytes: bytes,
            cold,
            warm,
            // Filled in by `run_all`, which knows which stack it ran on.
            moto_peak_rss_kib: None,
            notes: Vec::new(),
        })
    }
}

/// A created tenant's id and slug, from the create answer.
fn tenant_of(body: &Value) -> Result<(Uuid, String)> {
    let id = body["id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .with_context(|| format!("no tenant id in {body}"))?;
    let slug = body["slug"].as_str().with_context(|| format!("no slug in {body}"))?;
    Ok((id, slug.to_owned()))
}

fn to_bytes(event: &Value) -> Result<Bytes> {
    Ok(Bytes::from(serde_json::to_vec(event).context("serialising an event")?))
}

fn progress(message: String) {
    eprintln!("bench: {message}");
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned()))
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// How many items an SQS batch answer reports failed.
fn batch_failures(spec: &FunctionSpec, answer: &Value, text: &str) -> Result<usize> {
    let failures =
        answer["batchItemFailures"].as_array().with_context(|| format!("{}: not a batch answer: {text}", spec.name))?;
    Ok(failures.len())
}

fn no_batch_failures(spec: &FunctionSpec, answer: &Value, text: &str) -> Result<()> {
    if batch_failures(spec, answer, text)? > 0 {
        bail!("{}: batch item failures: {text} (see {})", spec.name, spec.log.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("bench-env-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("env");
        std::fs::write(&path, "# comment\nexport A='x=1'\nexport B='it'\\''s'\n\nC=plain\n")?;
        let env = read_env_file(&path)?;
        std::fs::remove_dir_all(&dir)?;
        assert_eq!(env, [("A".into(), "x=1".into()), ("B".into(), "it's".into()), ("C".into(), "plain".into())]);
        Ok(())
    }
}

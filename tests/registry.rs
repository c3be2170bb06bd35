//! The registry check: what a route group is made of, in the ~20 places it
//! is written down, must agree (docs/adding-a-route-group.md). Run by
//! scripts/test.sh after the suite (`cargo test -p platform-tests --test
//! registry`, with the local stack's env loaded).
//!
//! - Routes: what each group's router serves (read from the router itself,
//!   then asked of it in-process) against its function's `HttpApi` events in
//!   template.yaml (API Gateway's matching, most specific route wins) and the
//!   README routes table (route, handler file and function, API key scope).
//! - Functions: every `AWS::Serverless::Function` has its crate, workspace
//!   member, log group, README row, sample event and a place in the local
//!   server (route group or worker).
//! - IAM: every AWS call the suite saw a function make (`AWS_CALL_LOG`,
//!   written by `shared::aws::call_log`), and every call Lambda makes for it
//!   (its event source mappings), is allowed by that function's policy; a
//!   grant that nothing used fails too, unless the function's
//!   `UnexercisedGrants` metadata names it with a reason.

use std::collections::{BTreeMap, BTreeSet};

use axum::{Router, body::Body};
use serde_yaml::Value as Yaml;
use shared::{AppState, auth::Scope};
use tower::ServiceExt;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
/// Local resources are named `saas-local-<kebab logical id>` (infra/local_stack.py).
const LOCAL_PREFIX: &str = "saas-local-";
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"];

/// Every Rust source of a function crate (lib.rs and its modules).
fn crate_sources(crate_name: &str) -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs")
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                out.push(text);
            }
        }
    }
    let mut out = Vec::new();
    walk(std::path::Path::new(&format!("{REPO}/functions/{crate_name}/src")), &mut out);
    out
}

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{REPO}/{path}")).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Collects problems instead of stopping at the first, then fails with all.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }

    fn check(self, what: &str) {
        assert!(self.0.is_empty(), "{what}: {} problem(s):\n  - {}", self.0.len(), self.0.join("\n  - "));
    }
}

// ----------------------------------------------------------- typed answers --

/// Every success body is a type (a view, `Page<view>` or a response struct)
/// that the OpenAPI document can describe: no handler answers a
/// `serde_json::Value` it assembled. Error details (`with_details(json!)`)
/// are the one free-form part, and they are not answers.
#[test]
fn every_handler_answers_a_typed_body() {
    let mut problems = Problems::default();
    let untyped = ["Json<Value>", "Page<Value>", "Json(json!", "Json(serde_json::json!", ".to_body("];
    for entry in std::fs::read_dir(format!("{REPO}/functions")).expect("functions/").flatten() {
        let src = entry.path().join("src");
        for file in std::fs::read_dir(&src).into_iter().flatten().flatten() {
            let path = file.path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            // Unit tests build bodies freely.
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for (number, line) in code.lines().enumerate() {
                if let Some(found) = untyped.iter().find(|u| line.contains(*u)) {
                    problems.add(format!("{}:{}: {found}", path.display(), number + 1));
                }
            }
        }
    }
    problems.check("handlers answering untyped JSON");
}

// ---------------------------------------------------------------- template --

fn template() -> Yaml {
    serde_yaml::from_str(&read("template.yaml")).expect("template.yaml parses")
}

fn resources(template: &Yaml) -> Vec<(String, &Yaml)> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(id, resource)| (id.as_str().expect("logical id").to_owned(), resource))
        .collect()
}

fn resource_type(resource: &Yaml) -> &str {
    resource["Type"].as_str().unwrap_or_default()
}

fn functions(template: &Yaml) -> Vec<(String, &Yaml)> {
    resources(template).into_iter().filter(|(_, r)| resource_type(r) == "AWS::Serverless::Function").collect()
}

/// `functions/<crate>` of a function.
fn crate_of(function: &Yaml) -> String {
    let uri = function["Properties"]["CodeUri"].as_str().expect("CodeUri");
    uri.strip_prefix("functions/").unwrap_or(uri).trim_end_matches('/').to_owned()
}

fn events_of<'a>(function: &'a Yaml, kind: &str) -> Vec<(String, &'a Yaml)> {
    function["Properties"]["Events"]
        .as_mapping()
        .map(|events| {
            events
                .iter()
                .filter(|(_, e)| e["Type"].as_str() == Some(kind))
                .map(|(name, e)| (name.as_str().unwrap_or_default().to_owned(), &e["Properties"]))
                .collect()
        })
        .unwrap_or_default()
}

/// The logical id a `!Ref X` or `!GetAtt X.Attr` names.
fn referenced_id(value: &Yaml) -> Option<String> {
    match value {
        Yaml::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str().map(str::to_owned),
        Yaml::Tagged(tagged) if tagged.tag == "GetAtt" => match &tagged.value {
            Yaml::String(s) => s.split('.').next().map(str::to_owned),
            Yaml::Sequence(parts) => parts.first().and_then(Yaml::as_str).map(str::to_owned),
            _ => None,
        },
        _ => None,
    }
}

/// Every `AWS::Lambda::EventSourceMapping`: (its id, the function it feeds,
/// its properties). Explicit resources rather than SAM `Events` of type
/// SQS/DynamoDB, which would attach AWS's account-wide managed policies.
fn mappings(template: &Yaml) -> Vec<(String, String, &Yaml)> {
    resources(template)
        .into_iter()
        .filter(|(_, r)| resource_type(r) == "AWS::Lambda::EventSourceMapping")
        .map(|(id, r)| (id, referenced_id(&r["Properties"]["FunctionName"]).unwrap_or_default(), &r["Properties"]))
        .collect()
}

/// `TenantProvisioningQueue` -> `tenant-provisioning-queue` (as infra/local_stack.py).
fn kebab(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower) {
                out.push('-');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A resource's local physical name.
fn local_name(id: &str) -> String {
    format!("{LOCAL_PREFIX}{}", kebab(id))
}

/// `X.Arn` of a template resource, with the local names.
fn arn_of(template: &Yaml, id: &str) -> String {
    let resource = &template["Resources"][id];
    let name = local_name(id);
    match resource_type(resource) {
        "AWS::DynamoDB::Table" => format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"),
        "AWS::S3::Bucket" => format!("arn:aws:s3:::{name}"),
        // A FIFO queue's name ends in `.fifo` (SQS requires it; local_stack.py keeps it).
        "AWS::SQS::Queue" if resource["Properties"]["FifoQueue"].as_bool() == Some(true) => {
            format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}.fifo")
        }
        "AWS::SQS::Queue" => format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"),
        "AWS::Events::EventBus" => format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}"),
        // The machine itself; its executions are `execution:<name>:<run>`,
        // other resources that a grant on the machine does not cover.
        "AWS::StepFunctions::StateMachine" => format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"),
        "AWS::Scheduler::ScheduleGroup" => format!("arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/{name}"),
        // Not created locally (moto enforces no IAM); infra/local_stack.py
        // gives it this ARN.
        "AWS::IAM::Role" => format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
        // Secrets Manager appends a random suffix to a secret's name.
        "AWS::SecretsManager::Secret" => format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-*"),
        other => panic!("no ARN rule for {id} ({other})"),
    }
}

/// `!Ref X` (or `${X}` in a `!Sub`): most resources answer their name, a
/// state machine its ARN (CloudFormation's Ref of each type).
fn ref_of(template: &Yaml, id: &str) -> String {
    match resource_type(&template["Resources"][id]) {
        "AWS::StepFunctions::StateMachine" | "AWS::SecretsManager::Secret" => arn_of(template, id),
        _ => local_name(id),
    }
}

/// `!GetAtt X.<attribute>` (or `${X.<attribute>}` in a `!Sub`).
fn attribute_of(template: &Yaml, id: &str, attribute: &str) -> Result<String, String> {
    let kind = resource_type(&template["Resources"][id]);
    match (kind, attribute) {
        (_, "Arn") => Ok(arn_of(template, id)),
        // The physical name, which locally is the local name
        // (infra/local_stack.py records it as the Name attribute).
        ("AWS::StepFunctions::StateMachine" | "AWS::Events::EventBus", "Name") => Ok(local_name(id)),
        // A real stream's ARN ends in its creation time; any fixed label
        // does here, as grants and mappings both name it by `StreamArn`.
        ("AWS::DynamoDB::Table", "StreamArn") => Ok(format!("{}/stream/local", arn_of(template, id))),
        _ => Err(format!("no rule for {id}.{attribute} ({kind}); extend tests/registry.rs attribute_of")),
    }
}

/// A policy value (`!GetAtt X.Arn`, `!Ref X`, `!Sub "${X.Arn}/index/GSI1"`,
/// `!Sub "...:execution:${X.Name}:*"`, a plain string) as an ARN pattern.
fn resolve(template: &Yaml, value: &Yaml) -> Result<String, String> {
    match value {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Tagged(tagged) if tagged.tag == "GetAtt" => {
            let target = match &tagged.value {
                Yaml::String(s) => s.clone(),
                Yaml::Sequence(parts) => parts.iter().filter_map(Yaml::as_str).collect::<Vec<_>>().join("."),
                other => return Err(format!("!GetAtt {other:?}")),
            };
            match target.split_once('.') {
                Some((id, attribute)) => attribute_of(template, id, attribute),
                None => Err(format!("!GetAtt {target} names no attribute")),
            }
        }
        Yaml::Tagged(tagged) if tagged.tag == "Sub" => {
            let text = tagged.value.as_str().ok_or("!Sub with variables is not supported")?;
            let mut out = String::new();
            let mut rest = text;
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let end = rest[start..].find('}').ok_or("unclosed ${ in !Sub")? + start;
                let name = &rest[start + 2..end];
                out.push_str(&match name {
                    "AWS::Region" => REGION.to_owned(),
                    "AWS::AccountId" => ACCOUNT.to_owned(),
                    "AWS::Partition" => "aws".to_owned(),
                    // A parameter: its default, as the local stack uses it.
                    _ if template["Parameters"][name]["Default"].as_str().is_some() => {
                        template["Parameters"][name]["Default"].as_str().unwrap_or_default().to_owned()
                    }
                    _ => match name.split_once('.') {
                        Some((id, attribute)) => attribute_of(template, id, attribute)?,
                        None => ref_of(template, name),
                    },
                });
                rest = &rest[end + 1..];
            }
            out.push_str(rest);
            Ok(out)
        }
        Yaml::Tagged(tagged) if tagged.tag == "Ref" => Ok(ref_of(template, tagged.value.as_str().unwrap_or_default())),
        other => Err(format!("cannot evaluate {other:?}")),
    }
}

fn one_or_many(value: &Yaml) -> Vec<&Yaml> {
    match value {
        Yaml::Sequence(items) => items.iter().collect(),
        Yaml::Null => Vec::new(),
        one => vec![one],
    }
}

// ------------------------------------------------------------------ routes --

/// What a group's router serves, read from the router itself: axum keeps each
/// route's path and method router and shows both in its `Debug` output (the
/// only view of them it offers). If an axum upgrade changes that output, this
/// finds nothing and [`every_group_serves_what_the_template_and_readme_say`]
/// fails on it rather than passing empty.
fn served_routes(router: &Router<AppState>) -> BTreeSet<(String, String)> {
    let text = format!("{router:?}");
    let start = text.find("path_router: PathRouter {").expect("axum Router Debug: path_router");
    let end = text[start..].find("fallback_router:").map_or(text.len(), |e| start + e);
    let text = &text[start..end];
    let paths_at = text.find("paths: {").expect("axum Router Debug: node paths") + "paths: {".len();
    let mut paths = BTreeMap::new();
    let mut rest = &text[paths_at..];
    while let Some(at) = rest.find("RouteId(") {
        let after = &rest[at + "RouteId(".len()..];
        let Some((id, after)) = after.split_once("): \"") else { break };
        let Some(close) = after.find('"') else { break };
        paths.insert(id.to_owned(), after[..close].to_owned());
        rest = &after[close..];
    }
    let mut served = BTreeSet::new();
    for (id, path) in &paths {
        let marker = format!("RouteId({id}): ");
        let Some(at) = text.find(&marker) else { continue };
        let endpoint = &text[at + marker.len()..];
        if endpoint.starts_with("Route(") {
            served.insert(("ANY".to_owned(), path.clone()));
            continue;
        }
        let fields = &endpoint[..endpoint.find("fallback:").unwrap_or(endpoint.len())];
        for method in METHODS {
            let field = format!("{}: ", method.to_ascii_lowercase());
            if let Some(at) = fields.find(&field)
                && !fields[at + field.len()..].starts_with("None")
            {
                served.insert((method.to_owned(), path.clone()));
            }
        }
    }
    served
}

/// An axum path with its parameters filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e5f" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// API Gateway HTTP API path matching: `{name}` one segment, `{name+}` the rest.
fn apigw_matches(route: &str, path: &str) -> bool {
    let route: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    let path: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    for (i, segment) in route.iter().enumerate() {
        if segment.starts_with('{') && segment.ends_with("+}") {
            return path.len() > i && path[i..].iter().all(|s| !s.is_empty());
        }
        match path.get(i) {
            Some(p) if segment.starts_with('{') && !p.is_empty() => {}
            Some(p) if p == segment => {}
            _ => return false,
        }
    }
    route.len() == path.len()
}

/// API Gateway's choice among matching routes: the most specific wins (no
/// greedy variable before greedy, then more literal segments, then an exact
/// method before `ANY`).
fn specificity(route: &str, method: &str) -> (bool, usize, bool) {
    let segments: Vec<&str> = route.split('/').filter(|s| !s.is_empty()).collect();
    (
        !segments.iter().any(|s| s.ends_with("+}")),
        segments.iter().filter(|s| !s.starts_with('{')).count(),
        method != "ANY",
    )
}

fn methods_match(event_method: &str, method: &str) -> bool {
    event_method.eq_ignore_ascii_case("ANY") || event_method.eq_ignore_ascii_case(method)
}

struct ReadmeRoute {
    method: String,
    path: String,
    file: String,
    handler: Option<String>,
    scope: String,
}

fn table_rows<'a>(readme: &'a str, heading: &str) -> Vec<Vec<&'a str>> {
    let start = readme.find(heading).unwrap_or_else(|| panic!("README has no {heading}"));
    readme[start..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| l.trim().trim_matches('|').split(" | ").map(str::trim).collect())
        .collect()
}

fn first_code(cell: &str) -> Option<&str> {
    let start = cell.find('`')? + 1;
    let end = cell[start..].find('`')? + start;
    Some(&cell[start..end])
}

fn readme_routes(readme: &str) -> Vec<ReadmeRoute> {
    let mut routes = Vec::new();
    for row in table_rows(readme, "## Routes") {
        let [route, handler, _who, scope] = row[..] else {
            panic!("README routes row with {} cells: {row:?}", row.len())
        };
        let route = route.replace('`', "");
        let (methods, path) = route.split_once(' ').unwrap_or_else(|| panic!("README route {route}"));
        let handler = first_code(handler).unwrap_or_else(|| panic!("README handler of {route}"));
        let (file, function) = match handler.split_once("::") {
            Some((file, function)) => (file.to_owned(), Some(function.to_owned())),
            None => (handler.to_owned(), None),
        };
        for method in methods.split('/') {
            routes.push(ReadmeRoute {
                method: method.to_owned(),
                path: path.to_owned(),
                file: file.clone(),
                handler: function.clone(),
                scope: scope.to_owned(),
            });
        }
    }
    routes
}

/// The body of a top-level `fn name(` in a source file (up to its closing
/// brace at column 0).
fn fn_body<'a>(source: &'a str, name: &str) -> Option<&'a str> {
    let start = source.find(&format!("fn {name}("))?;
    let end = source[start..].find("\n}\n").map_or(source.len(), |e| start + e);
    Some(&source[start..end])
}

/// The API key scopes a handler's body names (`Scope::TenantRead` ...).
fn scopes_named(body: &str) -> BTreeSet<&'static str> {
    Scope::ALL
        .into_iter()
        .filter(|scope| {
            let needle = format!("Scope::{scope:?}");
            body.match_indices(&needle)
                .any(|(at, _)| !body[at + needle.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
        })
        .map(Scope::as_str)
        .collect()
}

/// [`scopes_named`] in a handler's body and in the bodies of the functions it
/// calls (one level: `require(&principal)?` helpers), looked up in the
/// handler's file, then in `imported_from` (the crate root a module's
/// `use crate::require` names).
fn scopes_required(source: &str, imported_from: &str, body: &str) -> BTreeSet<&'static str> {
    let mut scopes = scopes_named(body);
    let mut rest = body.split_once('(').map_or("", |(_, r)| r);
    while let Some(open) = rest.find('(') {
        let name_start = rest[..open].rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
        let name = &rest[name_start..open];
        if !name.is_empty() && !rest[..name_start].ends_with('.') && !rest[..name_start].ends_with("::") {
            let imported =
                || source.contains(&format!("use crate::{name};")).then(|| fn_body(imported_from, name)).flatten();
            if let Some(helper) = fn_body(source, name).or_else(imported) {
                scopes.extend(scopes_named(helper));
            }
        }
        rest = &rest[open + 1..];
    }
    scopes
}

/// The crate root (`src/lib.rs`) of the crate a source file belongs to.
fn crate_root_of(file: &str) -> String {
    let root = file.split("/src/").next().unwrap_or(file);
    std::fs::read_to_string(format!("{REPO}/{root}/src/lib.rs")).unwrap_or_default()
}

fn test_state() -> AppState {
    let config = shared::config::Config::from_env()
        .expect("the local stack env is not loaded: run this with scripts/test.sh (make test)");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let clients = shared::aws::AwsClients::new(&shared::aws::load_sdk_config().await);
        AppState::load(config, &clients, shared::state::Signing::Issue).await.expect("state")
    })
}

#[tokio::test]
async fn every_group_serves_what_the_template_and_readme_say() {
    let template = template();
    let readme = read("README.md");
    let state = tokio::task::spawn_blocking(test_state).await.expect("state");
    let mut problems = Problems::default();

    // Every HttpApi event of the template, for API Gateway's choice.
    let mut events = Vec::new();
    for (id, function) in functions(&template) {
        for (name, props) in events_of(function, "HttpApi") {
            let method = props["Method"].as_str().unwrap_or("ANY").to_ascii_uppercase();
            let path = props["Path"].as_str().unwrap_or_default().to_owned();
            events.push((id.clone(), name, method, path));
        }
    }
    let http_functions: BTreeSet<&str> = events.iter().map(|(id, ..)| id.as_str()).collect();
    let groups = local::route_groups();
    let group_functions: BTreeSet<&str> = groups.iter().map(|(id, _)| *id).collect();
    for id in http_functions.difference(&group_functions) {
        problems.add(format!("{id} has HttpApi events but no route group in functions/local (route_groups)"));
    }
    for id in group_functions.difference(&http_functions) {
        problems.add(format!("route group {id} (functions/local) has no HttpApi event in template.yaml"));
    }

    let mut all_served = BTreeMap::new();
    for (function, routes) in &groups {
        let served = served_routes(routes);
        if served.is_empty() {
            problems.add(format!("{function}: read no route from its router (did axum's Debug output change?)"));
        }
        let app = shared::http::finish_app(routes.clone(), state.clone());
        for (method, path) in &served {
            // (a) the router really serves it: not its 404 fallback, not a 405.
            let request = axum::http::Request::builder()
                .method(method.as_str())
                .uri(concrete(path))
                .body(Body::empty())
                .expect("request");
            let response = app.clone().oneshot(request).await.expect("infallible");
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
            if status == 405 || (status == 404 && String::from_utf8_lossy(&body).contains("no such route")) {
                problems.add(format!("{function}: {method} {path} answers {status} from its own router"));
            }
            // (b) API Gateway sends it to this function.
            let best = events
                .iter()
                .filter(|(_, _, m, p)| methods_match(m, method) && apigw_matches(p, &concrete(path)))
                .max_by_key(|(_, _, m, p)| specificity(p, m));
            match best {
                None => problems.add(format!("{function}: {method} {path} matches no HttpApi event in template.yaml")),
                Some((winner, name, ..)) if winner != function => problems.add(format!(
                    "{function}: {method} {path} goes to {winner} (its event {name} is the most specific match) in API Gateway"
                )),
                Some(_) => {}
            }
            all_served.insert((method.clone(), path.clone()), *function);
        }
        // (b) every event of the function leads to something it serves.
        for (_, name, event_method, event_path) in events.iter().filter(|(id, ..)| id == function) {
            if !served.iter().any(|(m, p)| methods_match(event_method, m) && apigw_matches(event_path, &concrete(p))) {
                problems.add(format!("{function}: HttpApi event {name} ({event_method} {event_path}) serves no route"));
            }
        }
    }

    // (c) the README routes table lists exactly these, with handler and scope.
    let crates: BTreeMap<String, String> = functions(&template).into_iter().map(|(id, f)| (id, crate_of(f))).collect();
    let listed = readme_routes(&readme);
    let mut seen = BTreeSet::new();
    for route in &listed {
        let key = (route.method.clone(), route.path.clone());
        if !seen.insert(key.clone()) {
            problems.add(format!("README lists {} {} twice", route.method, route.path));
        }
        let Some(function) = all_served.get(&key) else {
            problems.add(format!("README lists {} {}, which no group serves", route.method, route.path));
            continue;
        };
        // The handler lives in the serving crate's sources: its lib.rs or a
        // module of it (the auth group's `mfa.rs`, `sso/oidc.rs`).
        let sources = format!("functions/{}/src/", crates[*function]);
        let file = route.file.clone();
        if !file.starts_with(&sources) || !file.ends_with(".rs") || file.contains("..") {
            problems
                .add(format!("README: {} {} is handled in {sources}, not {}", route.method, route.path, route.file));
            continue;
        }
        let Some(handler) = &route.handler else { continue };
        let Ok(source) = std::fs::read_to_string(format!("{REPO}/{file}")) else {
            problems.add(format!("README: {} {}: no file {file}", route.method, route.path));
            continue;
        };
        let Some(body) = fn_body(&source, handler) else {
            problems.add(format!("README: {} {}: no fn {handler} in {file}", route.method, route.path));
            continue;
        };
        // Item 4: the scope column against the scope the handler requires
        // (in its body or in a helper of the same file that it calls).
        let named = scopes_required(&source, &crate_root_of(&file), body);
        let listed_scope = first_code(&route.scope);
        match (named.iter().next(), listed_scope) {
            _ if named.len() > 1 => {
                problems.add(format!("{file}::{handler} names several scopes {named:?}; the README shows one"))
            }
            (Some(scope), Some(listed)) if *scope == listed => {}
            (None, None) => {}
            (scope, listed) => problems.add(format!(
                "README: {} {} has scope {:?}, but {handler} requires {:?}",
                route.method,
                route.path,
                listed.unwrap_or(&route.scope),
                scope.copied().unwrap_or("no scope")
            )),
        }
    }
    for ((method, path), function) in &all_served {
        if !seen.contains(&(method.clone(), path.clone())) {
            problems.add(format!("{function} serves {method} {path}, which the README routes table does not list"));
        }
    }
    problems.check("routes");
}

#[test]
fn every_function_has_its_crate_readme_row_sample_log_group_and_local_place() {
    let template = template();
    let readme = read("README.md");
    let workspace = read("Cargo.toml");
    let samples: Vec<String> = std::fs::read_dir(format!("{REPO}/events"))
        .expect("events/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let rows = table_rows(&readme, "## Functions");
    let log_groups: Vec<String> = resources(&template)
        .into_iter()
        .filter(|(_, r)| resource_type(r) == "AWS::Logs::LogGroup")
        .filter_map(|(_, r)| match &r["Properties"]["LogGroupName"] {
            Yaml::Tagged(t) => t.value.as_str().map(str::to_owned),
            other => other.as_str().map(str::to_owned),
        })
        .collect();
    let groups: BTreeSet<&str> = local::route_groups().iter().map(|(id, _)| *id).collect();
    let mut problems = Problems::default();
    let mut ids = BTreeSet::new();
    for (id, function) in functions(&template) {
        ids.insert(id.clone());
        let krate = crate_of(function);
        if !std::path::Path::new(&format!("{REPO}/functions/{krate}/Cargo.toml")).exists() {
            problems.add(format!("{id}: CodeUri functions/{krate} has no crate"));
        }
        if !workspace.contains(&format!("\"functions/{krate}\"")) {
            problems.add(format!("{id}: functions/{krate} is not a workspace member (Cargo.toml)"));
        }
        if !log_groups.iter().any(|name| name == &format!("/aws/lambda/${{{id}}}")) {
            problems.add(format!("{id}: no AWS::Logs::LogGroup named /aws/lambda/${{{id}}}"));
        }
        match rows.iter().find(|row| row.get(2).and_then(|c| first_code(c)) == Some(id.as_str())) {
            None => problems.add(format!("{id}: no row in the README functions table")),
            Some(row) => {
                if row.get(1).and_then(|c| first_code(c)) != Some(&format!("functions/{krate}")) {
                    problems.add(format!("README functions table: {id}'s crate is not `functions/{krate}`"));
                }
                for sample in row.get(3).map(|c| c.split(", ")).into_iter().flatten() {
                    let sample = sample.trim_matches('`').trim_start_matches("events/");
                    if !samples.iter().any(|s| s == sample) {
                        problems.add(format!("README functions table: {id}'s sample events/{sample} does not exist"));
                    }
                }
            }
        }
        if !samples.iter().any(|s| s.starts_with(&format!("{krate}-"))) {
            problems.add(format!("{id}: no sample event events/{krate}-*.json"));
        }
        let http = !events_of(function, "HttpApi").is_empty();
        // SAM attaches an account-wide managed policy to the role of a
        // function with one of these events (AWSLambdaSQSQueueExecutionRole:
        // every queue); an explicit AWS::Lambda::EventSourceMapping and an
        // inline grant on its source take their place.
        for kind in ["SQS", "DynamoDB", "Kinesis", "MQ", "MSK", "SelfManagedKafka", "DocumentDB"] {
            for (name, _) in events_of(function, kind) {
                problems.add(format!(
                    "{id}: event {name} (Type: {kind}) brings SAM's account-wide managed policy; \
                     declare an AWS::Lambda::EventSourceMapping instead (docs/adding-a-route-group.md)"
                ));
            }
        }
        let mapped = mappings(&template).iter().any(|(_, f, _)| f == &id);
        let worker = mapped || !events_of(function, "Schedule").is_empty();
        // A function that reads keys at its cold start (every HTTP
        // function, and the workers that open sealed secrets) is told where
        // they are; only the ones that issue tokens get the signing keys.
        let env = &function["Properties"]["Environment"]["Variables"];
        let main = std::fs::read_to_string(format!("{REPO}/functions/{krate}/src/main.rs")).unwrap_or_default();
        let reads_keys = main.contains("lambda::serve(") || main.contains("keys::load_platform");
        if reads_keys && env.get("PLATFORM_KEYS_SECRET_ID").is_none() {
            problems.add(format!("{id}: reads the platform keys at its cold start but has no PLATFORM_KEYS_SECRET_ID"));
        }
        let issues = main.contains("Signing::Issue");
        if issues != env.get("SIGNING_KEYS_SECRET_ID").is_some() {
            problems.add(format!(
                "{id}: SIGNING_KEYS_SECRET_ID must be set exactly where tokens are issued (Signing::Issue: {issues})"
            ));
        }
        if http && !groups.contains(id.as_str()) {
            problems.add(format!("{id}: not a route group of the local server (functions/local route_groups)"));
        }
        if worker && !http && !local::WORKER_FUNCTIONS.contains(&id.as_str()) {
            problems.add(format!("{id}: not a worker of the local server (functions/local WORKER_FUNCTIONS)"));
        }
    }
    for (mapping, function, properties) in mappings(&template) {
        if !ids.contains(&function) {
            problems.add(format!("{mapping}: FunctionName names {function:?}, not a function of template.yaml"));
            continue;
        }
        let source = referenced_id(&properties["EventSourceArn"]).unwrap_or_default();
        if resource_type(&template["Resources"][source.as_str()]) == "AWS::SQS::Queue" {
            // infra/local_stack.py names a queue's env var after the mapping.
            let stem = function.trim_end_matches("Function");
            if !(mapping.starts_with(stem) && mapping.ends_with("Mapping") && mapping.len() > stem.len() + 7) {
                problems.add(format!("{mapping}: a queue mapping of {function} is named {stem}<Name>Mapping"));
            }
            // Without a cap, a backlog scales a worker to the account's
            // concurrency; 2 is the least SQS mappings accept.
            if properties["ScalingConfig"]["MaximumConcurrency"].as_u64().is_none_or(|n| n < 2) {
                problems.add(format!("{mapping}: no ScalingConfig.MaximumConcurrency (>= 2)"));
            }
        }
    }
    for row in &rows {
        if let Some(id) = row.get(2).and_then(|c| first_code(c))
            && !ids.contains(id)
        {
            problems.add(format!("README functions table lists {id}, which template.yaml does not have"));
        }
    }
    for id in local::WORKER_FUNCTIONS.iter().chain(groups.iter()) {
        if !ids.contains(*id) {
            problems.add(format!("functions/local names {id}, which template.yaml does not have"));
        }
    }
    problems.check("functions");
}

/// Every schedule's target has a retry policy and a dead-letter queue, and
/// the role Scheduler sends with may send there: an invocation it cannot
/// deliver is parked, not dropped (tenant schedules get theirs in
/// shared::schedules).
#[test]
fn every_schedule_has_retries_and_a_dead_letter_queue_its_role_may_send_to() {
    let template = template();
    let mut problems = Problems::default();
    for (id, schedule) in
        resources(&template).into_iter().filter(|(_, r)| resource_type(r) == "AWS::Scheduler::Schedule")
    {
        let target = &schedule["Properties"]["Target"];
        if target["RetryPolicy"].as_mapping().is_none() {
            problems.add(format!("{id}: its target has no RetryPolicy"));
        }
        let Some(dlq) = referenced_id(&target["DeadLetterConfig"]["Arn"]) else {
            problems.add(format!("{id}: its target has no DeadLetterConfig naming a queue of the template"));
            continue;
        };
        let role = referenced_id(&target["RoleArn"]).unwrap_or_default();
        let may_send = one_or_many(&template["Resources"][role.as_str()]["Properties"]["Policies"])
            .into_iter()
            .flat_map(|policy| one_or_many(&policy["PolicyDocument"]["Statement"]))
            .filter(|statement| one_or_many(&statement["Action"]).iter().any(|a| a.as_str() == Some("sqs:SendMessage")))
            .flat_map(|statement| one_or_many(&statement["Resource"]))
            .any(|resource| referenced_id(resource).as_deref() == Some(dlq.as_str()));
        if !may_send {
            problems.add(format!("{id}: its role {role:?} may not sqs:SendMessage to its dead-letter queue {dlq}"));
        }
    }
    problems.check("schedules");
}

// --------------------------------------------------------------------- IAM --

/// One thing a call needs: an IAM action on a resource ARN, with the
/// condition keys the request carries.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Need {
    action: String,
    arn: String,
    context: BTreeMap<String, String>,
}

fn table_arn(table: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}")
}

/// The IAM action(s) and resource(s) of one logged call.
fn needs_of(call: &serde_json::Value) -> Result<Vec<Need>, String> {
    let service = call["service"].as_str().unwrap_or_default();
    let operation = call["operation"].as_str().unwrap_or_default();
    let resources = call["resources"].as_array().cloned().unwrap_or_default();
    let text = |r: &serde_json::Value, field: &str| r[field].as_str().map(str::to_owned);
    let need = |action: String, arn: String| Need { action, arn, context: BTreeMap::new() };
    // A task token names the task; IAM has no resource for SendTask* and
    // only a statement on "*" allows them, which the need "*" asks for (no
    // grant on a machine or an execution matches it).
    if service == "sfn" && matches!(operation, "SendTaskSuccess" | "SendTaskFailure" | "SendTaskHeartbeat") {
        return Ok(vec![need(format!("states:{operation}"), "*".into())]);
    }
    if resources.is_empty() {
        return Err(format!("{service}:{operation} names no resource (extend shared::aws::call_log)"));
    }
    resources
        .iter()
        .map(|r| {
            Ok(match (service, operation) {
                ("dynamodb", "GetItem" | "PutItem" | "UpdateItem" | "DeleteItem" | "Query" | "Scan") => {
                    let table = text(r, "table").ok_or("no table")?;
                    let arn = match text(r, "index") {
                        Some(index) => format!("{}/index/{index}", table_arn(&table)),
                        None => table_arn(&table),
                    };
                    need(format!("dynamodb:{operation}"), arn)
                }
                ("dynamodb", "TransactWriteItems" | "TransactGetItems" | "BatchGetItem" | "BatchWriteItem") => {
                    let action = text(r, "action").ok_or("no action")?;
                    need(format!("dynamodb:{action}"), table_arn(&text(r, "table").ok_or("no table")?))
                }
                ("s3", "PutObject" | "GetObject" | "HeadObject" | "DeleteObject" | "DeleteObjects") => {
                    let action = match operation {
                        "HeadObject" => "GetObject",
                        "DeleteObjects" => "DeleteObject",
                        other => other,
                    };
                    let (bucket, key) = (text(r, "bucket").ok_or("no bucket")?, text(r, "key").ok_or("no key")?);
                    need(format!("s3:{action}"), format!("arn:aws:s3:::{bucket}/{key}"))
                }
                ("s3", "HeadBucket") => {
                    need("s3:ListBucket".into(), format!("arn:aws:s3:::{}", text(r, "bucket").ok_or("no bucket")?))
                }
                ("s3", "ListObjectsV2") => Need {
                    action: "s3:ListBucket".into(),
                    arn: format!("arn:aws:s3:::{}", text(r, "bucket").ok_or("no bucket")?),
                    context: [("s3:prefix".to_owned(), text(r, "prefix").unwrap_or_default())].into(),
                },
                ("sqs", _) => {
                    let action = match operation {
                        "SendMessageBatch" => "SendMessage",
                        "DeleteMessageBatch" => "DeleteMessage",
                        other => other,
                    };
                    let url = text(r, "queue_url").ok_or("no queue_url")?;
                    let name = url.rsplit('/').next().unwrap_or_default();
                    need(format!("sqs:{action}"), format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"))
                }
                ("eventbridge", "PutEvents" | "DescribeEventBus") => need(
                    format!("events:{operation}"),
                    format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{}", text(r, "bus").ok_or("no bus")?),
                ),
                // SES v2 authorises a send on the sender's identity: the
                // template grants the domain identity (MailIdentity).
                ("sesv2", "SendEmail") => {
                    let from = text(r, "from").ok_or("no from")?;
                    let domain = from.rsplit('@').next().unwrap_or_default().to_ascii_lowercase();
                    need("ses:SendEmail".into(), format!("arn:aws:ses:{REGION}:{ACCOUNT}:identity/{domain}"))
                }
                // Starting needs the machine; stopping and describing need
                // the execution, a resource of its own
                // (`execution:<machine name>:<execution name>`).
                ("sfn", "StartExecution" | "DescribeStateMachine") => {
                    need(format!("states:{operation}"), text(r, "state_machine").ok_or("no state_machine")?)
                }
                ("sfn", "StopExecution" | "DescribeExecution") => {
                    need(format!("states:{operation}"), text(r, "execution").ok_or("no execution")?)
                }
                // Assuming the tenant data role with a session tag needs
                // sts:TagSession too (checked with the tag as context).
                ("sts", "AssumeRole") => need("sts:AssumeRole".into(), text(r, "role").ok_or("no role")?),
                ("scheduler", "CreateSchedule" | "UpdateSchedule" | "DeleteSchedule" | "GetSchedule") => {
                    let (group, name) = (text(r, "group").ok_or("no group")?, text(r, "name").ok_or("no name")?);
                    need(
                        format!("scheduler:{operation}"),
                        format!("arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/{name}"),
                    )
                }
                _ => return Err(format!("no IAM mapping for {service}:{operation} (extend tests/registry.rs)")),
            })
        })
        .collect::<Result<Vec<Need>, String>>()
        .map(|mut needs| {
            // A put with tags (`x-amz-tagging`) also needs s3:PutObjectTagging.
            if service == "s3" && operation == "PutObject" {
                let tagged = resources.iter().filter(|r| r["tagging"].as_bool() == Some(true));
                let arns: Vec<String> = tagged
                    .filter_map(|r| Some(format!("arn:aws:s3:::{}/{}", text(r, "bucket")?, text(r, "key")?)))
                    .collect();
                needs.extend(arns.into_iter().map(|arn| need("s3:PutObjectTagging".into(), arn)));
            }
            // Scheduler acts with the role a schedule names: making or
            // changing one passes it (`iam:PassRole` on that role).
            if service == "scheduler" {
                let roles = resources.iter().filter_map(|r| text(r, "role"));
                needs.extend(roles.map(|role| need("iam:PassRole".into(), role)));
            }
            if service == "sts" {
                let roles = resources.iter().filter_map(|r| text(r, "role"));
                needs.extend(roles.map(|role| need("sts:TagSession".into(), role)));
            }
            needs
        })
}

/// The secrets a function reads at its cold start: the platform keys when
/// its main serves HTTP (`lambda::serve`) or loads them
/// (`keys::load_platform`), the signing keys too when it issues tokens
/// (both in one `BatchGetSecretValue`, an action without a resource type).
fn cold_start_needs(template: &Yaml) -> Vec<(String, Vec<Need>)> {
    // A concrete ARN (Secrets Manager appends six random characters).
    let secret = |id: &str| arn_of(template, id).replace("-*", "-AbCdEf");
    let get =
        |id: &str| Need { action: "secretsmanager:GetSecretValue".into(), arn: secret(id), context: BTreeMap::new() };
    let batch = Need { action: "secretsmanager:BatchGetSecretValue".into(), arn: "*".into(), context: BTreeMap::new() };
    functions(template)
        .into_iter()
        .map(|(id, function)| {
            let main = std::fs::read_to_string(format!("{REPO}/functions/{}/src/main.rs", crate_of(function)))
                .unwrap_or_default();
            let mut needs = Vec::new();
            if main.contains("lambda::serve(") || main.contains("keys::load_platform") {
                needs.push(get("PlatformKeysSecret"));
            }
            if main.contains("Signing::Issue") {
                needs.push(get("SigningKeysSecret"));
                needs.push(batch.clone());
            }
            (id, needs)
        })
        .collect()
}

/// What Lambda does with the function's role for one event source mapping:
/// poll its queue, or read its stream and park a failed batch in its
/// OnFailure destination. These calls are not in the suite's log (the local
/// pollers stand in for them), so they are derived from the template.
fn mapping_needs(template: &Yaml, properties: &Yaml) -> Result<Vec<Need>, String> {
    let need = |action: &str, arn: &str| Need { action: action.into(), arn: arn.into(), context: BTreeMap::new() };
    let source = &properties["EventSourceArn"];
    let source_id = referenced_id(source).ok_or("EventSourceArn names no resource of the template")?;
    let arn = resolve(template, source)?;
    let actions: &[&str] = match resource_type(&template["Resources"][source_id.as_str()]) {
        "AWS::SQS::Queue" => {
            &["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
        }
        "AWS::DynamoDB::Table" => {
            &["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
        }
        other => return Err(format!("no rule for a mapping on {source_id} ({other}); extend mapping_needs")),
    };
    let mut needs: Vec<Need> = actions.iter().map(|action| need(action, &arn)).collect();
    let on_failure = &properties["DestinationConfig"]["OnFailure"]["Destination"];
    if !on_failure.is_null() {
        let id = referenced_id(on_failure).ok_or("OnFailure.Destination names no resource of the template")?;
        match resource_type(&template["Resources"][id.as_str()]) {
            "AWS::SQS::Queue" => needs.push(need("sqs:SendMessage", &resolve(template, on_failure)?)),
            other => return Err(format!("no rule for an OnFailure destination {id} ({other})")),
        }
    }
    Ok(needs)
}

/// The grants a function's policy may hold although the suite never uses
/// them, each with the reason why: its `Metadata` entry `UnexercisedGrants`,
/// a list of `{Sid: <statement>, Reason: <why the suite cannot use it>}`.
fn exemptions(function: &Yaml) -> Vec<(String, String)> {
    one_or_many(&function["Metadata"]["UnexercisedGrants"])
        .into_iter()
        .map(|entry| {
            let text = |key: &str| entry[key].as_str().unwrap_or_default().trim().to_owned();
            (text("Sid"), text("Reason"))
        })
        .collect()
}

/// IAM's wildcards: `*` any run of characters, `?` one.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

struct Statement {
    sid: String,
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
    condition: Yaml,
}

impl Statement {
    fn condition_holds(&self, context: &BTreeMap<String, String>) -> bool {
        let Some(operators) = self.condition.as_mapping() else { return true };
        operators.iter().all(|(operator, keys)| {
            let Some(keys) = keys.as_mapping() else { return false };
            keys.iter().all(|(key, values)| {
                let Some(actual) = key.as_str().and_then(|k| context.get(k)) else { return false };
                let values: Vec<&str> = one_or_many(values).into_iter().filter_map(Yaml::as_str).collect();
                match operator.as_str() {
                    Some("StringLike") => values.iter().any(|v| glob(v, actual)),
                    Some("StringEquals") => values.contains(&actual.as_str()),
                    _ => false,
                }
            })
        })
    }

    fn grants(&self, need: &Need) -> Option<(String, String)> {
        let action = self.actions.iter().find(|a| glob(&a.to_ascii_lowercase(), &need.action.to_ascii_lowercase()))?;
        let resource = self.resources.iter().find(|r| glob(r, &need.arn))?;
        self.condition_holds(&need.context).then(|| (action.clone(), resource.clone()))
    }
}

fn statements(template: &Yaml, function: &Yaml, problems: &mut Problems, id: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    for policy in one_or_many(&function["Properties"]["Policies"]) {
        if policy.as_mapping().is_none() {
            problems.add(format!("{id}: policy {policy:?} is not an inline document; the check cannot read it"));
            continue;
        }
        for (n, statement) in one_or_many(&policy["Statement"]).into_iter().enumerate() {
            let resolved: Result<Vec<String>, String> =
                one_or_many(&statement["Resource"]).into_iter().map(|r| resolve(template, r)).collect();
            let resources = resolved.unwrap_or_else(|e| {
                problems.add(format!("{id}: statement {n}: {e}"));
                Vec::new()
            });
            out.push(Statement {
                sid: statement["Sid"].as_str().map_or_else(|| format!("#{n}"), str::to_owned),
                allow: statement["Effect"].as_str() != Some("Deny"),
                actions: one_or_many(&statement["Action"])
                    .into_iter()
                    .filter_map(Yaml::as_str)
                    .map(str::to_owned)
                    .collect(),
                resources,
                condition: statement["Condition"].clone(),
            });
        }
    }
    out
}

/// The ARN of an observed resource, shortened for the report.
fn short(arn: &str) -> String {
    let arn = arn.replace(&format!(":{REGION}:{ACCOUNT}:"), "::");
    // Execution names are execution ids: one line per machine, not per run.
    if let Some((machine, run)) = arn.strip_prefix("arn:aws:states::execution:").and_then(|r| r.rsplit_once(':'))
        && run.len() >= 32
    {
        return format!("arn:aws:states::execution:{machine}:<id>");
    }
    // Object keys hold tenant and object ids; their shape is what matters.
    match arn.split_once(":::") {
        Some((service, rest)) if service == "arn:aws:s3" => match rest.split_once('/') {
            Some((bucket, key)) => {
                let shape: Vec<&str> = key.split('/').map(|s| if s.len() >= 32 { "<id>" } else { s }).collect();
                format!("{service}:::{bucket}/{}", shape.join("/"))
            }
            None => arn,
        },
        _ => arn,
    }
}

#[test]
fn every_function_policy_grants_the_calls_it_was_seen_making() {
    let Some(path) = std::env::var_os("REGISTRY_CALL_LOG").filter(|p| !p.is_empty()) else {
        println!("skipped: REGISTRY_CALL_LOG is not set (scripts/test.sh sets it to the suite's AWS_CALL_LOG)");
        return;
    };
    let log = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (did the suite run with AWS_CALL_LOG?)", path.to_string_lossy()));
    let template = template();
    let mut problems = Problems::default();
    let mut policies = BTreeMap::new();
    for (id, function) in functions(&template) {
        policies.insert(id.clone(), statements(&template, function, &mut problems, &id));
    }

    // Every distinct need of every function, with how many calls had it.
    let mut needs: BTreeMap<(String, String, Need), usize> = BTreeMap::new();
    let mut calls = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let call: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("log line {line}: {e}"));
        // Made with the tenant data role's credentials, not the function's:
        // every_call_made_as_the_tenant_data_role_passes_its_condition.
        if call.get("role").is_some() {
            continue;
        }
        calls += 1;
        let function = call["function"].as_str().unwrap_or_default().to_owned();
        let operation = format!(
            "{}:{}",
            call["service"].as_str().unwrap_or_default(),
            call["operation"].as_str().unwrap_or_default()
        );
        match needs_of(&call) {
            Ok(list) => {
                for need in list {
                    *needs.entry((function.clone(), operation.clone(), need)).or_default() += 1;
                }
            }
            Err(e) => problems.add(format!("{function}: {e}")),
        }
    }
    println!("AWS call log: {calls} calls, {} distinct (function, operation, action, resource)", needs.len());
    for (mapping, function, properties) in mappings(&template) {
        match mapping_needs(&template, properties) {
            Ok(list) => {
                for need in list {
                    *needs
                        .entry((function.clone(), format!("lambda:EventSourceMapping {mapping}"), need))
                        .or_default() += 1;
                }
            }
            Err(e) => problems.add(format!("{mapping}: {e}")),
        }
    }

    // What a cold start reads (shared::keys), worked out from each main.rs:
    // locally the one server reads the keys once, outside any function, so
    // the suite's log cannot show it.
    for (function, needs_of_start) in cold_start_needs(&template) {
        for need in needs_of_start {
            *needs.entry((function.clone(), "cold start (shared::keys)".to_owned(), need)).or_default() += 1;
        }
    }

    let mut used: BTreeSet<(String, String, String, String)> = BTreeSet::new();
    let mut missing: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
    for ((function, operation, need), _count) in &needs {
        let Some(statements) = policies.get(function) else {
            problems.add(format!("calls made for {function}, which template.yaml does not have"));
            continue;
        };
        let denied = statements.iter().filter(|s| !s.allow).any(|s| s.grants(need).is_some());
        let grant = statements.iter().filter(|s| s.allow).find_map(|s| s.grants(need).map(|g| (s.sid.clone(), g)));
        match grant {
            Some((sid, (action, resource))) if !denied => {
                used.insert((function.clone(), sid, action, resource));
            }
            _ => {
                missing
                    .entry((function.clone(), need.action.clone(), short(&need.arn)))
                    .or_default()
                    .insert(operation.clone());
            }
        }
    }
    for ((function, action, arn), operations) in &missing {
        problems.add(format!(
            "{function} needs {action} on {arn} (seen in {}) but its policy does not grant it",
            operations.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }

    // Grants nothing used fail: least privilege is checked, not hoped for.
    // One the suite cannot use (a path it cannot run locally) is named in
    // the function's `UnexercisedGrants` metadata with its reason.
    let mut exempted = Vec::new();
    let mut exempted_but_used = BTreeSet::new();
    for (function, statements) in &policies {
        let exempt = exemptions(&template["Resources"][function.as_str()]);
        for (sid, reason) in &exempt {
            if !statements.iter().any(|s| s.allow && &s.sid == sid) {
                problems.add(format!("{function}: UnexercisedGrants names [{sid}], which its policy does not have"));
            }
            if reason.is_empty() {
                problems.add(format!("{function}: UnexercisedGrants [{sid}] gives no Reason"));
            }
        }
        for s in statements.iter().filter(|s| s.allow) {
            let reason = exempt.iter().find(|(sid, _)| sid == &s.sid).map(|(_, reason)| reason);
            for action in &s.actions {
                for resource in &s.resources {
                    let grant = format!("{function} [{}]: {action} on {}", s.sid, short(resource));
                    let was_used = used.contains(&(function.clone(), s.sid.clone(), action.clone(), resource.clone()));
                    match (was_used, reason) {
                        (true, Some(_)) => {
                            exempted_but_used.insert(format!("{function} [{}]", s.sid));
                        }
                        (true, None) => {}
                        (false, Some(reason)) => exempted.push(format!("{grant} ({reason})")),
                        (false, None) => problems.add(format!(
                            "{grant}: granted, but no call of the suite (nor of its event source mappings) used it; \
                             remove it, or name [{}] in {function}'s Metadata UnexercisedGrants with a reason",
                            s.sid
                        )),
                    }
                }
            }
        }
    }
    if !exempted.is_empty() {
        println!(
            "exempted: {} grant(s) unused by the suite (UnexercisedGrants):\n  - {}",
            exempted.len(),
            exempted.join("\n  - ")
        );
    }
    for entry in &exempted_but_used {
        println!(
            "note: {entry} is in UnexercisedGrants, yet the suite used some of it (is the exemption still needed?)"
        );
    }
    problems.check("IAM policies against the observed AWS calls");
}

#[test]
fn the_checker_reads_names_paths_and_wildcards_like_aws() {
    assert_eq!(kebab("TenantProvisioningQueue"), "tenant-provisioning-queue");
    assert_eq!(kebab("EventsDlq"), "events-dlq");
    assert_eq!(kebab("HTTPApi"), "http-api");
    assert!(apigw_matches("/v1/auth/{proxy+}", "/v1/auth/login"));
    assert!(apigw_matches("/v1/auth/{proxy+}", "/v1/auth/invitations/accept"));
    assert!(!apigw_matches("/v1/auth/{proxy+}", "/v1/auth"));
    assert!(apigw_matches("/v1/tenants/{id}/credits", "/v1/tenants/abc/credits"));
    assert!(!apigw_matches("/v1/tenants", "/v1/tenants/abc"));
    assert!(specificity("/v1/tenants/{id}/credits", "POST") > specificity("/v1/tenants/{proxy+}", "ANY"));
    assert!(glob("arn:aws:s3:::b/tenants/*", "arn:aws:s3:::b/tenants/t/photos/p"));
    assert!(!glob("arn:aws:s3:::b/tenants/*", "arn:aws:s3:::b/other/x"));
    assert!(glob("dynamodb:*", "dynamodb:query"));
    let table = "arn:aws:dynamodb:us-east-1:123456789012:table/t";
    assert!(!glob(table, &format!("{table}/index/GSI1")), "a table grant does not cover its indexes");

    // Step Functions: the machine, its executions and SendTask* ("*") are
    // three kinds of resource, and a grant on one covers none of the others.
    let sfn_template: Yaml =
        serde_yaml::from_str("Resources:\n  WorkflowInterpreter:\n    Type: AWS::StepFunctions::StateMachine\n")
            .expect("template");
    let value = |text: &str| serde_yaml::from_str::<Yaml>(text).expect("policy value");
    let machine = "arn:aws:states:us-east-1:123456789012:stateMachine:saas-local-workflow-interpreter";
    assert_eq!(arn_of(&sfn_template, "WorkflowInterpreter"), machine, "the name infra/local_stack.py creates");
    assert_eq!(resolve(&sfn_template, &value("!Ref WorkflowInterpreter")).as_deref(), Ok(machine), "Ref is the ARN");
    assert_eq!(resolve(&sfn_template, &value("!GetAtt WorkflowInterpreter.Arn")).as_deref(), Ok(machine));
    assert_eq!(
        resolve(&sfn_template, &value("!GetAtt WorkflowInterpreter.Name")).as_deref(),
        Ok("saas-local-workflow-interpreter")
    );
    let sub = "!Sub \"arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${WorkflowInterpreter.Name}:*\"";
    let executions = resolve(&sfn_template, &value(sub)).expect("execution pattern");
    assert_eq!(executions, "arn:aws:states:us-east-1:123456789012:execution:saas-local-workflow-interpreter:*");
    let run = "arn:aws:states:us-east-1:123456789012:execution:saas-local-workflow-interpreter:0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e5f";
    let needs = |operation: &str, resources: serde_json::Value| {
        let call = serde_json::json!({ "service": "sfn", "operation": operation, "resources": resources });
        needs_of(&call).unwrap_or_else(|e| panic!("sfn:{operation}: {e}")).remove(0)
    };
    let start = needs("StartExecution", serde_json::json!([{ "state_machine": machine }]));
    let stop = needs("StopExecution", serde_json::json!([{ "execution": run }]));
    let stop_other =
        needs("StopExecution", serde_json::json!([{ "execution": run.replace("interpreter:", "interpreter-v2:") }]));
    let answer = needs("SendTaskSuccess", serde_json::json!([]));
    assert_eq!((start.action.as_str(), stop.action.as_str()), ("states:StartExecution", "states:StopExecution"));
    let allow = |actions: &[&str], resource: &str| Statement {
        sid: "Test".into(),
        allow: true,
        actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        resources: vec![resource.to_owned()],
        condition: Yaml::Null,
    };
    let all = ["states:StartExecution", "states:StopExecution", "states:SendTaskSuccess"];
    let on_machine = allow(&all, machine);
    assert!(on_machine.grants(&start).is_some());
    assert!(on_machine.grants(&stop).is_none(), "a grant on the machine does not cover its executions");
    assert!(on_machine.grants(&answer).is_none(), "SendTask* are allowed only on \"*\"");
    let on_executions = allow(&all, &executions);
    assert!(on_executions.grants(&stop).is_some(), "execution:<machine>:* covers each of its executions");
    assert!(on_executions.grants(&stop_other).is_none(), "but not those of a machine whose name it prefixes");
    assert!(on_executions.grants(&start).is_none(), "nor the machine itself");
    assert!(allow(&all, "*").grants(&answer).is_some());
    assert_eq!(short(run), "arn:aws:states::execution:saas-local-workflow-interpreter:<id>");
    let body = "fn f() {\n    principal.require(Role::Admin, Scope::TenantWrite, \"t\")?;\n}\n";
    assert_eq!(scopes_named(body), BTreeSet::from(["tenant:write"]));
    let source = "fn require(p: &P) {\n    p.require(Role::Admin, Scope::WebhooksManage, \"w\")\n}\n\nasync fn list() {\n    require(&principal)?;\n}\n";
    let list = fn_body(source, "list").expect("list");
    assert_eq!(scopes_required(source, "", list), BTreeSet::from(["webhooks:manage"]));
    let module = "use crate::require;\n\nasync fn list() {\n    require(&principal)?;\n}\n";
    let list = fn_body(module, "list").expect("list");
    assert_eq!(scopes_required(module, source, list), BTreeSet::from(["webhooks:manage"]));
}

// ----------------------------------------------------------------- openapi --

/// The roles a handler's body names, as the spec's `bearer` requirement
/// spells them: `Role::Developer` -> `developer`, a platform-admin check ->
/// `platform_admin`. Helpers of the same file it calls count too.
fn roles_required(source: &str, body: &str) -> BTreeSet<String> {
    let mut bodies = vec![body];
    let mut rest = body.split_once('(').map_or("", |(_, r)| r);
    while let Some(open) = rest.find('(') {
        let name_start = rest[..open].rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
        let name = &rest[name_start..open];
        if !name.is_empty()
            && !rest[..name_start].ends_with('.')
            && !rest[..name_start].ends_with("::")
            && let Some(helper) = fn_body(source, name)
        {
            bodies.push(helper);
        }
        rest = &rest[open + 1..];
    }
    let mut roles = BTreeSet::new();
    for text in bodies {
        for role in ["Owner", "Admin", "Developer", "User"] {
            let needle = format!("Role::{role}");
            if text
                .match_indices(&needle)
                .any(|(at, _)| !text[at + needle.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
            {
                roles.insert(role.to_ascii_lowercase());
            }
        }
        if text.contains("require_platform_admin(") {
            roles.insert("platform_admin".to_owned());
        }
    }
    roles
}

fn generated_document() -> String {
    format!("{}\n", serde_json::to_string_pretty(&local::openapi::document()).expect("document serialises"))
}

/// docs/openapi.json and docs/events/ are what the code generates today
/// (`cargo run -p local --bin openapi -- --write` refreshes them), so the
/// document the docs function serves is the code's.
#[test]
fn the_committed_openapi_document_and_event_schemas_are_fresh() {
    let mut problems = Problems::default();
    if read("docs/openapi.json") != generated_document() {
        problems.add("docs/openapi.json is stale: run `cargo run -p local --bin openapi -- --write` and commit it");
    }
    let schemas = local::webhooks_doc::event_schemas();
    let mut expected: BTreeSet<String> = schemas.iter().map(|(name, _)| name.clone()).collect();
    expected.insert("README.md".to_owned());
    let present: BTreeSet<String> = std::fs::read_dir(format!("{REPO}/docs/events"))
        .map(|dir| dir.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    for name in present.symmetric_difference(&expected) {
        problems.add(format!("docs/events/{name}: present and expected differ (regenerate)"));
    }
    for (name, schema) in &schemas {
        let text = std::fs::read_to_string(format!("{REPO}/docs/events/{name}")).unwrap_or_default();
        let fresh = format!("{}\n", serde_json::to_string_pretty(schema).expect("schema serialises"));
        if text != fresh {
            problems.add(format!("docs/events/{name} is stale (regenerate)"));
        }
    }
    problems.check("generated API documents");
}

/// Every route a group serves is an operation of the document and every
/// operation is served; each operation's role and API key scope are the
/// ones its handler requires; public operations take no credentials.
#[test]
fn the_openapi_document_describes_every_route_with_its_role_and_scope() {
    let doc = local::openapi::document();
    let template = template();
    let crates: BTreeMap<String, String> = functions(&template).into_iter().map(|(id, f)| (id, crate_of(f))).collect();
    let mut problems = Problems::default();
    let mut served = BTreeMap::new();
    for (function, routes) in local::route_groups() {
        for route in served_routes(&routes) {
            served.insert(route, function);
        }
    }
    let mut described = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let key = (method.to_ascii_uppercase(), path.clone());
            described.insert(key.clone());
            let Some(function) = served.get(&key) else {
                problems.add(format!("the document describes {} {path}, which no group serves", key.0));
                continue;
            };
            let Some(handler) = operation["operationId"].as_str() else {
                problems.add(format!("{} {path}: no operationId", key.0));
                continue;
            };
            // A handler served under two methods has the method in its ids.
            let handler = handler.strip_suffix(&format!("_{method}")).unwrap_or(handler);
            let Some(source) = crate_sources(&crates[*function]).into_iter().find(|s| fn_body(s, handler).is_some())
            else {
                // Shared handlers (`shared::http::health`) live outside the groups.
                continue;
            };
            let Some(body) = fn_body(&source, handler) else { continue };
            let security = operation["security"].as_array().cloned().unwrap_or_default();
            let takes_credentials = ["Principal", "SignedIn", "Fresh"].iter().any(|extractor| body.contains(extractor));
            if security.is_empty() == takes_credentials {
                problems.add(format!(
                    "{} {path}: {handler} {} credentials but the document says {}",
                    key.0,
                    if takes_credentials { "takes" } else { "takes no" },
                    if security.is_empty() { "public" } else { "authenticated" }
                ));
            }
            let scope = operation["x-api-key-scope"].as_str();
            let root = format!("functions/{}/src/lib.rs", crates[*function]);
            let scopes = scopes_required(&source, &crate_root_of(&root), body);
            if scopes.len() > 1 || scopes.iter().next().copied() != scope {
                problems.add(format!(
                    "{} {path}: the document's API key scope is {scope:?}; {handler} requires {scopes:?}",
                    key.0
                ));
            }
            let roles = roles_required(&source, body);
            match operation["x-required-role"].as_str() {
                Some(role) if !roles.is_empty() && !roles.contains(role) => {
                    problems.add(format!("{} {path}: the document's role is {role}; {handler} names {roles:?}", key.0))
                }
                None if !security.is_empty() => problems.add(format!("{} {path}: authenticated but no role", key.0)),
                _ => {}
            }
        }
    }
    for ((method, path), function) in &served {
        if !described.contains(&(method.clone(), path.clone())) {
            problems.add(format!("{function} serves {method} {path}, which the OpenAPI document does not describe"));
        }
    }
    problems.check("OpenAPI document against the routers");
}

// ------------------------------------------------------ tenant data role --

const TENANT_ROLE: &str = "TenantDataRole";

/// The inline statements of an `AWS::IAM::Role`.
fn role_statements(template: &Yaml, id: &str) -> Vec<Statement> {
    let mut problems = Problems::default();
    let role = &template["Resources"][id];
    let mut out = Vec::new();
    // `statements` reads a function's `Properties.Policies` (documents);
    // give it this role's documents in that shape.
    let documents: Vec<Yaml> =
        one_or_many(&role["Properties"]["Policies"]).into_iter().map(|p| p["PolicyDocument"].clone()).collect();
    let mut properties = serde_yaml::Mapping::new();
    properties.insert("Policies".into(), Yaml::Sequence(documents));
    let mut as_function = serde_yaml::Mapping::new();
    as_function.insert("Properties".into(), Yaml::Mapping(properties));
    out.extend(statements(template, &Yaml::Mapping(as_function), &mut problems, id));
    problems.check(id);
    out
}

/// IAM's answer for one read made as the tenant data role: the action and
/// resource granted, and the condition true for the request's partition
/// keys (`dynamodb:LeadingKeys`) with `${aws:PrincipalTag/tenant}` replaced
/// by the session's tag. Operators the evaluator does not know fail closed.
fn tenant_role_allows(
    statements: &[Statement],
    action: &str,
    arn: &str,
    tenant: &str,
    leading_keys: &[String],
) -> bool {
    statements.iter().filter(|s| s.allow).any(|s| {
        let action_ok = s.actions.iter().any(|a| glob(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()));
        let resource_ok = s.resources.iter().any(|r| glob(r, arn));
        let Some(operators) = s.condition.as_mapping() else { return false };
        let condition_ok = operators.iter().all(|(operator, keys)| {
            let Some(keys) = keys.as_mapping() else { return false };
            keys.iter().all(|(key, values)| {
                if key.as_str() != Some("dynamodb:LeadingKeys") {
                    return false;
                }
                let patterns: Vec<String> = one_or_many(values)
                    .into_iter()
                    .filter_map(Yaml::as_str)
                    .map(|v| v.replace("${aws:PrincipalTag/tenant}", tenant))
                    .collect();
                match operator.as_str() {
                    Some("ForAllValues:StringLike") => leading_keys.iter().all(|k| patterns.iter().any(|p| glob(p, k))),
                    // `"Null": {key: "false"}`: the request names the key.
                    Some("Null") => patterns == ["false"] && !leading_keys.is_empty(),
                    _ => false,
                }
            })
        });
        action_ok && resource_ok && condition_ok
    })
}

/// The role as data (moto enforces no IAM, so the policy is checked here):
/// what it grants, to whom, and what its condition lets through.
#[test]
fn the_tenant_data_role_reads_only_its_own_tenants_partitions() {
    let template = template();
    let role = role_statements(&template, TENANT_ROLE);
    let table = arn_of(&template, "Table");
    let allowed: Vec<&String> = role.iter().filter(|s| s.allow).flat_map(|s| &s.actions).collect();
    assert_eq!(
        allowed,
        ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"],
        "reads by key only: no Scan, no write"
    );

    let tenant = "0b5c1d2e-1111-4a4a-8a8a-000000000001";
    let other = "0b5c1d2e-1111-4a4a-8a8a-000000000002";
    let allows = |action: &str, arn: &str, keys: &[&str]| {
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        tenant_role_allows(&role, action, arn, tenant, &keys)
    };
    let own = format!("T#{tenant}#");
    assert!(allows("dynamodb:GetItem", &table, &[&own]));
    assert!(allows("dynamodb:Query", &format!("{table}/index/GSI1"), &[&format!("T#{tenant}#PROJECTS")]));
    assert!(allows("dynamodb:BatchGetItem", &table, &[&own, &format!("T#{tenant}#CUSTOMER#1")]));
    assert!(!allows("dynamodb:GetItem", &table, &[&format!("T#{other}#")]), "another tenant");
    assert!(!allows("dynamodb:BatchGetItem", &table, &[&own, &format!("T#{other}#")]), "one foreign key in a batch");
    // Delimiter-exact: a tenant id that is a prefix of another's reads only its own.
    assert!(!allows("dynamodb:GetItem", &table, &[&format!("T#{tenant}0#")]));
    assert!(!allows("dynamodb:GetItem", &table, &[&format!("T#{tenant}")]), "no delimiter");
    assert!(!allows("dynamodb:GetItem", &table, &["EMAIL#someone@example.com"]), "platform partitions");
    assert!(!allows("dynamodb:Query", &table, &[]), "a request naming no partition");
    assert!(!allows("dynamodb:Scan", &table, &[]));
    assert!(!allows("dynamodb:PutItem", &table, &[&own]));
    assert!(!allows("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:123456789012:table/another", &[&own]));
    // An empty tag would make the pattern T##*: the trust policy requires one.
    let trust = &template["Resources"][TENANT_ROLE]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0];
    let trusted_actions: Vec<&str> = one_or_many(&trust["Action"]).into_iter().filter_map(Yaml::as_str).collect();
    assert_eq!(trusted_actions, ["sts:AssumeRole", "sts:TagSession"]);
    assert_eq!(trust["Condition"]["StringLike"]["aws:RequestTag/tenant"].as_str(), Some("?*"));
    let tag_keys: Vec<&str> = one_or_many(&trust["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"])
        .into_iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(tag_keys, ["tenant"], "no other session tag can be set");
    let principal = resolve(&template, &trust["Condition"]["ArnLike"]["aws:PrincipalArn"]).expect("principal");
    assert!(principal.ends_with("-*FunctionRole-*"), "this stack's function roles only: {principal}");

    // Every function told the role's ARN may assume it, tagged; no other may.
    let role_arn = arn_of(&template, TENANT_ROLE);
    for (id, function) in functions(&template) {
        let told = !function["Properties"]["Environment"]["Variables"]["TENANT_DATA_ROLE_ARN"].is_null();
        let mut problems = Problems::default();
        let grants = statements(&template, function, &mut problems, &id);
        let may = |action: &str| {
            grants.iter().any(|s| s.allow && s.actions.iter().any(|a| a == action) && s.resources.contains(&role_arn))
        };
        assert_eq!(
            told,
            may("sts:AssumeRole") && may("sts:TagSession"),
            "{id}: TENANT_DATA_ROLE_ARN and its grant go together"
        );
    }
}

/// The code path: every read the suite made with the tenant data role's
/// credentials (logged with the session's tenant and the partition keys it
/// named) passes the role's condition, and the suite took that path.
#[test]
fn every_call_made_as_the_tenant_data_role_passes_its_condition() {
    let Some(path) = std::env::var_os("REGISTRY_CALL_LOG").filter(|p| !p.is_empty()) else {
        println!("skipped: REGISTRY_CALL_LOG is not set (scripts/test.sh sets it to the suite's AWS_CALL_LOG)");
        return;
    };
    let log = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.to_string_lossy()));
    let template = template();
    let role = role_statements(&template, TENANT_ROLE);
    let mut problems = Problems::default();
    let (mut reads, mut assumed) = (0, BTreeSet::new());
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let call: serde_json::Value = serde_json::from_str(line).expect("log line");
        if call["service"] == "sts" && call["operation"] == "AssumeRole" {
            let tenant = call["resources"][0]["tags"]["tenant"].as_str().unwrap_or_default().to_owned();
            if tenant.is_empty() {
                problems.add(format!("{}: AssumeRole without a tenant tag", call["function"]));
            }
            assumed.insert(tenant);
            continue;
        }
        if call["role"] != TENANT_ROLE {
            continue;
        }
        reads += 1;
        let tenant = call["tenant"].as_str().unwrap_or_default();
        let leading_keys: Vec<String> = call["leading_keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect();
        match needs_of(&call) {
            Ok(needs) => {
                for need in needs {
                    if !tenant_role_allows(&role, &need.action, &need.arn, tenant, &leading_keys) {
                        problems.add(format!(
                            "{} as {TENANT_ROLE} for tenant {tenant}: {} on {} with keys {leading_keys:?} is denied",
                            call["function"],
                            need.action,
                            short(&need.arn)
                        ));
                    }
                }
            }
            Err(e) => problems.add(e),
        }
        if !assumed.contains(tenant) {
            problems.add(format!("a read as {TENANT_ROLE} for tenant {tenant} before any AssumeRole tagged with it"));
        }
    }
    println!("{TENANT_ROLE}: {reads} reads by {} tenant sessions", assumed.len());
    assert!(reads > 0, "the suite made no read as {TENANT_ROLE}: is TENANT_DATA_ROLE_ARN set?");
    problems.check("reads made as the tenant data role");
}

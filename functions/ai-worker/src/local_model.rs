//! The local backend: deterministic rules in place of a model, so the whole
//! AI pipeline runs (and is tested) with no model service. Its answers take
//! the same path as a model's (JSON text, parsed and checked by the worker).
//!
//! What it answers, from the job's context only:
//! - analysis: with `n` the requirement and acceptance lines,
//!   `complexity_score = min(10, 2 + 0.3 n)` (one decimal),
//!   `estimated_hours = 8 + 4 n`; risk factors by keywords (security,
//!   compliance, performance, integrations); `microservices_architecture`
//!   above 15 lines, else `modular_monolith`; a component per functional
//!   requirement (at most 8); the project's technology stack sorted into
//!   kinds by a fixed list;
//! - each component: Python files with one function or class per functional
//!   requirement, one test per requirement and acceptance criterion.
//!
//! Like a payment sandbox's test card numbers, two markers in a task's
//! title drive the failure paths end to end: `[model:refuse]` makes every
//! call a refusal (the job fails and is refunded), `[model:slow]` makes each
//! call take 1.5 s (a job can be watched and cancelled mid-way). Token counts
//! are 0: there is no tokenizer.

use std::{collections::BTreeMap, time::Instant};

use serde_json::{Value, json};
use shared::domain::ai::{Component, JobContext, Phase};

use crate::backend::{ModelError, ModelReply, ModelRequest};

pub const MODEL: &str = "local-rules-v1";
pub const REFUSE_MARKER: &str = "[model:refuse]";
pub const SLOW_MARKER: &str = "[model:slow]";
const SLOW_CALL: std::time::Duration = std::time::Duration::from_millis(1_500);

#[derive(Debug, Clone, Default)]
pub struct LocalModel;

impl LocalModel {
    pub async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelReply, ModelError> {
        let started = Instant::now();
        let context = request.context;
        if context.title.contains(REFUSE_MARKER) {
            return Err(ModelError::Refused(format!(
                "the task's title asks the local model to refuse ({REFUSE_MARKER})"
            )));
        }
        if context.title.contains(SLOW_MARKER) {
            tokio::time::sleep(SLOW_CALL).await;
        }
        let answer = match request.phase {
            Phase::TaskAnalysis => analysis(context),
            Phase::RequirementsAnalysis => json!({"requirements": context.requirement_lines()}),
            Phase::ArchitectureDesign => json!({"components": functional(context).iter().map(|f| json!({
                "name": format!("{f}_service"), "responsibility": format!("implements {}", f.replace('_', " "))
            })).collect::<Vec<_>>()}),
            Phase::Generate(component) => json!({"files": files(component, context)}),
            Phase::SecurityReview | Phase::Packaging => {
                return Err(ModelError::Refused(format!("{} does not call a model", request.phase.name())));
            }
        };
        Ok(ModelReply {
            text: answer.to_string(),
            input_tokens: 0,
            output_tokens: 0,
            latency_ms: started.elapsed().as_millis() as i64,
            model: MODEL.to_owned(),
        })
    }
}

/// Functional requirements as identifiers (`multi_currency_support`); the
/// title's words when there are none.
fn functional(context: &JobContext) -> Vec<String> {
    let listed: Vec<String> = context.requirements["functional"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(identifier)
        .filter(|s| !s.is_empty())
        .take(8)
        .collect();
    if listed.is_empty() {
        vec![identifier(&context.title)].into_iter().filter(|s| !s.is_empty()).collect()
    } else {
        listed
    }
}

fn identifier(text: &str) -> String {
    let words: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(6)
        .map(str::to_ascii_lowercase)
        .collect();
    let joined = words.join("_");
    if joined.starts_with(|c: char| c.is_ascii_digit()) { format!("r_{joined}") } else { joined }
}

fn mentions(context: &JobContext, words: &[&str]) -> bool {
    let text = format!(
        "{} {} {}",
        context.requirement_lines().join(" "),
        context.description.as_deref().unwrap_or(""),
        context.compliance_requirements.join(" ")
    )
    .to_ascii_lowercase();
    words.iter().any(|w| text.contains(w))
}

fn analysis(context: &JobContext) -> Value {
    let n = context.requirement_lines().len() as f64;
    let complexity = ((2.0 + 0.3 * n).min(10.0) * 10.0).round() / 10.0;
    let mut risks = Vec::new();
    if mentions(context, &["security", "encrypt", "fraud", "auth", "3d_secure", "penetration"]) {
        risks.push("high_security_requirements");
    }
    if !context.compliance_requirements.is_empty() || mentions(context, &["compliance", "pci", "gdpr", "sox", "hipaa"])
    {
        risks.push("regulatory_compliance");
    }
    if mentions(context, &["ms_", "_ms", "tps", "throughput", "availability", "response_time", "load"]) {
        risks.push("performance_targets");
    }
    if context.requirements["integrations"].as_array().is_some_and(|a| !a.is_empty()) {
        risks.push("external_integrations");
    }
    let kinds: &[(&str, &[&str])] = &[
        ("languages", &["python", "rust", "go", "java", "typescript", "javascript", "kotlin", "c#", "ruby"]),
        ("frameworks", &["fastapi", "django", "flask", "axum", "spring", "react", "express", "rails", "sqlalchemy"]),
        ("databases", &["postgresql", "mysql", "redis", "dynamodb", "mongodb", "sqlite"]),
        ("message_queues", &["kafka", "rabbitmq", "sqs", "nats"]),
        ("monitoring", &["prometheus", "grafana", "datadog", "cloudwatch"]),
    ];
    let mut recommendations: BTreeMap<&str, Vec<String>> = kinds.iter().map(|(k, _)| (*k, Vec::new())).collect();
    for tech in &context.technology_stack {
        let lower = tech.to_ascii_lowercase();
        let kind = kinds.iter().find(|(_, names)| names.contains(&lower.as_str())).map_or("other", |(k, _)| k);
        recommendations.entry(kind).or_default().push(tech.clone());
    }
    json!({
        "complexity_score": complexity,
        "estimated_hours": 8.0 + 4.0 * n,
        "risk_factors": risks,
        "recommended_approach": if n > 15.0 { "microservices_architecture" } else { "modular_monolith" },
        "architecture_components": functional(context).iter().map(|f| format!("{f}_service")).collect::<Vec<_>>(),
        "technology_recommendations": recommendations,
    })
}

fn files(component: Component, context: &JobContext) -> Vec<Value> {
    let features = functional(context);
    let module = features.first().cloned().unwrap_or_else(|| "task".into());
    let file = |path: String, content: String| json!({"path": path, "content": content});
    match component {
        Component::ApiEndpoints => vec![file(
            format!("api/{module}_endpoints.py"),
            format!(
                "from fastapi import APIRouter\n\nrouter = APIRouter()\n\n{}",
                features
                    .iter()
                    .map(|f| format!("@router.post(\"/{f}\")\nasync def {f}(request: dict) -> dict:\n    return {{\"status\": \"accepted\"}}\n"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        )],
        Component::DataModels => vec![file(
            format!("models/{module}_models.py"),
            format!(
                "from dataclasses import dataclass\n\n{}",
                features.iter().map(|f| format!("@dataclass\nclass {}:\n    id: str\n", pascal(f))).collect::<Vec<_>>().join("\n")
            ),
        )],
        Component::BusinessLogic => vec![file(
            format!("services/{module}_service.py"),
            features.iter().map(|f| format!("def {f}(payload: dict) -> dict:\n    return dict(payload)\n")).collect::<Vec<_>>().join("\n"),
        )],
        Component::DatabaseSchemas => vec![file(
            "db/schema.sql".into(),
            features.iter().map(|f| format!("CREATE TABLE {f} (\n    id TEXT PRIMARY KEY\n);\n")).collect::<Vec<_>>().join("\n"),
        )],
        Component::TestSuites => {
            let mut tests: Vec<String> = features.iter().map(|f| format!("def test_{f}():\n    assert {f}({{}}) == {{}}\n")).collect();
            tests.extend(
                context.acceptance_criteria.iter().enumerate().map(|(i, c)| {
                    format!("def test_acceptance_{i}():\n    # {}\n    assert True\n", c.replace('\n', " "))
                }),
            );
            vec![file(format!("tests/test_{module}.py"), format!("from services.{module}_service import *\n\n{}", tests.join("\n")))]
        }
        Component::Documentation => vec![file(
            "docs/README.md".into(),
            format!(
                "# {}\n\n{}\n",
                context.title.replace('\n', " "),
                context.requirement_lines().iter().map(|l| format!("- {l}")).collect::<Vec<_>>().join("\n")
            ),
        )],
        Component::DeploymentConfigs => vec![file(
            "deploy/Dockerfile".into(),
            "FROM python:3.11-slim\nCOPY . /app\nWORKDIR /app\nCMD [\"uvicorn\", \"api.main:app\"]\n".into(),
        )],
    }
}

fn pascal(identifier: &str) -> String {
    identifier
        .split('_')
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

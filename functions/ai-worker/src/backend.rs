//! Model backends: what answers a phase's prompt. The worker takes any of
//! [`ConfiguredBackend`], chosen by `AI_BACKEND`:
//! - `local` (the default, what `make run` and the tests use): the
//!   deterministic rules of [`crate::local_model`], no network;
//! - `openai`: any OpenAI-compatible `POST <AI_OPENAI_BASE_URL>/chat/completions`
//!   (`AI_MODEL_ID`, bearer `AI_OPENAI_API_KEY`);
//! - `bedrock`: Amazon Bedrock's Converse API (`AI_MODEL_ID`), with the
//!   function's role (`bedrock:InvokeModel`).
//!
//! Every call has a deadline (`AI_MODEL_TIMEOUT_MS`, 20 s by default) and
//! its failure is classified ([`ModelError`]) so the worker knows whether
//! trying again can help. The SDK's own retries are off: the worker's are
//! the only ones, so a phase's attempts are counted in one place.

use std::time::{Duration, Instant};

use aws_sdk_bedrockruntime::{
    error::{ProvideErrorMetadata, SdkError},
    types::{ContentBlock, ConversationRole, InferenceConfiguration, Message, SystemContentBlock},
};
use serde_json::{Value, json};
use shared::domain::ai::{JobContext, Phase};

/// What a phase asks the model.
pub struct ModelRequest<'a> {
    pub phase: Phase,
    pub system: &'a str,
    pub prompt: String,
    /// The job's context, for the local backend (the others read the prompt).
    pub context: &'a JobContext,
    pub max_tokens: i32,
}

/// The model's answer and what the call cost, as the backend reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelReply {
    pub text: String,
    /// 0 where the backend reports no token counts (the local backend).
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Measured around the call.
    pub latency_ms: i64,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// 429 / ThrottlingException.
    #[error("the model service is throttling requests")]
    Throttled,
    /// 5xx, a timeout, no connection.
    #[error("the model service is unavailable: {0}")]
    Unavailable(String),
    /// An answer that is not what was asked (not JSON, missing fields).
    #[error("the model's answer is malformed: {0}")]
    Malformed(String),
    /// Any other 4xx: the request itself is refused; trying again cannot help.
    #[error("the model service refused the request: {0}")]
    Refused(String),
}

impl ModelError {
    /// The class a health report names (`store::ai::ModelCall::outcome`).
    pub fn outcome(&self) -> &'static str {
        match self {
            ModelError::Throttled => "throttled",
            ModelError::Unavailable(_) => "unavailable",
            ModelError::Malformed(_) => "malformed",
            ModelError::Refused(_) => "refused",
        }
    }

    pub fn retryable(&self) -> bool {
        !matches!(self, ModelError::Refused(_))
    }
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

pub enum ConfiguredBackend {
    Local(crate::local_model::LocalModel),
    OpenAi(OpenAiCompatible),
    Bedrock(BedrockBackend),
}

impl ConfiguredBackend {
    pub fn from_env(sdk_config: &aws_config::SdkConfig) -> anyhow::Result<Self> {
        let timeout = std::env::var("AI_MODEL_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
        let model = || std::env::var("AI_MODEL_ID").map_err(|_| anyhow::anyhow!("AI_MODEL_ID is not set"));
        match std::env::var("AI_BACKEND").as_deref().unwrap_or("local") {
            "local" | "" => Ok(Self::Local(crate::local_model::LocalModel)),
            "openai" => Ok(Self::OpenAi(OpenAiCompatible::new(
                &std::env::var("AI_OPENAI_BASE_URL").map_err(|_| anyhow::anyhow!("AI_OPENAI_BASE_URL is not set"))?,
                std::env::var("AI_OPENAI_API_KEY").ok().filter(|k| !k.is_empty()),
                &model()?,
                timeout,
            )?)),
            "bedrock" => Ok(Self::Bedrock(BedrockBackend::new(sdk_config, &model()?, timeout, None))),
            other => anyhow::bail!("AI_BACKEND is {other}: use local, openai or bedrock"),
        }
    }

    /// `local`, `openai` or `bedrock`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::OpenAi(_) => "openai",
            Self::Bedrock(_) => "bedrock",
        }
    }

    pub async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelReply, ModelError> {
        match self {
            Self::Local(local) => local.complete(request).await,
            Self::OpenAi(openai) => openai.complete(request).await,
            Self::Bedrock(bedrock) => bedrock.complete(request).await,
        }
    }
}

/// Any service that speaks OpenAI's chat completions (OpenAI, Azure OpenAI,
/// vLLM, Ollama, LiteLLM...).
pub struct OpenAiCompatible {
    http: reqwest::Client,
    url: String,
    api_key: Option<String>,
    model: String,
}

impl OpenAiCompatible {
    pub fn new(base_url: &str, api_key: Option<String>, model: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            api_key,
            model: model.to_owned(),
        })
    }

    pub async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelReply, ModelError> {
        let body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.prompt},
            ],
            "max_tokens": request.max_tokens,
            "response_format": {"type": "json_object"},
        });
        let mut call = self.http.post(&self.url).json(&body);
        if let Some(key) = &self.api_key {
            call = call.bearer_auth(key);
        }
        let started = Instant::now();
        let response = call.send().await.map_err(|e| unavailable(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| unavailable(&e))?;
        let latency_ms = started.elapsed().as_millis() as i64;
        match status.as_u16() {
            200..=299 => {}
            429 => return Err(ModelError::Throttled),
            500..=599 => return Err(ModelError::Unavailable(format!("HTTP {status}"))),
            _ => {
                return Err(ModelError::Refused(format!(
                    "HTTP {status}: {}",
                    text.chars().take(200).collect::<String>()
                )));
            }
        }
        let answer: Value =
            serde_json::from_str(&text).map_err(|e| ModelError::Malformed(format!("the response is not JSON: {e}")))?;
        let content = answer["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| ModelError::Malformed("the response has no choices[0].message.content".into()))?;
        Ok(ModelReply {
            text: content.to_owned(),
            input_tokens: answer["usage"]["prompt_tokens"].as_i64().unwrap_or(0),
            output_tokens: answer["usage"]["completion_tokens"].as_i64().unwrap_or(0),
            latency_ms,
            model: answer["model"].as_str().unwrap_or(&self.model).to_owned(),
        })
    }
}

fn unavailable(err: &reqwest::Error) -> ModelError {
    if err.is_timeout() {
        ModelError::Unavailable("no answer before the deadline".into())
    } else {
        ModelError::Unavailable(format!("the request failed: {err}"))
    }
}

/// Amazon Bedrock, through the Converse API (one request shape for every
/// model family).
pub struct BedrockBackend {
    client: aws_sdk_bedrockruntime::Client,
    model: String,
}

impl BedrockBackend {
    /// `endpoint` overrides where the SDK sends requests (tests: a local
    /// server answering canned Bedrock responses).
    pub fn new(sdk_config: &aws_config::SdkConfig, model: &str, timeout: Duration, endpoint: Option<&str>) -> Self {
        let mut config = aws_sdk_bedrockruntime::config::Builder::from(sdk_config)
            .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_sdk_bedrockruntime::config::timeout::TimeoutConfig::builder().operation_timeout(timeout).build(),
            );
        if let Some(endpoint) = endpoint {
            config = config.endpoint_url(endpoint);
        }
        if let Some(log) = shared::aws::call_log::CallLog::from_env() {
            config.push_interceptor(aws_sdk_bedrockruntime::config::SharedInterceptor::new(log));
        }
        Self { client: aws_sdk_bedrockruntime::Client::from_conf(config.build()), model: model.to_owned() }
    }

    pub async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelReply, ModelError> {
        let message = Message::builder()
            .role(ConversationRole::User)
            .content(ContentBlock::Text(request.prompt.clone()))
            .build()
            .map_err(|e| ModelError::Refused(e.to_string()))?;
        let started = Instant::now();
        let output = self
            .client
            .converse()
            .model_id(&self.model)
            .system(SystemContentBlock::Text(request.system.to_owned()))
            .messages(message)
            .inference_config(InferenceConfiguration::builder().max_tokens(request.max_tokens).build())
            .send()
            .await
            .map_err(|err| bedrock_error(&err))?;
        let latency_ms = started.elapsed().as_millis() as i64;
        let text = output
            .output()
            .and_then(|o| o.as_message().ok())
            .map(|m| m.content().iter().filter_map(|c| c.as_text().ok()).cloned().collect::<Vec<_>>().join(""))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ModelError::Malformed("the answer has no text".into()))?;
        let usage = output.usage();
        Ok(ModelReply {
            text,
            input_tokens: usage.map_or(0, |u| i64::from(u.input_tokens())),
            output_tokens: usage.map_or(0, |u| i64::from(u.output_tokens())),
            latency_ms,
            model: self.model.clone(),
        })
    }
}

type ConverseFailure = SdkError<
    aws_sdk_bedrockruntime::operation::converse::ConverseError,
    aws_sdk_bedrockruntime::config::http::HttpResponse,
>;

fn bedrock_error(err: &ConverseFailure) -> ModelError {
    match err {
        SdkError::TimeoutError(_) => ModelError::Unavailable("no answer before the deadline".into()),
        SdkError::DispatchFailure(_) => ModelError::Unavailable("the request could not be sent".into()),
        SdkError::ResponseError(_) => ModelError::Malformed("the response could not be read".into()),
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("");
            let status = service.raw().status().as_u16();
            match code {
                "ThrottlingException" | "ServiceQuotaExceededException" => ModelError::Throttled,
                "InternalServerException"
                | "ServiceUnavailableException"
                | "ModelNotReadyException"
                | "ModelTimeoutException" => ModelError::Unavailable(code.to_owned()),
                _ if status == 429 => ModelError::Throttled,
                _ if status >= 500 => ModelError::Unavailable(format!("HTTP {status}")),
                _ => ModelError::Refused(format!("{code}: {}", service.err().message().unwrap_or(""))),
            }
        }
        other => ModelError::Unavailable(format!("{other:?}").chars().take(200).collect()),
    }
}

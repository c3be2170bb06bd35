//! Try-on engines: what turns a shopper's photo and a garment image into a
//! try-on image. The worker takes any [`TryOnEngine`]:
//! - [`LocalEngine`] composites the garment onto the photo with the `image`
//!   crate, so the whole pipeline runs (and is tested) without a model;
//! - [`HttpEngine`] sends both images to a model endpoint (a SageMaker
//!   endpoint behind API Gateway, a GPU service) and takes the image it
//!   answers.
//!
//! `TRYON_ENGINE=local|http` chooses ([`ConfiguredEngine::from_env`]); `http`
//! needs `TRYON_ENGINE_URL`.

use std::{future::Future, io::Cursor, time::Duration};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use image::{DynamicImage, ImageFormat, imageops::FilterType};
use serde_json::json;
use shared::{blobs::sniff_image_type, domain::tryon::Quality};

/// A render that cannot succeed with these inputs (the item fails and is
/// refunded); infrastructure trouble is reported as such by the worker and
/// retried instead.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EngineError(pub String);

pub struct RenderInput<'a> {
    pub person: &'a [u8],
    pub garment: &'a [u8],
    pub quality: Quality,
    pub product_id: &'a str,
}

pub trait TryOnEngine: Send + Sync + 'static {
    /// The try-on image, PNG-encoded.
    fn render(&self, input: RenderInput<'_>) -> impl Future<Output = Result<Vec<u8>, EngineError>> + Send;
}

/// Composites the garment onto the photo: the photo scaled to the quality's
/// size, the garment scaled to 45 % of its width and laid over the torso.
#[derive(Debug, Clone, Default)]
pub struct LocalEngine;

/// Garment width as a share of the photo's width, and where its top sits.
const GARMENT_WIDTH_PERCENT: u32 = 45;
const GARMENT_TOP_PERCENT: u32 = 28;

fn decode(bytes: &[u8], what: &str) -> Result<DynamicImage, EngineError> {
    if sniff_image_type(bytes).is_none() {
        return Err(EngineError(format!("the {what} is not a JPEG, PNG or WebP image")));
    }
    image::load_from_memory(bytes).map_err(|e| EngineError(format!("the {what} could not be decoded: {e}")))
}

pub fn composite(person: &[u8], garment: &[u8], quality: Quality) -> Result<Vec<u8>, EngineError> {
    let person = decode(person, "photo")?;
    let garment = decode(garment, "garment image")?;
    let longest = quality.output_pixels();
    let (pw, ph) = (person.width().max(1), person.height().max(1));
    let (width, height) = if pw >= ph {
        (longest, (u64::from(longest) * u64::from(ph) / u64::from(pw)).max(1) as u32)
    } else {
        ((u64::from(longest) * u64::from(pw) / u64::from(ph)).max(1) as u32, longest)
    };
    let mut canvas = person.resize_exact(width, height, FilterType::Triangle).to_rgba8();
    let garment_width = (width * GARMENT_WIDTH_PERCENT / 100).max(1);
    let garment_height = (u64::from(garment_width) * u64::from(garment.height().max(1))
        / u64::from(garment.width().max(1)))
    .clamp(1, u64::from(height / 2).max(1)) as u32;
    let garment = garment.resize_exact(garment_width, garment_height, FilterType::Triangle).to_rgba8();
    let x = i64::from((width - garment_width) / 2);
    let y = i64::from(height * GARMENT_TOP_PERCENT / 100);
    image::imageops::overlay(&mut canvas, &garment, x, y);
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgba8(canvas)
        .write_to(&mut out, ImageFormat::Png)
        .map_err(|e| EngineError(format!("encoding the result failed: {e}")))?;
    Ok(out.into_inner())
}

impl TryOnEngine for LocalEngine {
    async fn render(&self, input: RenderInput<'_>) -> Result<Vec<u8>, EngineError> {
        let (person, garment, quality) = (input.person.to_vec(), input.garment.to_vec(), input.quality);
        // Image work is CPU-bound: off the async workers.
        tokio::task::spawn_blocking(move || composite(&person, &garment, quality))
            .await
            .map_err(|e| EngineError(format!("the render task failed: {e}")))?
    }
}

/// Calls a model endpoint: `POST <url>` with `{"person_image", "garment_image"
/// (base64), "quality", "output_pixels", "product_id"}`; the answer's body is
/// the image (PNG, JPEG or WebP; re-encoded as PNG if it is not one).
#[derive(Debug, Clone)]
pub struct HttpEngine {
    client: reqwest::Client,
    url: String,
}

/// Longest a model may take for one image.
pub const HTTP_ENGINE_TIMEOUT: Duration = Duration::from_secs(25);
/// Largest answer accepted.
pub const MAX_RESULT_BYTES: usize = 32 * 1024 * 1024;

impl HttpEngine {
    pub fn new(url: impl Into<String>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(HTTP_ENGINE_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { client, url: url.into() })
    }
}

impl TryOnEngine for HttpEngine {
    async fn render(&self, input: RenderInput<'_>) -> Result<Vec<u8>, EngineError> {
        let body = json!({
            "person_image": STANDARD.encode(input.person),
            "garment_image": STANDARD.encode(input.garment),
            "quality": input.quality,
            "output_pixels": input.quality.output_pixels(),
            "product_id": input.product_id,
        });
        let response = self
            .client
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| EngineError(format!("the model endpoint could not be reached: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(EngineError(format!("the model endpoint answered {status}")));
        }
        if response.content_length().is_some_and(|n| n > MAX_RESULT_BYTES as u64) {
            return Err(EngineError("the model's image is too large".into()));
        }
        let bytes = response.bytes().await.map_err(|e| EngineError(format!("reading the model's answer: {e}")))?;
        if bytes.len() > MAX_RESULT_BYTES {
            return Err(EngineError("the model's image is too large".into()));
        }
        match sniff_image_type(&bytes) {
            Some("image/png") => Ok(bytes.to_vec()),
            Some(_) => {
                let image = decode(&bytes, "model's image")?;
                let mut out = Cursor::new(Vec::new());
                image.write_to(&mut out, ImageFormat::Png).map_err(|e| EngineError(format!("re-encoding: {e}")))?;
                Ok(out.into_inner())
            }
            None => Err(EngineError("the model did not answer with an image".into())),
        }
    }
}

/// The engine the environment asks for.
#[derive(Debug, Clone)]
pub enum ConfiguredEngine {
    Local(LocalEngine),
    Http(HttpEngine),
}

impl ConfiguredEngine {
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var("TRYON_ENGINE").as_deref() {
            Ok("http") => {
                let url = std::env::var("TRYON_ENGINE_URL")
                    .map_err(|_| anyhow::anyhow!("TRYON_ENGINE=http needs TRYON_ENGINE_URL"))?;
                Ok(ConfiguredEngine::Http(HttpEngine::new(url)?))
            }
            Ok("local") | Err(_) => Ok(ConfiguredEngine::Local(LocalEngine)),
            Ok(other) => anyhow::bail!("TRYON_ENGINE must be local or http, not {other}"),
        }
    }
}

impl TryOnEngine for ConfiguredEngine {
    async fn render(&self, input: RenderInput<'_>) -> Result<Vec<u8>, EngineError> {
        match self {
            ConfiguredEngine::Local(engine) => engine.render(input).await,
            ConfiguredEngine::Http(engine) => engine.render(input).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
        let image = image::RgbImage::from_pixel(width, height, image::Rgb(rgb));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(image).write_to(&mut out, ImageFormat::Png).expect("png");
        out.into_inner()
    }

    #[test]
    fn the_garment_lands_on_the_torso_at_the_qualitys_size() {
        let person = png(300, 600, [10, 10, 200]);
        let garment = png(100, 100, [250, 20, 20]);
        let out = composite(&person, &garment, Quality::Sd).expect("render");
        let image = image::load_from_memory(&out).expect("decodes").to_rgba8();
        assert_eq!((image.width(), image.height()), (256, 512));
        // Centre of the torso: garment red; top corner: the photo's blue.
        let torso = image.get_pixel(128, 512 * GARMENT_TOP_PERCENT / 100 + 20);
        assert!(torso[0] > 200 && torso[2] < 60, "{torso:?}");
        let corner = image.get_pixel(2, 2);
        assert!(corner[2] > 150 && corner[0] < 60, "{corner:?}");
    }

    #[test]
    fn what_is_not_an_image_fails_the_render() {
        let person = png(10, 10, [0, 0, 0]);
        assert!(composite(&person, b"<html>not an image</html>", Quality::Hd).is_err());
        assert!(composite(b"\x89PNG\r\n\x1a\ntruncated", &person, Quality::Hd).is_err());
    }
}

//! The OpenAPI document as served: docs/openapi.json (pretty-printed for
//! review, 1.4 MB) minified, and gzipped once here rather than per request.
//! Sending 1.4 MB through Lambda's JSON envelope cost ~7 ms of CPU per
//! request (docs/performance.md); the gzipped body is ~8 % of that.
//! For callers that refuse gzip, the minified text is also written as a
//! JSON string literal: the Lambda answer carries it as it stands, where
//! escaping it on every request cost ~1.3 ms (`src/lambda.rs`).

use std::{env, fs, io::Write, path::PathBuf};

use sha2::{Digest, Sha256};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let source = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../docs/openapi.json");
    println!("cargo:rerun-if-changed={}", source.display());
    let pretty = fs::read_to_string(&source)?;
    let document: serde_json::Value = serde_json::from_str(&pretty)?;
    let minified = serde_json::to_string(&document)?;
    let as_literal = serde_json::to_string(&minified)?;

    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(minified.as_bytes())?;
    let gzipped = gzip.finish()?;

    let digest = Sha256::digest(minified.as_bytes());
    let etag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();

    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("openapi.min.json"), minified)?;
    fs::write(out.join("openapi.min.json.literal"), as_literal)?;
    fs::write(out.join("openapi.min.json.gz"), gzipped)?;
    fs::write(out.join("openapi.etag"), format!("\"{etag}\""))?;
    Ok(())
}

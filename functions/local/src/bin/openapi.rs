//! Prints the OpenAPI document, or with `--write` writes docs/openapi.json
//! and the events' JSON Schemas under docs/events/.

use std::path::Path;

fn main() -> anyhow::Result<()> {
    let text = format!("{}\n", serde_json::to_string_pretty(&local::openapi::document())?);
    if !std::env::args().any(|a| a == "--write") {
        print!("{text}");
        return Ok(());
    }
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    std::fs::write(docs.join("openapi.json"), text)?;
    let events = docs.join("events");
    std::fs::create_dir_all(&events)?;
    for (name, schema) in local::webhooks_doc::event_schemas() {
        std::fs::write(events.join(name), format!("{}\n", serde_json::to_string_pretty(&schema)?))?;
    }
    Ok(())
}

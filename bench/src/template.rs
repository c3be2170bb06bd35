//! The environment each function is deployed with, read from template.yaml:
//! the names of its `Environment.Variables` and of the Globals', so the bench
//! hands a binary exactly what Lambda would (values come from the local
//! stack's env file) and a variable added to the template reaches the bench
//! without a second list to keep.

use std::path::Path;

use anyhow::{Context, Result};
use serde_yaml::Value;

pub struct Template {
    root: Value,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let root = serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(Self { root })
    }

    pub fn default_path() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("template.yaml")
    }

    /// Variable names of the function whose `BuildProperties.Binary` is
    /// `binary`, the Globals' first; `None` when no resource builds it.
    pub fn variables(&self, binary: &str) -> Option<Vec<String>> {
        let resources = self.root.get("Resources")?.as_mapping()?;
        let function = resources.values().find(|resource| {
            resource.get("Metadata").and_then(|m| m.get("BuildProperties")).and_then(|b| b.get("Binary"))
                == Some(&Value::String(binary.to_owned()))
        })?;
        let globals = self.root.get("Globals").and_then(|g| g.get("Function"));
        let names = [globals, function.get("Properties")]
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("Environment")?.get("Variables")?.as_mapping())
            .flat_map(|variables| variables.keys().filter_map(Value::as_str).map(str::to_owned))
            .collect();
        Some(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_gets_the_globals_and_its_own_variables() -> Result<()> {
        let template = Template::load(&Template::default_path())?;
        let customers = template.variables("customers").context("customers is in the template")?;
        for name in ["TABLE_NAME", "RUST_LOG", "PLATFORM_KEYS_SECRET_ID", "BLOB_BUCKET_NAME"] {
            assert!(customers.contains(&name.to_owned()), "{name} in {customers:?}");
        }
        assert!(template.variables("no-such-binary").is_none());
        Ok(())
    }
}

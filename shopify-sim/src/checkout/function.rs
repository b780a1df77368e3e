//! The VIP discount Function as deployed to the simulated shops: what `shopify app deploy` would
//! upload from `extensions/vip-discount` — its handle, each target's export and input query
//! (`shopify.extension.toml`), the metafield its input variables come from — and the built wasm,
//! compiled once per simulator and run through `function-harness` (wasmtime with Shopify's
//! provider, as Shopify's runner does).
//!
//! Reading the extension's own files keeps the simulator honest when the Function changes: a new
//! query field, alias or export is picked up, and a field the simulator cannot provide fails the
//! checkout loudly instead of being left out.

use std::path::{Path, PathBuf};

use function_harness::Harness;
use toml_edit::{DocumentMut, Item};

/// One target of the Function.
#[derive(Debug, Clone)]
pub(crate) struct FunctionTarget {
    /// `cart.lines.discounts.generate.run`, …
    pub target: String,
    /// The wasm export to call.
    pub export: String,
    /// The input query's text.
    pub query: String,
}

/// The deployed Function.
pub(crate) struct Deployment {
    /// `functionHandle` that discounts name.
    pub handle: String,
    pub targets: Vec<FunctionTarget>,
    /// `[extensions.input.variables]`: the discount metafield (namespace, key) whose JSON object
    /// supplies the input queries' variables.
    pub variables: Option<(String, String)>,
    pub harness: Harness,
}

/// The extension directory the harness builds the wasm from.
pub(crate) fn extension_dir() -> PathBuf {
    function_harness::artifacts::repo_root().join("extensions/vip-discount")
}

/// The target of the cart lines run and of the delivery options run.
pub(crate) const LINES_TARGET: &str = "cart.lines.discounts.generate.run";
pub(crate) const DELIVERY_TARGET: &str = "cart.delivery-options.discounts.generate.run";

impl Deployment {
    /// Reads the extension and builds (first use in the process) and compiles the wasm. Slow:
    /// call it off the async runtime.
    pub fn load(dir: &Path) -> Result<Deployment, String> {
        let toml_path = dir.join("shopify.extension.toml");
        let text = std::fs::read_to_string(&toml_path)
            .map_err(|e| format!("cannot read {}: {e}", toml_path.display()))?;
        let doc: DocumentMut = text
            .parse()
            .map_err(|e| format!("{} is not TOML: {e}", toml_path.display()))?;
        let extension = doc
            .get("extensions")
            .and_then(Item::as_array_of_tables)
            .and_then(|all| all.iter().next())
            .ok_or_else(|| format!("{} declares no [[extensions]]", toml_path.display()))?;
        let text_of = |item: Option<&Item>, what: &str| {
            item.and_then(Item::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("{}: {what} is missing", toml_path.display()))
        };
        let handle = text_of(extension.get("handle"), "handle")?;
        let mut targets = Vec::new();
        let targeting = extension
            .get("targeting")
            .and_then(Item::as_array_of_tables)
            .ok_or_else(|| format!("{}: no [[extensions.targeting]]", toml_path.display()))?;
        for t in targeting.iter() {
            let target = text_of(t.get("target"), "targeting.target")?;
            let export = text_of(t.get("export"), "targeting.export")?;
            let query_file = text_of(t.get("input_query"), "targeting.input_query")?;
            let query = std::fs::read_to_string(dir.join(&query_file))
                .map_err(|e| format!("cannot read the input query {query_file}: {e}"))?;
            targets.push(FunctionTarget {
                target,
                export,
                query,
            });
        }
        let variables = extension
            .get("input")
            .and_then(|input| input.get("variables"))
            .map(|v| {
                Ok::<_, String>((
                    text_of(v.get("namespace"), "input.variables.namespace")?,
                    text_of(v.get("key"), "input.variables.key")?,
                ))
            })
            .transpose()?;
        let harness =
            Harness::from_artifacts().map_err(|e| format!("cannot load the Function: {e:#}"))?;
        Ok(Deployment {
            handle,
            targets,
            variables,
            harness,
        })
    }

    pub fn target(&self, name: &str) -> Option<&FunctionTarget> {
        self.targets.iter().find(|t| t.target == name)
    }
}

//! The two wasm modules a run needs, built (or located) once per process:
//!
//! - the Function, built exactly as `shopify app build` does (`cargo build
//!   --target=wasm32-unknown-unknown --release` in `extensions/vip-discount`, its own workspace);
//! - Shopify's provider, `shopify_function_provider` from crates.io built as a wasm module by
//!   `provider/` with Rust 1.89.0, the toolchain of the provider Shopify's function-runner bundles
//!   (with another one it counts 11–14 % fewer instructions). A missing toolchain is installed with
//!   rustup, as the project's scripts install what they lack rather than skip.
//!
//! `KEEL_FUNCTION_WASM` / `KEEL_PROVIDER_WASM` point at prebuilt modules instead (e.g. to compare
//! against another provider build).
//!
//! The benchmark also builds [`template_baseline`]: the logic of Shopify's Rust discount template
//! (`baseline/`), measured in the same run as Keel's Function.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

/// The toolchain function-runner 9.2.1's bundled provider was built with.
pub const PROVIDER_TOOLCHAIN: &str = "1.89.0";
const WASM_TARGET: &str = "wasm32-unknown-unknown";

#[derive(Debug)]
pub struct Artifacts {
    pub function_wasm: PathBuf,
    pub provider_wasm: PathBuf,
    /// Which toolchain built the provider ([`PROVIDER_TOOLCHAIN`], or "prebuilt").
    pub provider_toolchain: String,
}

/// The repository root (this crate lives in `tests/function-harness`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds both modules on first use; later calls return the same paths.
pub fn artifacts() -> Result<&'static Artifacts> {
    static ARTIFACTS: OnceLock<Result<Artifacts, String>> = OnceLock::new();
    ARTIFACTS
        .get_or_init(|| build().map_err(|error| format!("{error:#}")))
        .as_ref()
        .map_err(|error| anyhow::anyhow!("{error}"))
}

fn build() -> Result<Artifacts> {
    let function_wasm = match std::env::var_os("KEEL_FUNCTION_WASM") {
        Some(path) => PathBuf::from(path),
        None => build_function()?,
    };
    let (provider_wasm, provider_toolchain) = match std::env::var_os("KEEL_PROVIDER_WASM") {
        Some(path) => (PathBuf::from(path), "prebuilt".to_owned()),
        None => build_provider()?,
    };
    Ok(Artifacts {
        function_wasm,
        provider_wasm,
        provider_toolchain,
    })
}

fn build_function() -> Result<PathBuf> {
    let dir = repo_root().join("extensions/vip-discount");
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(&dir)
        // Let the directory's rust-toolchain.toml decide, as when the Shopify CLI runs the build.
        .env_remove("RUSTUP_TOOLCHAIN")
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--target-dir",
        ])
        .arg(dir.join("target"));
    run(cargo, "build the VIP discount Function")?;
    Ok(dir.join("target/wasm32-unknown-unknown/release/vip-discount.wasm"))
}

fn build_provider() -> Result<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("provider");
    if !toolchain_installed(PROVIDER_TOOLCHAIN) {
        let mut rustup = Command::new("rustup");
        rustup.args([
            "toolchain",
            "install",
            PROVIDER_TOOLCHAIN,
            "--profile",
            "minimal",
            "--target",
            WASM_TARGET,
        ]);
        run(rustup, "install the provider's toolchain")?;
    }
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(&dir)
        .env("RUSTUP_TOOLCHAIN", PROVIDER_TOOLCHAIN);
    // Keep the build independent of where the cargo registry lives.
    if let Some(cargo_home) = std::env::var_os("CARGO_HOME") {
        let mut flag = std::ffi::OsString::from("--remap-path-prefix=");
        flag.push(cargo_home);
        flag.push("=/cargo");
        cargo.env("CARGO_ENCODED_RUSTFLAGS", flag);
    }
    cargo
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            WASM_TARGET,
            "--target-dir",
        ])
        .arg(dir.join("target"));
    run(cargo, "build Shopify's Function API provider")?;
    Ok((
        dir.join("target/wasm32-unknown-unknown/release/keel_function_provider.wasm"),
        PROVIDER_TOOLCHAIN.to_owned(),
    ))
}

/// Builds the template baseline (`baseline/`, its own workspace, the template's release profile).
pub fn template_baseline() -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("baseline");
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(&dir)
        .env_remove("RUSTUP_TOOLCHAIN")
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            WASM_TARGET,
            "--target-dir",
        ])
        .arg(dir.join("target"));
    run(cargo, "build the template baseline")?;
    Ok(dir.join("target/wasm32-unknown-unknown/release/template-baseline.wasm"))
}

fn toolchain_installed(toolchain: &str) -> bool {
    Command::new("rustup")
        .args(["run", toolchain, "rustc", "--version"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .map(|output| output.status.success())
        .unwrap_or(false)
}

fn run(mut command: Command, what: &str) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("could not start {:?} to {what}", command.get_program()))?;
    if !status.success() {
        bail!("{:?} failed to {what} ({status})", command.get_program());
    }
    Ok(())
}

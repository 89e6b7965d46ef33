//! Which model pack the workers load.
//!
//! In order: `--model DIR` (or `VERDICT_MODEL`); else `models/default` in the
//! current directory (the README runs `fleet up` from the repository root);
//! else `models/default` in the repository that built this binary
//! (`<repo>/target/<profile>/fleet` → `<repo>/models/default`). A directory
//! without a `manifest.json` is not a pack (a pack is renamed into place only
//! when complete, see docs/model-pack.md), and is refused here rather than by
//! every worker at start.

use std::path::Path;

use anyhow::{Context, bail};

use verdict_supervisor::config::ModelPlan;

/// Resolves the model plan from the flags.
pub fn resolve(flag: Option<&Path>, noop: bool) -> anyhow::Result<ModelPlan> {
    if noop {
        return Ok(ModelPlan::Noop);
    }
    let dir = match flag {
        Some(dir) => dir.to_path_buf(),
        None => {
            let candidates = crate::project_dirs::candidates("models/default");
            match candidates
                .iter()
                .find(|dir| dir.join("manifest.json").is_file())
            {
                Some(dir) => dir.clone(),
                None => bail!(
                    "no model pack found (looked in {}): pass --model DIR or set VERDICT_MODEL; \
                     scripts/setup.sh builds the default pack into models/default",
                    candidates
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            }
        }
    };
    let manifest = dir.join("manifest.json");
    if !manifest.is_file() {
        bail!(
            "{} is not a model pack: it has no manifest.json (see docs/model-pack.md)",
            dir.display()
        );
    }
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let label = describe(&manifest).unwrap_or_else(|| dir.display().to_string());
    Ok(ModelPlan::Pack { dir, label })
}

/// "name version" from the manifest, for the summary.
fn describe(manifest: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let name = value.get("name")?.as_str()?;
    let version = value
        .get("version")
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .unwrap_or_default();
    Some(format!("{name} {version}").trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_is_a_directory_with_a_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(Some(dir.path()), false).unwrap_err().to_string();
        assert!(err.contains("no manifest.json"), "{err}");
        std::fs::write(
            dir.path().join("manifest.json"),
            r#"{"format":"verdict-model-pack","name":"verdict-default","version":"1"}"#,
        )
        .unwrap();
        match resolve(Some(dir.path()), false).unwrap() {
            ModelPlan::Pack {
                dir: resolved,
                label,
            } => {
                assert!(resolved.is_absolute());
                assert_eq!(label, "verdict-default 1");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(resolve(None, true).unwrap(), ModelPlan::Noop);
    }
}

//! The example photos the web page offers (`--examples DIR`).
//!
//! `DIR/examples.json` names each photo of `DIR` with its alt text and the
//! sentences to try on it (`scripts/fetch-test-photos` writes it next to the
//! public test photos):
//!
//! ```json
//! {"examples": [{"image": "coffee.png", "alt": "A cup of espresso on a saucer",
//!                "texts": ["This is a ceramic coffee cup.", "..."]}]}
//! ```
//!
//! The set is read and checked once, at start, and kept in memory: the api
//! serves exactly the photos the manifest names, looked up by name, and never
//! opens a path that came with a request. An example the api would refuse
//! if the page sent it (a photo over `--max-image-bytes` or in no format the
//! worker decodes, a sentence `POST /v1/jobs` refuses) stops the api at
//! start, named, as does a photo a browser cannot show (TIFF).

use std::path::Path;

use anyhow::{Context, bail};
use bytes::Bytes;
use serde::Deserialize;

use crate::submission::texts;
use verdict_shared::image_format;

/// The manifest's file name in the examples directory.
pub const MANIFEST: &str = "examples.json";

/// The most examples one manifest may name: a row of thumbnails, not a
/// gallery.
pub const MAX_EXAMPLES: usize = 24;

/// The longest alt text, in characters.
const MAX_ALT_CHARS: usize = 300;

/// The longest photo file name, in bytes.
const MAX_NAME_BYTES: usize = 100;

/// One example: a photo, what it shows, and sentences about it.
#[derive(Debug, Clone)]
pub struct Example {
    /// The photo's file name in the directory, and its name in the URL.
    pub image: String,
    /// What the photo shows, for people who cannot see it.
    pub alt: String,
    pub texts: Vec<String>,
    /// `image/png`, `image/jpeg`, ... from the photo's first bytes.
    pub content_type: &'static str,
    pub bytes: Bytes,
}

/// The examples this api offers; none without `--examples`.
#[derive(Debug, Clone, Default)]
pub struct Examples {
    list: Vec<Example>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    examples: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    image: String,
    alt: String,
    texts: Vec<String>,
}

impl Examples {
    /// Reads and checks `dir`'s manifest and every photo it names.
    pub fn load(dir: &Path, max_image_bytes: usize) -> anyhow::Result<Examples> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an examples manifest", path.display()))?;
        if manifest.examples.len() > MAX_EXAMPLES {
            bail!(
                "{} names {} examples, more than {MAX_EXAMPLES}",
                path.display(),
                manifest.examples.len()
            );
        }
        let mut list: Vec<Example> = Vec::with_capacity(manifest.examples.len());
        for entry in manifest.examples {
            let example = check(dir, entry, max_image_bytes)
                .with_context(|| format!("in {}", path.display()))?;
            if list.iter().any(|e| e.image == example.image) {
                bail!("{} names {} twice", path.display(), example.image);
            }
            list.push(example);
        }
        Ok(Examples { list })
    }

    /// Every example, in the manifest's order.
    pub fn list(&self) -> &[Example] {
        &self.list
    }

    /// The example whose photo is named `image`.
    pub fn get(&self, image: &str) -> Option<&Example> {
        self.list.iter().find(|e| e.image == image)
    }
}

fn check(dir: &Path, entry: Entry, max_image_bytes: usize) -> anyhow::Result<Example> {
    let Entry { image, alt, texts } = entry;
    if !is_plain_file_name(&image) {
        bail!(
            "example image {image:?} is not a plain file name of this directory \
             (letters, digits, '.', '_' and '-', not starting with '.', at most {MAX_NAME_BYTES} bytes)"
        );
    }
    let alt_chars = alt.chars().count();
    if alt.trim().is_empty() || alt_chars > MAX_ALT_CHARS {
        bail!(
            "the alt text of {image} must have 1 to {MAX_ALT_CHARS} characters (it has {alt_chars})"
        );
    }
    texts::check(&texts)
        .map_err(|err| anyhow::anyhow!("the sentences of {image}: {}", err.message))?;
    let path = dir.join(&image);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() > max_image_bytes {
        bail!(
            "{} has {} bytes, more than --max-image-bytes ({max_image_bytes}): the api would refuse it",
            path.display(),
            bytes.len()
        );
    }
    let content_type = match image_format::sniff(&bytes) {
        Some("png") => "image/png",
        Some("jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("bmp") => "image/bmp",
        Some(other) => bail!(
            "{} is {other}, which browsers do not show: convert it to PNG or JPEG",
            path.display()
        ),
        None => bail!("{} is not an image the api takes", path.display()),
    };
    Ok(Example {
        image,
        alt,
        texts,
        content_type,
        bytes: Bytes::from(bytes),
    })
}

/// A name that can only mean a file directly in the directory.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    fn dir_with(manifest: serde_json::Value, files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST), manifest.to_string()).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        dir
    }

    fn one(image: &str, texts: &[&str]) -> serde_json::Value {
        json!({"examples": [{"image": image, "alt": "A cup", "texts": texts}]})
    }

    fn error(dir: &tempfile::TempDir, max_image_bytes: usize) -> String {
        format!(
            "{:#}",
            Examples::load(dir.path(), max_image_bytes).unwrap_err()
        )
    }

    #[test]
    fn loads_the_photos_the_manifest_names() {
        let dir = dir_with(
            json!({"examples": [
                {"image": "cup.png", "alt": "A cup", "texts": ["This is a cup."]},
                {"image": "cat.jpg", "alt": "A cat", "texts": ["A cat.", "A dog."]},
            ]}),
            &[
                ("cup.png", PNG),
                ("cat.jpg", b"\xff\xd8\xff\xe0\0\x10JFIF"),
                ("other.png", PNG),
            ],
        );
        let examples = Examples::load(dir.path(), 1 << 20).unwrap();
        let names: Vec<&str> = examples.list().iter().map(|e| e.image.as_str()).collect();
        assert_eq!(names, ["cup.png", "cat.jpg"]);
        let cat = examples.get("cat.jpg").unwrap();
        assert_eq!(cat.content_type, "image/jpeg");
        assert_eq!(cat.texts, ["A cat.", "A dog."]);
        assert_eq!(examples.get("cup.png").unwrap().bytes.as_ref(), PNG);
        assert!(
            examples.get("other.png").is_none(),
            "only what the manifest names"
        );
        assert!(Examples::default().list().is_empty());
    }

    #[test]
    fn refuses_names_that_reach_outside_the_directory() {
        for name in [
            "../cup.png",
            "/etc/passwd",
            "sub/cup.png",
            "..",
            ".hidden.png",
            "cup\\..\\x.png",
            "",
        ] {
            let dir = dir_with(one(name, &["This is a cup."]), &[("cup.png", PNG)]);
            let err = error(&dir, 1 << 20);
            assert!(err.contains("not a plain file name"), "{name}: {err}");
        }
    }

    #[test]
    fn refuses_what_the_api_would_refuse_from_the_page() {
        let dir = dir_with(one("cup.png", &["This is a cup."]), &[("cup.png", PNG)]);
        assert!(error(&dir, 8).contains("more than --max-image-bytes"));

        let dir = dir_with(one("cup.png", &["!"]), &[("cup.png", PNG)]);
        assert!(error(&dir, 1 << 20).contains("the sentences of cup.png"));
        let dir = dir_with(one("cup.png", &[]), &[("cup.png", PNG)]);
        assert!(error(&dir, 1 << 20).contains("no sentence"));

        let dir = dir_with(one("doc.png", &["A cup."]), &[("doc.png", b"%PDF-1.7")]);
        assert!(error(&dir, 1 << 20).contains("not an image"));
        let dir = dir_with(one("a.tif", &["A cup."]), &[("a.tif", b"II*\0\x08\0\0\0")]);
        assert!(error(&dir, 1 << 20).contains("browsers do not show"));

        let dir = dir_with(one("gone.png", &["A cup."]), &[]);
        assert!(error(&dir, 1 << 20).contains("cannot read"));
    }

    #[test]
    fn refuses_a_malformed_manifest() {
        let dir = dir_with(
            json!({"examples": [{"image": "cup.png", "alt": "A cup", "texts": ["A cup."], "x": 1}]}),
            &[("cup.png", PNG)],
        );
        assert!(error(&dir, 1 << 20).contains("not an examples manifest"));
        let dir = dir_with(
            json!({"examples": [{"image": "cup.png", "alt": " ", "texts": ["A cup."]}]}),
            &[("cup.png", PNG)],
        );
        assert!(error(&dir, 1 << 20).contains("alt text"));
        let dir = dir_with(
            json!({"examples": [
                {"image": "cup.png", "alt": "A cup", "texts": ["A cup."]},
                {"image": "cup.png", "alt": "A cup", "texts": ["A mug."]},
            ]}),
            &[("cup.png", PNG)],
        );
        assert!(error(&dir, 1 << 20).contains("twice"));
        let many: Vec<_> = (0..=MAX_EXAMPLES)
            .map(|i| json!({"image": format!("{i}.png"), "alt": "A cup", "texts": ["A cup."]}))
            .collect();
        let dir = dir_with(json!({ "examples": many }), &[]);
        assert!(error(&dir, 1 << 20).contains("more than 24"));
        let empty = tempfile::tempdir().unwrap();
        assert!(error(&empty, 1 << 20).contains("cannot read"));
    }
}

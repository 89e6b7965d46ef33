//! The limits the api enforces, written into its OpenAPI description.
//!
//! The handlers' annotations (`crate::openapi`) describe the shapes; this
//! module adds what the checks in `submission`, `idempotency`,
//! `callbacks::allow_list` and `routes::jobs_get` refuse, from the same
//! constants and from this server's flags (`--max-image-bytes`,
//! `--max-batch-jobs`, `--callback-hosts`), so a client generated from the
//! spec (or a fuzzer such as schemathesis) sends what the api accepts and
//! nothing it refuses passes for valid:
//!
//! - job ids: canonical UUIDs; `wait`: 0 to 60 seconds;
//! - `Idempotency-Key`: 1 to 255 visible ASCII characters;
//! - `texts`: 1 to 64 items, each at most 1000 characters with at least two
//!   letters or digits (of any script; the pattern states the ASCII case,
//!   see `text_schema`); the premise likewise;
//! - `image_base64`: standard base64 of at most `--max-image-bytes` bytes that
//!   starts with the signature of a format the worker decodes (the api reads
//!   nothing else of the image);
//! - `callback_url`: `null` only (and no form part) when no `--callback-hosts`
//!   are configured, otherwise an http(s) URL on one of them;
//! - a batch: 1 to `--max-batch-jobs` jobs (each job's own checks are those
//!   of `POST /v1/jobs`, answered in its item, so they are not in the batch's
//!   schema); a wait for many jobs: 1 to `--max-batch-jobs` job ids;
//! - the multipart form: no parts but the documented ones; the image part one
//!   of the decodable media types.

use serde_json::{Value, json};
use verdict_shared::limits::{MAX_SENTENCE_CHARS, MAX_SENTENCES};
use verdict_shared::text_content::MIN_WORD_CHARS;

use crate::idempotency::MAX_KEY_CHARS;

/// This server's configurable limits.
#[derive(Debug, Clone)]
pub struct SpecLimits {
    pub max_image_bytes: usize,
    pub max_batch_jobs: usize,
    /// The allowed callback hosts (`host` or `host:port`), as configured.
    pub callback_hosts: Vec<String>,
    /// The hosts `image_url`s may name (`[scheme://]host[:port]`).
    pub image_hosts: Vec<String>,
    /// Whether `image_path` is accepted (the server has an `--image-root`).
    pub image_paths: bool,
}

/// A canonical, hyphenated UUID (the api also accepts upper-case hex).
const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// The first base64 quanta of each accepted signature (PNG, JPEG, GIF 87a and
/// 89a, BMP, TIFF little- and big-endian, WebP): every encoding of a file that
/// starts with the signature starts with one of these, and nothing else does.
const SIGNATURES_BASE64: &[&str] = &[
    "iVBORw0KGg[o-r][A-Za-z0-9+/]",
    "/9j/",
    "R0lGODdh",
    "R0lGODlh",
    "Qk[0-3][A-Za-z0-9+/]",
    "SUkqA[A-P][A-Za-z0-9+/]{2}",
    "TU0AK[g-v][A-Za-z0-9+/]{2}",
    "UklGR[g-v][A-Za-z0-9+/]{2}[A-Za-z0-9+/]{2}[BFJNRVZdhlptx159]XRUJQ",
];

/// The media types of the formats the worker decodes.
const IMAGE_MEDIA_TYPES: &str =
    "image/png, image/jpeg, image/gif, image/webp, image/bmp, image/tiff";

/// Standard base64 with canonical padding (the decoder refuses stray bits in
/// the last character), around the signature.
fn image_base64_pattern() -> String {
    let b64 = "[A-Za-z0-9+/]";
    format!(
        "^\\s*(?:{})(?:{b64}{{4}})*(?:{b64}[AQgw]==|{b64}{{2}}[AEIMQUYcgkosw048]=)?\\s*$",
        SIGNATURES_BASE64.join("|")
    )
}

/// A sentence or premise: at least two letters or digits anywhere in it, in
/// any script. The pattern can only state the ASCII case: ECMA-262 patterns
/// (OpenAPI's dialect, without the `u` flag) have no Unicode letter class,
/// and `\w` is ASCII there. So a text the pattern matches is always accepted;
/// one it does not match is refused unless it has letters or digits of
/// another script ("Café" matches; "咖啡" does not, and is accepted).
fn text_schema(description: &str) -> Value {
    debug_assert_eq!(MIN_WORD_CHARS, 2);
    json!({
        "type": "string",
        "minLength": MIN_WORD_CHARS,
        "maxLength": MAX_SENTENCE_CHARS,
        "pattern": "[A-Za-z0-9][\\s\\S]*[A-Za-z0-9]",
        "description": format!(
            "{description} At most {MAX_SENTENCE_CHARS} characters, with at least two letters or digits \
             of any script (the pattern states the ASCII case)."
        ),
    })
}

fn callback_schema(hosts: &[String]) -> Value {
    if hosts.is_empty() {
        return json!({
            "type": "null",
            "description": "Callbacks are off on this server (no --callback-hosts): leave it out or null.",
        });
    }
    let hosts: Vec<String> = hosts.iter().map(|h| regex_escape(h.trim())).collect();
    json!({
        "type": ["string", "null"],
        "maxLength": crate::callbacks::allow_list::MAX_URL_CHARS,
        "pattern": format!("^[hH][tT][tT][pP][sS]?://(?:{})(?::[0-9]{{1,5}})?(?:[/?#][!-~]*)?$", hosts.join("|")),
        "description": "An http(s) URL on one of this server's --callback-hosts.",
    })
}

/// Exactly one of `fields` present and not null: the one image of a job.
fn exactly_one_image(fields: &[&str]) -> Value {
    json!(
        fields
            .iter()
            .map(|field| json!({
                "required": [field],
                "properties": {*field: {"not": {"type": "null"}}},
            }))
            .collect::<Vec<_>>()
    )
}

/// `image_url`: null only without `--image-hosts`; otherwise a URL on one of
/// them, by the scheme its entry allows (https unless it names http).
fn image_url_schema(hosts: &[String]) -> Value {
    if hosts.is_empty() {
        return json!({
            "type": "null",
            "description": "Images by URL are off on this server (no --image-hosts): leave it out or null.",
        });
    }
    let entries: Vec<String> = hosts
        .iter()
        .map(|entry| {
            let (scheme, rest) = match entry.trim().split_once("://") {
                Some(("http", rest)) => ("[hH][tT][tT][pP]", rest),
                Some((_, rest)) => ("[hH][tT][tT][pP][sS]", rest),
                None => ("[hH][tT][tT][pP][sS]", entry.trim()),
            };
            let (host, port) = match rest.rsplit_once(':') {
                Some((host, port)) if !rest.ends_with(']') && port.parse::<u16>().is_ok() => {
                    (host, Some(port))
                }
                _ => (rest, None),
            };
            let port = match port {
                Some(port) => format!(":{port}"),
                None => "(?::[0-9]{1,5})?".to_owned(),
            };
            format!(
                "{scheme}://{}{port}",
                regex_escape(&host.to_ascii_lowercase())
            )
        })
        .collect();
    json!({
        "type": ["string", "null"],
        "maxLength": verdict_shared::image_reference::MAX_REFERENCE_CHARS,
        "pattern": format!("^(?:{})(?:[/?#][!-~]*)?$", entries.join("|")),
        "description": "Instead of image_base64: an https URL (http where this server's entry says so) on one of this server's --image-hosts; the worker fetches it.",
    })
}

/// `image_path`: null only without `--image-root`; otherwise `/`-separated
/// components, none empty, `.` or `..`, with no backslash or control
/// character (the pattern spells "not `.` or `..`" without lookahead, which
/// the regex crate lacks).
fn image_path_schema(on: bool) -> Value {
    if !on {
        return json!({
            "type": "null",
            "description": "Images by path are off on this server (no --image-root): leave it out or null.",
        });
    }
    let any = r"[^/\\\x00-\x1f\x7f-\x9f]";
    let not_dot = r"[^/.\\\x00-\x1f\x7f-\x9f]";
    let component = format!(r"(?:{not_dot}{any}*|\.{not_dot}{any}*|\.\.{any}+)");
    json!({
        "type": ["string", "null"],
        "minLength": 1,
        "maxLength": verdict_shared::image_reference::MAX_REFERENCE_CHARS,
        "pattern": format!("^{component}(?:/{component})*$"),
        "description": "Instead of image_base64: a path relative to this server's --image-root, which the workers read.",
    })
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escape = "\\.+*?()|[]{}^$-/".contains(c);
            escape.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect()
}

/// Writes the limits into `spec` (the rendered description).
pub fn apply(spec: &mut Value, limits: &SpecLimits) {
    let schemas = &mut spec["components"]["schemas"];
    let image_chars = limits.max_image_bytes.div_ceil(3) * 4;
    let props = &mut schemas["JsonSubmission"]["properties"];
    let image = &mut props["image_base64"];
    image["pattern"] = json!(image_base64_pattern());
    image["maxLength"] = json!(image_chars);
    props["texts"]["minItems"] = json!(1);
    props["texts"]["maxItems"] = json!(MAX_SENTENCES);
    props["texts"]["items"] = text_schema("A sentence to judge.");
    props["premise"] = text_schema("Optional: a text that holds together with the image.");
    props["premise"]["type"] = json!(["string", "null"]);
    props["callback_url"] = callback_schema(&limits.callback_hosts);
    props["image_base64"]["type"] = json!(["string", "null"]);
    props["image_url"] = image_url_schema(&limits.image_hosts);
    props["image_path"] = image_path_schema(limits.image_paths);
    schemas["JsonSubmission"]["oneOf"] =
        exactly_one_image(&["image_base64", "image_url", "image_path"]);
    // A batch's jobs keep their loose shape on purpose: each is checked as
    // `POST /v1/jobs` would check it and refused in its own item (status and
    // error), not by refusing the batch.
    let batch = &mut schemas["BatchRequest"]["properties"];
    batch["jobs"]["minItems"] = json!(1);
    batch["jobs"]["maxItems"] = json!(limits.max_batch_jobs);
    batch["callback_url"] = callback_schema(&limits.callback_hosts);
    // A wait names 1 to `--max-batch-jobs` job ids, for 0 to 60 seconds.
    let wait = &mut schemas["WaitRequest"]["properties"];
    wait["ids"]["minItems"] = json!(1);
    wait["ids"]["maxItems"] = json!(limits.max_batch_jobs);
    wait["ids"]["items"] = json!({"type": "string", "pattern": UUID_PATTERN});
    wait["wait"]["type"] = json!(["number", "null"]);
    wait["wait"]["minimum"] = json!(0);
    wait["wait"]["maximum"] = json!(crate::routes::jobs_get::MAX_WAIT.as_secs());
    // Parts other than these are refused (invalid_multipart).
    schemas["MultipartSubmission"]["additionalProperties"] = json!(false);
    let multipart = &mut schemas["MultipartSubmission"]["properties"];
    multipart["text"]["minItems"] = json!(1);
    multipart["text"]["maxItems"] = json!(MAX_SENTENCES);
    multipart["text"]["items"] = text_schema("A sentence to judge (one part each).");
    multipart["image"]["maxLength"] = json!(limits.max_image_bytes);
    multipart["image"]["minLength"] = json!(1);
    multipart["premise"] = text_schema("Optional, at most one part.");
    let mut image_parts = vec!["image"];
    for (part, on, schema) in [
        (
            "image_url",
            !limits.image_hosts.is_empty(),
            image_url_schema(&limits.image_hosts),
        ),
        (
            "image_path",
            limits.image_paths,
            image_path_schema(limits.image_paths),
        ),
    ] {
        if on {
            multipart[part] = schema;
            multipart[part]["type"] = json!("string");
            image_parts.push(part);
        } else if let Some(props) = multipart.as_object_mut() {
            // A form part is text: there is no null to send, only no part.
            props.remove(part);
        }
    }
    if limits.callback_hosts.is_empty() {
        // A form part is text: there is no null to send, only no part.
        if let Some(props) = multipart.as_object_mut() {
            props.remove("callback_url");
        }
    } else {
        multipart["callback_url"] = callback_schema(&limits.callback_hosts);
        multipart["callback_url"]["type"] = json!("string");
    }
    // Exactly one image part: the file alone stays plainly required; with
    // references on, one of the parts (a part is never null, so presence
    // is all a branch asks).
    if image_parts.len() > 1 {
        let form = &mut schemas["MultipartSubmission"];
        if let Some(required) = form["required"].as_array_mut() {
            required.retain(|name| !image_parts.iter().any(|part| name == part));
        }
        form["oneOf"] = json!(
            image_parts
                .iter()
                .map(|part| json!({"required": [part]}))
                .collect::<Vec<_>>()
        );
    }

    // The image part is a file of one of these formats (the api reads its
    // first bytes, the worker decodes it).
    if let Some(form) = spec
        .pointer_mut("/paths/~1v1~1jobs/post/requestBody/content/multipart~1form-data")
        .and_then(Value::as_object_mut)
    {
        form.insert(
            "encoding".into(),
            json!({"image": {"contentType": IMAGE_MEDIA_TYPES}}),
        );
    }
    let Some(paths) = spec["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut() {
            let Some(parameters) = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for parameter in parameters {
                let schema = match (parameter["name"].as_str(), parameter["in"].as_str()) {
                    (Some("id"), Some("path")) => {
                        json!({"type": "string", "pattern": UUID_PATTERN})
                    }
                    (Some("wait"), Some("query")) => json!({
                        "type": "number",
                        "minimum": 0,
                        "maximum": crate::routes::jobs_get::MAX_WAIT.as_secs(),
                    }),
                    (Some("Idempotency-Key"), Some("header")) => json!({
                        "type": "string",
                        "pattern": format!("^[!-~]{{1,{MAX_KEY_CHARS}}}$"),
                    }),
                    _ => continue,
                };
                parameter["schema"] = schema;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn matches_image_pattern(text: &str) -> bool {
        regex_match(&image_base64_pattern(), text)
    }

    /// The patterns use only syntax that ECMA-262, Python's `re` and the
    /// regex crate read alike.
    fn regex_match(pattern: &str, text: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(text)
    }

    #[test]
    fn every_signature_prefix_is_the_encoding_of_its_magic() {
        let magics: [&[u8]; 8] = [
            b"\x89PNG\r\n\x1a\n",
            b"\xff\xd8\xff",
            b"GIF87a",
            b"GIF89a",
            b"BM",
            b"II*\x00",
            b"MM\x00*",
            b"RIFF\x10\x20\x30\x40WEBP",
        ];
        for magic in magics {
            for tail in [&b""[..], b"x", b"xy", b"xyz", b"\x00\xff\x10\x80"] {
                let mut file = magic.to_vec();
                file.extend_from_slice(b"0123456789");
                file.extend_from_slice(tail);
                let encoded = base64::engine::general_purpose::STANDARD.encode(&file);
                assert!(
                    matches_image_pattern(&encoded),
                    "{magic:?}+{tail:?}: {encoded}"
                );
                assert!(matches_image_pattern(&format!(" {encoded}\n")));
            }
        }
        for not_image in [&b"hello world"[..], b"GIF88a000000", b"\x89PNX\r\n\x1a\n0"] {
            let encoded = base64::engine::general_purpose::STANDARD.encode(not_image);
            assert!(!matches_image_pattern(&encoded), "{encoded}");
        }
        // Non-canonical padding bits are refused by the decoder and the pattern.
        assert!(!matches_image_pattern("/9j/QR=="));
        assert!(
            base64::engine::general_purpose::STANDARD
                .decode("/9j/QR==")
                .is_err()
        );
        assert!(!matches_image_pattern("/9j/ab"));
    }

    #[test]
    fn image_paths_follow_the_servers_own_check() {
        assert_eq!(image_path_schema(false)["type"], "null");
        let pattern = image_path_schema(true)["pattern"]
            .as_str()
            .unwrap()
            .to_owned();
        for path in [
            "a.png",
            "shop/2026/cup.jpg",
            ".hidden/a.png",
            "..x/a",
            "a/...",
            "caf\u{e9}.png",
        ] {
            assert!(regex_match(&pattern, path), "{path}");
            assert!(
                verdict_shared::image_reference::check_image_path(path).is_ok(),
                "{path}"
            );
        }
        for path in [
            "", "/a.png", "../a.png", "a/../b", "a/./b", ".", "a//b", "a/", "a\\b", "a\nb",
            "a\u{85}b",
        ] {
            assert!(!regex_match(&pattern, path), "{path:?}");
            assert!(
                verdict_shared::image_reference::check_image_path(path).is_err(),
                "{path:?}"
            );
        }
    }

    #[test]
    fn image_urls_name_the_listed_hosts_and_schemes() {
        assert_eq!(image_url_schema(&[])["type"], "null");
        let on = image_url_schema(&["img.example.com".into(), "http://10.0.0.7:9000".into()]);
        let pattern = on["pattern"].as_str().unwrap();
        assert!(regex_match(pattern, "https://img.example.com/a.png"));
        assert!(regex_match(
            pattern,
            "https://img.example.com:8443/a.png?sig=1"
        ));
        assert!(regex_match(pattern, "http://10.0.0.7:9000/a.png"));
        assert!(!regex_match(pattern, "http://img.example.com/a.png"));
        assert!(!regex_match(pattern, "https://10.0.0.7:9000/a.png"));
        assert!(!regex_match(
            pattern,
            "https://img.example.com.evil.example/a.png"
        ));
    }

    #[test]
    fn callbacks_off_means_null_only() {
        assert_eq!(callback_schema(&[])["type"], "null");
        let on = callback_schema(&["hooks.example.com:8080".into()]);
        let pattern = on["pattern"].as_str().unwrap();
        assert!(regex_match(pattern, "https://hooks.example.com:8080/x?y=1"));
        assert!(!regex_match(pattern, "https://evil.example.com/"));
    }
}

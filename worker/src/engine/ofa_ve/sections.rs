//! The `ofa-ve` sections of `manifest.json`: `image`, `text`, `entailment`
//! and `model`, parsed and checked before any file is loaded.
//!
//! The sections that change what the worker computes (`text`, `entailment`)
//! refuse unknown fields: a field this worker does not know means the pack
//! expects a behaviour it does not implement. `model` is descriptive and
//! tolerates additions.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::super::LoadError;
use super::super::image_preprocess::ImageSpec;
use super::super::pack::Pack;
use super::prompt::Template;

/// The answers of the entailment graph, in the order of its logits.
pub const ANSWERS: [&str; 3] = ["yes", "no", "maybe"];

/// Upper bound on `text.max_source_tokens` and `text.max_source_words`: OFA's
/// encoder has 1024 positions.
pub const MAX_SOURCE_LIMIT: usize = 1024;

/// Upper bound on the values in one image's features (the large model's are
/// 1024 x 30 x 30; this is 64 times that).
const MAX_FEATURE_VALUES: usize = 1 << 26;

/// `image`: the common image spec plus the image graph's output shape.
#[derive(Debug, Clone, Deserialize)]
pub struct ImageSection {
    #[serde(flatten)]
    pub spec: ImageSpec,
    /// `[1, C, H, W]`.
    pub features: [usize; 4],
}

/// `text`: tokenizer, prompts and framing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSection {
    pub tokenizer: String,
    /// One `{}`: the sentence.
    pub prompt: String,
    /// Two `{}`: the premise, then the sentence.
    pub premise_prompt: String,
    pub max_source_words: usize,
    pub max_source_tokens: usize,
    pub bos_id: u32,
    pub pad_id: u32,
    pub eos_id: u32,
}

/// `entailment`: the entailment graph's names and answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntailmentSection {
    pub inputs: EntailmentInputs,
    pub output: String,
    pub answers: Vec<String>,
    /// The BPE ids of " yes", " no", " maybe": checked against the tokenizer.
    pub answer_token_ids: [u32; 3],
}

/// The names of the entailment graph's two inputs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntailmentInputs {
    pub input_ids: String,
    pub image_features: String,
}

/// `model`: what the graphs were exported from.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelSection {
    pub config: String,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub heads: usize,
    pub vocab_size: usize,
    pub resnet: String,
    /// A pack built with random weights (for tests): its verdicts mean nothing.
    pub random_init: bool,
    #[serde(default)]
    pub seed: Option<u64>,
}

/// Every section of an `ofa-ve` manifest, checked.
#[derive(Debug, Clone)]
pub struct Sections {
    pub image: ImageSection,
    pub text: TextSection,
    pub entailment: EntailmentSection,
    pub model: ModelSection,
    /// `text.prompt` and `text.premise_prompt`, parsed.
    pub prompt: Template,
    pub premise_prompt: Template,
}

impl Sections {
    /// The sections of `pack`'s manifest; an error names the manifest.
    pub fn load(pack: &Pack) -> Result<Sections, LoadError> {
        parse(&pack.manifest().sections).map_err(|message| LoadError::Manifest {
            path: pack.manifest_path().to_path_buf(),
            message,
        })
    }
}

/// Parses and checks the sections; the error says which field is wrong.
pub fn parse(sections: &Map<String, Value>) -> Result<Sections, String> {
    let image: ImageSection = section(sections, "image")?;
    let text: TextSection = section(sections, "text")?;
    let entailment: EntailmentSection = section(sections, "entailment")?;
    let model: ModelSection = section(sections, "model")?;
    check_image(&image)?;
    check_text(&text)?;
    check_entailment(&entailment)?;
    check_model(&model)?;
    for (name, id) in [
        ("text.bos_id", text.bos_id),
        ("text.pad_id", text.pad_id),
        ("text.eos_id", text.eos_id),
    ]
    .into_iter()
    .chain(
        entailment
            .answer_token_ids
            .iter()
            .map(|&id| ("entailment.answer_token_ids", id)),
    ) {
        if id as usize >= model.vocab_size {
            return Err(format!(
                "{name} {id} is not below model.vocab_size {}",
                model.vocab_size
            ));
        }
    }
    let prompt = Template::parse(&text.prompt, 1, "text.prompt")?;
    let premise_prompt = Template::parse(&text.premise_prompt, 2, "text.premise_prompt")?;
    Ok(Sections {
        image,
        text,
        entailment,
        model,
        prompt,
        premise_prompt,
    })
}

fn section<T: DeserializeOwned>(sections: &Map<String, Value>, name: &str) -> Result<T, String> {
    let value = sections
        .get(name)
        .ok_or_else(|| format!("missing section {name:?}"))?;
    serde_json::from_value(value.clone()).map_err(|e| format!("section {name:?}: {e}"))
}

fn check_image(image: &ImageSection) -> Result<(), String> {
    image.spec.validate()?;
    if image.spec.layout != "nchw" {
        return Err(format!(
            "image.layout {:?}: OFA's image graph takes nchw",
            image.spec.layout
        ));
    }
    let [batch, channels, height, width] = image.features;
    if batch != 1 || channels == 0 || height == 0 || width == 0 {
        return Err(format!(
            "image.features {:?} must be [1, C, H, W] with C, H, W positive",
            image.features
        ));
    }
    let values = channels.saturating_mul(height).saturating_mul(width);
    if values > MAX_FEATURE_VALUES {
        return Err(format!(
            "image.features {:?} hold {values} values, more than {MAX_FEATURE_VALUES}",
            image.features
        ));
    }
    if image.spec.input.is_empty() || image.spec.output.is_empty() {
        return Err("image.input and image.output must be named".into());
    }
    Ok(())
}

fn check_text(text: &TextSection) -> Result<(), String> {
    if !(1..=MAX_SOURCE_LIMIT).contains(&text.max_source_tokens) {
        return Err(format!(
            "text.max_source_tokens {} must be in 1..={MAX_SOURCE_LIMIT}",
            text.max_source_tokens
        ));
    }
    if !(1..=MAX_SOURCE_LIMIT).contains(&text.max_source_words) {
        return Err(format!(
            "text.max_source_words {} must be in 1..={MAX_SOURCE_LIMIT}",
            text.max_source_words
        ));
    }
    if text.bos_id == text.eos_id || text.bos_id == text.pad_id || text.eos_id == text.pad_id {
        return Err(format!(
            "text.bos_id {}, text.pad_id {} and text.eos_id {} must be three different ids",
            text.bos_id, text.pad_id, text.eos_id
        ));
    }
    Ok(())
}

fn check_entailment(entailment: &EntailmentSection) -> Result<(), String> {
    if entailment.answers != ANSWERS {
        return Err(format!(
            "entailment.answers {:?} must be {ANSWERS:?} (the order of the graph's logits)",
            entailment.answers
        ));
    }
    let inputs = &entailment.inputs;
    if inputs.input_ids.is_empty()
        || inputs.image_features.is_empty()
        || inputs.input_ids == inputs.image_features
        || entailment.output.is_empty()
    {
        return Err(
            "entailment.inputs.input_ids, entailment.inputs.image_features and entailment.output must be named, the inputs differently"
                .into(),
        );
    }
    let [yes, no, maybe] = entailment.answer_token_ids;
    if yes == no || yes == maybe || no == maybe {
        return Err(format!(
            "entailment.answer_token_ids {:?} must be three different ids",
            entailment.answer_token_ids
        ));
    }
    Ok(())
}

fn check_model(model: &ModelSection) -> Result<(), String> {
    let sizes = [
        ("model.d_model", model.d_model),
        ("model.encoder_layers", model.encoder_layers),
        ("model.decoder_layers", model.decoder_layers),
        ("model.heads", model.heads),
        ("model.vocab_size", model.vocab_size),
    ];
    if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
        return Err(format!("{name} must be positive"));
    }
    if !model.d_model.is_multiple_of(model.heads) {
        return Err(format!(
            "model.d_model {} is not a multiple of model.heads {}",
            model.d_model, model.heads
        ));
    }
    if model.vocab_size > u32::MAX as usize {
        return Err(format!(
            "model.vocab_size {} is too large",
            model.vocab_size
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Map<String, Value> {
        let sections = json!({
            "image": {
                "input": "image", "output": "image_features", "size": 480,
                "resize": "stretch", "resize_filter": "bicubic",
                "mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5],
                "layout": "nchw", "features": [1, 1024, 30, 30]
            },
            "text": {
                "tokenizer": "tokenizer.json",
                "prompt": " does the image describe \" {} \"?",
                "premise_prompt": " can image and text1 \" {} \" imply text2 \" {} \"?",
                "max_source_words": 256, "max_source_tokens": 256,
                "bos_id": 0, "pad_id": 1, "eos_id": 2
            },
            "entailment": {
                "inputs": {"input_ids": "input_ids", "image_features": "image_features"},
                "output": "answer_logits",
                "answers": ["yes", "no", "maybe"],
                "answer_token_ids": [4420, 117, 2739]
            },
            "model": {
                "config": "large", "d_model": 1024, "encoder_layers": 12,
                "decoder_layers": 12, "heads": 16, "vocab_size": 59457,
                "resnet": "resnet152", "random_init": false, "seed": null
            }
        });
        match sections {
            Value::Object(map) => map,
            _ => unreachable!("a JSON object literal"),
        }
    }

    /// The error of `valid()` changed by `edit`.
    fn error_with(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut sections = valid();
        edit(&mut sections);
        match parse(&sections) {
            Ok(_) => panic!("the edited sections were accepted"),
            Err(message) => message,
        }
    }

    #[test]
    fn the_contracts_example_parses() {
        let s = parse(&valid()).unwrap();
        assert_eq!(s.image.features, [1, 1024, 30, 30]);
        assert_eq!(s.text.max_source_tokens, 256);
        assert_eq!(s.prompt.fill(&["x"]), " does the image describe \" x \"?");
        assert!(!s.model.random_init);
    }

    #[test]
    fn missing_sections_are_named() {
        let err = error_with(|s| {
            s.remove("entailment");
        });
        assert!(err.contains("missing section \"entailment\""), "{err}");
    }

    #[test]
    fn answers_must_be_yes_no_maybe_in_order() {
        let err = error_with(|s| s["entailment"]["answers"] = json!(["no", "yes", "maybe"]));
        assert!(err.contains("entailment.answers"), "{err}");
    }

    #[test]
    fn unknown_text_fields_are_refused() {
        let err = error_with(|s| s["text"]["max_target_tokens"] = json!(8));
        assert!(
            err.contains("section \"text\"") && err.contains("max_target_tokens"),
            "{err}"
        );
    }

    #[test]
    fn token_limits_must_be_in_range() {
        let err = error_with(|s| s["text"]["max_source_tokens"] = json!(0));
        assert!(err.contains("text.max_source_tokens"), "{err}");
        let err = error_with(|s| s["text"]["max_source_words"] = json!(5000));
        assert!(err.contains("text.max_source_words"), "{err}");
        let err = error_with(|s| s["text"]["max_source_tokens"] = json!(-1));
        assert!(err.contains("section \"text\""), "{err}");
    }

    #[test]
    fn special_ids_must_differ_and_fit_the_vocabulary() {
        let err = error_with(|s| s["text"]["eos_id"] = json!(0));
        assert!(err.contains("three different ids"), "{err}");
        let err = error_with(|s| s["entailment"]["answer_token_ids"] = json!([4420, 117, 60000]));
        assert!(err.contains("model.vocab_size"), "{err}");
    }

    #[test]
    fn prompts_need_their_placeholders() {
        let err = error_with(|s| s["text"]["premise_prompt"] = json!(" does \" {} \" hold?"));
        assert!(err.contains("text.premise_prompt"), "{err}");
    }

    #[test]
    fn image_features_and_resize_are_checked() {
        let err = error_with(|s| s["image"]["features"] = json!([2, 1024, 30, 30]));
        assert!(err.contains("image.features"), "{err}");
        let err = error_with(|s| s["image"]["resize"] = json!("squash"));
        assert!(err.contains("section \"image\""), "{err}");
        let err = error_with(|s| s["image"]["crop_fraction"] = json!(0.875));
        assert!(err.contains("image.crop_fraction"), "{err}");
        let mut whole = valid();
        whole["image"]["crop_fraction"] = json!(1.0);
        assert!(parse(&whole).is_ok(), "a stretch may say it crops nothing");
        let err = error_with(|s| s["image"]["layout"] = json!("nhwc"));
        assert!(err.contains("image.layout"), "{err}");
    }

    #[test]
    fn model_sizes_are_checked() {
        let err = error_with(|s| s["model"]["heads"] = json!(7));
        assert!(err.contains("model.heads"), "{err}");
        let err = error_with(|s| s["model"]["d_model"] = json!(0));
        assert!(err.contains("model.d_model"), "{err}");
    }
}

//! Why an image was refused, with the stable code a failed job carries.

/// An image that cannot be judged. Every variant is caused by the input, so
/// decoding the same bytes again would fail again.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the image is empty (0 bytes)")]
    Empty,
    #[error("the image is {bytes} bytes, more than the limit of {max} bytes")]
    TooManyBytes { bytes: usize, max: usize },
    #[error("the image format is not supported: {0}")]
    Format(String),
    #[error("the image could not be decoded: {0}")]
    Invalid(String),
    #[error("the image is {width}x{height} pixels, more than the limit of {max_pixels} pixels")]
    TooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error(
        "the image is {width}x{height} pixels: decoding it would need about {needed_mb} MB, and this \
         worker can spare {spare_mb} MB under its memory limit (fleet up --worker-memory)"
    )]
    TooLargeForMemory {
        width: u32,
        height: u32,
        needed_mb: u64,
        spare_mb: u64,
    },
    #[error("decoding the image would need more memory than this worker may use: {0}")]
    OverDecoderLimit(String),
    #[error("the image is truncated: {0}")]
    Truncated(String),
}

impl DecodeError {
    /// The stable code stored in a failed job's `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Empty => "image_empty",
            DecodeError::TooManyBytes { .. } => "image_too_large",
            DecodeError::Format(_) => "image_format",
            DecodeError::Invalid(_) => "image_decode",
            DecodeError::TooLarge { .. } => "image_too_large",
            DecodeError::TooLargeForMemory { .. } => "image_too_large",
            DecodeError::OverDecoderLimit(_) => "image_too_large",
            DecodeError::Truncated(_) => "image_truncated",
        }
    }
}

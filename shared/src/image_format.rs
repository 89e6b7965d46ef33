//! Naming an image's format from its first bytes, without decoding it.
//!
//! The api refuses an image sent with a job that is not one of the formats the
//! worker decodes; whether the rest of the file is sound is the worker's
//! business (a truncated PNG passes here and fails there with `image_decode`).
//! The worker names the format of an image it fetched the same way.

/// The formats the worker can decode, by their magic bytes.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    const FORMATS: [(&[u8], &str); 7] = [
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"\xff\xd8\xff", "jpeg"),
        (b"GIF87a", "gif"),
        (b"GIF89a", "gif"),
        (b"BM", "bmp"),
        (b"II*\x00", "tiff"),
        (b"MM\x00*", "tiff"),
    ];
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Some("webp");
    }
    FORMATS
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::sniff;

    #[test]
    fn names_the_supported_formats() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("png"));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"), Some("jpeg"));
        assert_eq!(sniff(b"GIF89a\x01\0"), Some("gif"));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some("webp"));
        assert_eq!(sniff(b"BM6\0\0\0"), Some("bmp"));
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Some("tiff"));
        assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Some("tiff"));
    }

    #[test]
    fn refuses_everything_else() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\x89PN"), None);
        assert_eq!(sniff(b"%PDF-1.7"), None);
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b"<svg xmlns="), None);
    }
}

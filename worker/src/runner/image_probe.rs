//! The image's pixel size, for the job's log line, from its header only.

use std::io::Cursor;

/// Width and height, if the header can be read; `None` otherwise (the judge
/// reports what is wrong with the image).
pub fn dimensions(image: &[u8]) -> Option<(u32, u32)> {
    image::ImageReader::new(Cursor::new(image))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_png_header_and_survives_garbage() {
        let mut png = Vec::new();
        image::RgbImage::new(7, 3)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(dimensions(&png), Some((7, 3)));
        assert_eq!(dimensions(&png[..20]), None);
        assert_eq!(dimensions(b""), None);
    }
}

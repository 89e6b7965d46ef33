//! Colour words and the colours of the image: what a colour histogram can
//! check and the classifier cannot ("The saucer is red", "The image is in
//! black and white").
//!
//! The sentence side is a small fixed vocabulary (basic colour terms and a
//! few words about colour as such); the image side counts the pixels of the
//! square the model sees that fall in each colour's region of HSV space.
//! Named colours are counted in the middle 60 % of the square, where the
//! main object usually is; "colourful" and "black and white" look at all of
//! it. An image is black and white when almost none of it has clear colour
//! (under [`COLOURED_LIMIT`]); counting its pixels without colour instead
//! would call a colour wheel on a black ground black and white. Thresholds
//! are fixed here, documented in `docs/rule.md`, and the rule's colour slope
//! and midpoint are fitted on the dev set.

use image::RgbImage;

/// What a colour word asks of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Colour {
    Red,
    Orange,
    Yellow,
    Green,
    Blue,
    Purple,
    Pink,
    Brown,
    Black,
    White,
    Grey,
    /// "colourful", "bright colours": how saturated the whole image is.
    Colourful,
    /// "black and white", "monochrome": how far the image is from having any
    /// clear colour.
    Achromatic,
}

const ALL: [Colour; 13] = [
    Colour::Red,
    Colour::Orange,
    Colour::Yellow,
    Colour::Green,
    Colour::Blue,
    Colour::Purple,
    Colour::Pink,
    Colour::Brown,
    Colour::Black,
    Colour::White,
    Colour::Grey,
    Colour::Colourful,
    Colour::Achromatic,
];

/// Sentence words and the colour each names.
const WORDS: [(&str, Colour); 22] = [
    ("red", Colour::Red),
    ("orange", Colour::Orange),
    ("yellow", Colour::Yellow),
    ("green", Colour::Green),
    ("blue", Colour::Blue),
    ("purple", Colour::Purple),
    ("violet", Colour::Purple),
    ("pink", Colour::Pink),
    ("brown", Colour::Brown),
    ("black", Colour::Black),
    ("dark", Colour::Black),
    ("white", Colour::White),
    ("light", Colour::White),
    ("grey", Colour::Grey),
    ("gray", Colour::Grey),
    ("silver", Colour::Grey),
    ("colourful", Colour::Colourful),
    ("colorful", Colour::Colourful),
    ("colours", Colour::Colourful),
    ("colors", Colour::Colourful),
    ("multicoloured", Colour::Colourful),
    ("multicolored", Colour::Colourful),
];

/// Words that ask whether the image has no colour at all.
const ACHROMATIC_WORDS: [&str; 3] = ["monochrome", "greyscale", "grayscale"];

impl Colour {
    pub fn name(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Orange => "orange",
            Colour::Yellow => "yellow",
            Colour::Green => "green",
            Colour::Blue => "blue",
            Colour::Purple => "purple",
            Colour::Pink => "pink",
            Colour::Brown => "brown",
            Colour::Black => "black",
            Colour::White => "white",
            Colour::Grey => "grey",
            Colour::Colourful => "colourful",
            Colour::Achromatic => "black and white",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Whether `word` is one of the colour words: such a word asks about a
/// colour, never names a class ("red" is closest to *redshank*).
pub fn is_colour_word(word: &str) -> bool {
    WORDS.iter().any(|(w, _)| *w == word) || ACHROMATIC_WORDS.contains(&word)
}

/// The colours a sentence's words ask about, each once, in order. "Black"
/// and "white" together ask whether the image is black and white.
pub fn colour_terms(words: &[String]) -> Vec<Colour> {
    let has = |w: &str| words.iter().any(|x| x == w);
    let achromatic = (has("black") && has("white")) || ACHROMATIC_WORDS.iter().any(|w| has(w));
    let mut out: Vec<Colour> = Vec::new();
    for word in words {
        let Some(&(_, colour)) = WORDS.iter().find(|(w, _)| w == word) else {
            continue;
        };
        if achromatic && matches!(colour, Colour::Black | Colour::White) {
            continue;
        }
        if !out.contains(&colour) {
            out.push(colour);
        }
    }
    if achromatic {
        out.push(Colour::Achromatic);
    }
    out
}

/// The share of the image with clear colour from which it is not black and
/// white at all: "black and white" is 1 with no such pixel and falls
/// linearly to 0 at this share.
pub const COLOURED_LIMIT: f32 = 0.05;

/// Whether a pixel has clear colour (the named colours' own test).
fn has_colour(s: f32, v: f32) -> bool {
    s >= 0.3 && v >= 0.25
}

/// For each colour, the share of the image it covers, in [0, 1]; for
/// "colourful" the mean saturation, for "black and white" how far the image
/// is from having any clear colour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColourFractions {
    shares: [f32; ALL.len()],
    /// The share of the whole square with clear colour.
    coloured: f32,
}

impl ColourFractions {
    /// Measures `square` (the image as the model sees it).
    pub fn measure(square: &RgbImage) -> ColourFractions {
        let (width, height) = square.dimensions();
        let mut centre = [0u32; ALL.len()];
        let mut centre_pixels = 0u32;
        let mut coloured = 0u32;
        let mut saturation = 0f64;
        let (x0, x1) = (width / 5, width - width / 5);
        let (y0, y1) = (height / 5, height - height / 5);
        for (x, y, pixel) in square.enumerate_pixels() {
            let (h, s, v) = hsv(pixel.0);
            saturation += f64::from(s);
            coloured += u32::from(has_colour(s, v));
            if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
                centre_pixels += 1;
                for colour in classify(h, s, v) {
                    centre[colour.index()] += 1;
                }
            }
        }
        let all = (width * height).max(1) as f32;
        let coloured = coloured as f32 / all;
        let mut fractions = [0f32; ALL.len()];
        for colour in ALL {
            fractions[colour.index()] = match colour {
                Colour::Colourful => (saturation / f64::from(all)) as f32,
                Colour::Achromatic => (1.0 - coloured / COLOURED_LIMIT).max(0.0),
                _ => centre[colour.index()] as f32 / centre_pixels.max(1) as f32,
            };
        }
        ColourFractions {
            shares: fractions,
            coloured,
        }
    }

    pub fn get(&self, colour: Colour) -> f32 {
        self.shares[colour.index()]
    }

    /// The share of the whole square with clear colour.
    pub fn coloured(&self) -> f32 {
        self.coloured
    }
}

/// Hue in degrees [0, 360), saturation and value in [0, 1].
fn hsv([r, g, b]: [u8; 3]) -> (f32, f32, f32) {
    let (r, g, b) = (
        f32::from(r) / 255.0,
        f32::from(g) / 255.0,
        f32::from(b) / 255.0,
    );
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let hue = if delta <= 1e-6 {
        0.0
    } else if max == r {
        60.0 * red_sector((g - b) / delta)
    } else if max == g {
        60.0 * ((b - r) / delta + 2.0)
    } else {
        60.0 * ((r - g) / delta + 4.0)
    };
    let saturation = if max > 0.0 { delta / max } else { 0.0 };
    (hue, saturation, max)
}

/// `x.rem_euclid(6.0)` for the red sector's `x` (in [-1, 1]: `|g - b|` is at
/// most `max - min`, and rounded subtraction keeps that order), where `x % 6`
/// is `x` itself, so the same bits. `rem_euclid` compiles to a call to
/// `fmodf`, which made up much of the colour shares' time (0.8 ms a job in a
/// PNG run of bench-peer).
fn red_sector(x: f32) -> f32 {
    if x < 0.0 { x + 6.0 } else { x }
}

/// The named colours a pixel counts for (brown overlaps red and orange).
fn classify(h: f32, s: f32, v: f32) -> impl Iterator<Item = Colour> {
    let chromatic = has_colour(s, v);
    let hue = |lo: f32, hi: f32| chromatic && h >= lo && h < hi;
    [
        (v < 0.3, Colour::Black),
        (s < 0.2 && v > 0.75, Colour::White),
        (s < 0.2 && (0.25..=0.8).contains(&v), Colour::Grey),
        (hue(0.0, 15.0) || hue(340.0, 361.0), Colour::Red),
        (hue(15.0, 40.0) && v >= 0.6, Colour::Orange),
        (hue(10.0, 45.0) && v < 0.6, Colour::Brown),
        (hue(40.0, 70.0), Colour::Yellow),
        (hue(70.0, 165.0), Colour::Green),
        (hue(165.0, 255.0), Colour::Blue),
        (hue(255.0, 290.0), Colour::Purple),
        (hue(290.0, 340.0), Colour::Pink),
    ]
    .into_iter()
    .filter(|(yes, _)| *yes)
    .map(|(_, colour)| colour)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_red_sector_is_rem_euclid_bit_for_bit() {
        let mut reds = 0;
        for r in (0..=255u8).step_by(3) {
            for g in (0..=255u8).step_by(3) {
                for b in (0..=255u8).step_by(3) {
                    let (rf, gf, bf) = (
                        f32::from(r) / 255.0,
                        f32::from(g) / 255.0,
                        f32::from(b) / 255.0,
                    );
                    let (max, min) = (rf.max(gf).max(bf), rf.min(gf).min(bf));
                    if max - min <= 1e-6 || max != rf {
                        continue;
                    }
                    reds += 1;
                    let x = (gf - bf) / (max - min);
                    assert_eq!(
                        red_sector(x).to_bits(),
                        x.rem_euclid(6.0).to_bits(),
                        "rgb {r} {g} {b}: x {x}"
                    );
                }
            }
        }
        assert!(reds > 100_000, "{reds} red-sector pixels checked");
        for x in [-1.0f32, -0.5, -f32::MIN_POSITIVE, -0.0, 0.0, 0.5, 1.0] {
            assert_eq!(red_sector(x).to_bits(), x.rem_euclid(6.0).to_bits(), "{x}");
        }
    }

    fn words(text: &str) -> Vec<String> {
        super::super::words::words(text)
    }

    #[test]
    fn colour_words_are_found_once_and_black_and_white_is_one_question() {
        assert_eq!(colour_terms(&words("The saucer is red.")), [Colour::Red]);
        assert_eq!(
            colour_terms(&words("A red car and a red, dark-blue door")),
            [Colour::Red]
        );
        assert_eq!(
            colour_terms(&words("The image is in black and white.")),
            [Colour::Achromatic]
        );
        assert_eq!(
            colour_terms(&words("The horse is black on a white background.")),
            [Colour::Achromatic]
        );
        assert_eq!(
            colour_terms(&words("The picture shows many colours.")),
            [Colour::Colourful]
        );
        assert!(colour_terms(&words("A cat on a sofa.")).is_empty());
        assert!(is_colour_word("red") && is_colour_word("monochrome"));
        assert!(!is_colour_word("redshank"));
    }

    #[test]
    fn a_red_square_is_red_and_colourful_a_grey_one_is_achromatic() {
        let red = RgbImage::from_pixel(20, 20, image::Rgb([200, 20, 30]));
        let f = ColourFractions::measure(&red);
        assert_eq!(f.get(Colour::Red), 1.0);
        assert_eq!(f.get(Colour::Blue), 0.0);
        assert_eq!(f.get(Colour::Achromatic), 0.0);
        assert!(f.get(Colour::Colourful) > 0.8);
        let grey = RgbImage::from_pixel(20, 20, image::Rgb([128, 128, 128]));
        let f = ColourFractions::measure(&grey);
        assert_eq!(f.get(Colour::Grey), 1.0);
        assert_eq!(f.get(Colour::Red), 0.0);
        assert_eq!(f.get(Colour::Achromatic), 1.0);
        assert_eq!(f.get(Colour::Colourful), 0.0);
    }

    #[test]
    fn a_colour_wheel_on_a_black_ground_is_not_black_and_white() {
        // Most pixels have no colour (the black ground, the white middle),
        // yet a tenth of the image is vividly coloured.
        let wheel = RgbImage::from_fn(100, 100, |x, _| match x {
            0..45 => image::Rgb([0, 0, 0]),
            45..55 => image::Rgb([20, 200, 40]),
            _ => image::Rgb([255, 255, 255]),
        });
        let f = ColourFractions::measure(&wheel);
        assert!((f.coloured() - 0.1).abs() < 1e-6);
        assert_eq!(f.get(Colour::Achromatic), 0.0);
        // A trace of colour (1 %) leaves it mostly black and white.
        let grey = RgbImage::from_fn(100, 100, |x, y| {
            if x < 10 && y < 10 {
                image::Rgb([200, 20, 30])
            } else {
                image::Rgb([90, 90, 90])
            }
        });
        let f = ColourFractions::measure(&grey);
        assert!((f.get(Colour::Achromatic) - 0.8).abs() < 1e-5);
    }

    #[test]
    fn named_colours_count_the_middle_only() {
        // A blue frame around a red middle: the middle decides.
        let img = RgbImage::from_fn(50, 50, |x, y| {
            if (10..40).contains(&x) && (10..40).contains(&y) {
                image::Rgb([220, 10, 10])
            } else {
                image::Rgb([10, 10, 220])
            }
        });
        let f = ColourFractions::measure(&img);
        assert_eq!(f.get(Colour::Red), 1.0);
        assert_eq!(f.get(Colour::Blue), 0.0);
    }
}

//! Walking a JPEG's first scan, code by code, to see whether its data covers
//! the whole picture.
//!
//! A JPEG cut part-way and given an end marker again (or whose scan is
//! simply short) passes the marker checks of `jpeg_scan`: it has an end, and
//! more than a bit of data a block. The decoder then fills every block the
//! data does not reach with grey and reports success, so a photo cut at a
//! third came back as a verdict on a picture that is two thirds grey. The
//! Huffman codes say exactly how many blocks the data holds: this walks them
//! (reading code lengths and skipping the coefficient bits, no arithmetic, no
//! pixels) and counts the blocks of the first scan, which codes at least the
//! DC of every block of its components in every kind of Huffman JPEG
//! (baseline, extended, progressive). A scan that ends before its last block
//! is truncated.
//!
//! The walk concludes only on what it is sure of: on anything it does not
//! follow (arithmetic coding, lossless frames, a refinement scan first, a code
//! that is in no table, a missing restart marker) it answers "no conclusion"
//! and leaves the file to the decoder.

use std::ops::Range;

use crate::jpeg_scan::JpegLayout;

/// How far the first scan's data reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    /// The MCUs (minimum coded units) the scan's data codes completely.
    pub coded: u64,
    /// The MCUs the frame's size calls for.
    pub expected: u64,
}

impl Coverage {
    pub fn is_complete(&self) -> bool {
        self.coded >= self.expected
    }
}

/// The coverage of the first scan of `file` (whose markers `layout` read), or
/// `None` when the walk cannot conclude.
pub fn first_scan_coverage(file: &[u8], layout: &JpegLayout) -> Option<Coverage> {
    // Huffman-coded DCT frames only: baseline, extended, progressive.
    let (width, height) = (layout.width, layout.height);
    let scan = layout.first_scan.as_ref()?;
    let frame_marker = layout.frame_marker?;
    if !matches!(frame_marker, 0xC0..=0xC2) || width == 0 || height == 0 {
        return None;
    }
    let tables = Tables::parse(file, &scan.tables)?;
    let header = file.get(scan.header.clone())?;
    let count = usize::from(*header.first()?);
    if count == 0 || header.len() < 1 + 2 * count + 3 {
        return None;
    }
    let (ss, se, a) = (
        header[1 + 2 * count],
        header[2 + 2 * count],
        header[3 + 2 * count],
    );
    let progressive = frame_marker == 0xC2;
    let dc_only = match (progressive, ss, se, a >> 4) {
        (false, 0, 63, _) => false,
        // A first DC scan (not a refinement).
        (true, 0, 0, 0) => true,
        _ => return None,
    };
    let h_max = layout.components.iter().map(|c| c.1).max()?.max(1);
    let v_max = layout.components.iter().map(|c| c.2).max()?.max(1);
    let mut members = Vec::with_capacity(count);
    for pair in header[1..1 + 2 * count].chunks_exact(2) {
        let &(_, h, v) = layout.components.iter().find(|c| c.0 == pair[0])?;
        let dc = tables.dc.get(usize::from(pair[1] >> 4))?.as_ref()?;
        let ac = if dc_only {
            None
        } else {
            Some(tables.ac.get(usize::from(pair[1] & 0x0F))?.as_ref()?)
        };
        members.push((h.max(1), v.max(1), dc, ac));
    }
    let (w, h) = (u64::from(width), u64::from(height));
    let (expected, blocks_per_mcu): (u64, Vec<u64>) = if members.len() == 1 {
        // One component: its blocks in raster order, one an MCU.
        let (ch, cv) = (u64::from(members[0].0), u64::from(members[0].1));
        let cw = (w * ch).div_ceil(u64::from(h_max));
        let c_h = (h * cv).div_ceil(u64::from(v_max));
        (cw.div_ceil(8) * c_h.div_ceil(8), vec![1])
    } else {
        let mcus = w.div_ceil(8 * u64::from(h_max)) * h.div_ceil(8 * u64::from(v_max));
        (
            mcus,
            members
                .iter()
                .map(|m| u64::from(m.0) * u64::from(m.1))
                .collect(),
        )
    };
    let mut bits = Bits::new(file, scan.data.clone());
    let interval = u64::from(scan.restart_interval);
    let mut coded = 0u64;
    'mcus: while coded < expected {
        if interval > 0 && coded > 0 && coded.is_multiple_of(interval) {
            match bits.restart() {
                Restart::Found => {}
                Restart::End => break 'mcus,
                Restart::Missing => return None,
            }
        }
        for (member, &blocks) in members.iter().zip(&blocks_per_mcu) {
            for _ in 0..blocks {
                match block(&mut bits, member.2, member.3) {
                    Step::Done => {}
                    Step::OutOfData => break 'mcus,
                    Step::Invalid => return None,
                }
            }
        }
        coded += 1;
    }
    Some(Coverage { coded, expected })
}

enum Step {
    Done,
    OutOfData,
    Invalid,
}

/// One block: the DC difference and, unless `ac` is `None`, the AC run-length
/// codes up to end-of-block or the 63rd coefficient.
fn block(bits: &mut Bits, dc: &Huffman, ac: Option<&Huffman>) -> Step {
    let Some(category) = dc.decode(bits) else {
        return bits.failure();
    };
    if category > 16 {
        return Step::Invalid;
    }
    if !bits.skip(u32::from(category)) {
        return Step::OutOfData;
    }
    let Some(ac) = ac else {
        return Step::Done;
    };
    let mut k = 1u32;
    while k < 64 {
        let Some(rs) = ac.decode(bits) else {
            return bits.failure();
        };
        let (run, size) = (u32::from(rs >> 4), u32::from(rs & 0x0F));
        if size == 0 {
            if run != 15 {
                break; // end of block
            }
            k += 16;
            continue;
        }
        k += run;
        if k > 63 || !bits.skip(size) {
            return if k > 63 {
                Step::Invalid
            } else {
                Step::OutOfData
            };
        }
        k += 1;
    }
    Step::Done
}

/// The DC and AC Huffman tables (four of each) defined before the scan.
struct Tables {
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
}

impl Tables {
    fn parse(file: &[u8], segments: &[Range<usize>]) -> Option<Tables> {
        let mut tables = Tables {
            dc: Default::default(),
            ac: Default::default(),
        };
        for range in segments {
            let mut rest = file.get(range.clone())?;
            while !rest.is_empty() {
                let class_id = rest[0];
                let counts: [u8; 16] = rest.get(1..17)?.try_into().ok()?;
                let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
                let symbols = rest.get(17..17 + total)?;
                let slot = usize::from(class_id & 0x0F);
                let table = Some(Huffman::new(&counts, symbols)?);
                match class_id >> 4 {
                    0 => *tables.dc.get_mut(slot)? = table,
                    1 => *tables.ac.get_mut(slot)? = table,
                    _ => return None,
                }
                rest = &rest[17 + total..];
            }
        }
        Some(tables)
    }
}

/// A canonical Huffman table (JPEG's: code lengths 1 to 16, as in annex C of
/// ITU T.81), decoded with an 8-bit lookup and bit by bit beyond.
struct Huffman {
    /// For each 8-bit prefix: (code length, symbol), length 0 when the code
    /// is longer than 8 bits.
    fast: [(u8, u8); 256],
    /// The largest code of each length (-1 for none), and where its symbols
    /// start.
    max_code: [i32; 17],
    offset: [i32; 17],
    symbols: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], symbols: &[u8]) -> Option<Huffman> {
        let mut table = Huffman {
            fast: [(0, 0); 256],
            max_code: [-1; 17],
            offset: [0; 17],
            symbols: symbols.to_vec(),
        };
        let mut code = 0i32;
        let mut k = 0usize;
        for length in 1..=16usize {
            let n = usize::from(counts[length - 1]);
            table.offset[length] = k as i32 - code;
            for _ in 0..n {
                if length <= 8 {
                    let shift = 8 - length;
                    let first = (code as usize) << shift;
                    for prefix in first..first + (1 << shift) {
                        *table.fast.get_mut(prefix)? = (length as u8, symbols[k]);
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                table.max_code[length] = code - 1;
            }
            // Codes of one length must fit in it.
            if code > 1 << length {
                return None;
            }
            code <<= 1;
        }
        Some(table)
    }

    /// The next symbol, or `None` when the data ends first or the bits are
    /// no code (the reader says which: [`Bits::failure`]).
    fn decode(&self, bits: &mut Bits) -> Option<u8> {
        if bits.count < 16 {
            bits.fill();
        }
        let (length, symbol) = self.fast[bits.peek8() as usize];
        if length > 0 {
            return bits.skip(u32::from(length)).then_some(symbol);
        }
        let mut code = 0i32;
        for length in 1..=16 {
            code = (code << 1) | i32::from(bits.bit()?);
            if code <= self.max_code[length] {
                let index = usize::try_from(self.offset[length] + code).ok()?;
                return self.symbols.get(index).copied();
            }
        }
        bits.invalid = true;
        None
    }
}

enum Restart {
    Found,
    /// The data ends where the restart marker should be.
    End,
    /// Something else is there.
    Missing,
}

/// The bits of entropy-coded data: stuffed zeros removed, stopping at any
/// marker; past the end it reads as 1-bits (JPEG's padding) but says so.
struct Bits<'a> {
    file: &'a [u8],
    at: usize,
    end: usize,
    buffer: u64,
    count: u32,
    /// At a marker (or the end of the data): no more bytes until a restart.
    stopped: bool,
    /// The last failure was a code in no table, not the end of the data.
    invalid: bool,
}

impl<'a> Bits<'a> {
    fn new(file: &'a [u8], data: Range<usize>) -> Bits<'a> {
        Bits {
            file,
            at: data.start,
            end: data.end.min(file.len()),
            buffer: 0,
            count: 0,
            stopped: false,
            invalid: false,
        }
    }

    fn fill(&mut self) {
        while self.count <= 56 && !self.stopped {
            if self.at >= self.end {
                self.stopped = true;
                break;
            }
            let byte = self.file[self.at];
            if byte == 0xFF {
                if self.file.get(self.at + 1) == Some(&0x00) && self.at + 1 < self.end {
                    self.at += 2;
                } else {
                    self.stopped = true;
                    break;
                }
            } else {
                self.at += 1;
            }
            self.buffer |= u64::from(byte) << (56 - self.count);
            self.count += 8;
        }
    }

    /// The next 8 bits without consuming them (1-padded past the data).
    fn peek8(&self) -> u8 {
        let padded = if self.count >= 64 {
            self.buffer
        } else {
            self.buffer | (u64::MAX >> self.count)
        };
        (padded >> 56) as u8
    }

    fn bit(&mut self) -> Option<u8> {
        if self.count == 0 {
            self.fill();
        }
        if self.count == 0 {
            return None;
        }
        let bit = (self.buffer >> 63) as u8;
        self.buffer <<= 1;
        self.count -= 1;
        Some(bit)
    }

    /// Consumes `n` bits (at most 16); false when the data ends first.
    fn skip(&mut self, n: u32) -> bool {
        if n > self.count {
            self.fill();
            if n > self.count {
                return false;
            }
        }
        self.buffer <<= n;
        self.count -= n;
        true
    }

    fn failure(&self) -> Step {
        if self.invalid {
            Step::Invalid
        } else {
            Step::OutOfData
        }
    }

    /// Drops the padding bits of the interval that ended and steps over the
    /// restart marker that must follow.
    fn restart(&mut self) -> Restart {
        self.buffer = 0;
        self.count = 0;
        while self.at + 1 < self.end && self.file[self.at] == 0xFF && self.file[self.at + 1] == 0xFF
        {
            self.at += 1;
        }
        if self.at + 1 >= self.end {
            return Restart::End;
        }
        if self.file[self.at] == 0xFF && (0xD0..=0xD7).contains(&self.file[self.at + 1]) {
            self.at += 2;
            self.stopped = false;
            Restart::Found
        } else {
            Restart::Missing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg_scan::layout;
    use image::codecs::jpeg::JpegEncoder;
    use image::{ExtendedColorType, RgbImage};

    fn photo(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([
                (x * 7 % 251) as u8,
                (y * 5 % 253) as u8,
                ((x * y) % 247) as u8,
            ])
        })
    }

    fn jpeg(image: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 90)
            .encode(
                image.as_raw(),
                image.width(),
                image.height(),
                ExtendedColorType::Rgb8,
            )
            .unwrap();
        out
    }

    fn coverage(file: &[u8]) -> Option<Coverage> {
        first_scan_coverage(file, &layout(file).unwrap())
    }

    /// The file cut at `fraction` of its scan data, with its end marker
    /// appended again.
    fn cut_with_end(file: &[u8], fraction: f64) -> Vec<u8> {
        let data = layout(file).unwrap().first_scan.unwrap().data;
        let cut = data.start + ((data.end - data.start) as f64 * fraction) as usize;
        let mut out = file[..cut].to_vec();
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }

    #[test]
    fn a_whole_file_is_covered() {
        for (w, h) in [(64, 48), (1, 1), (333, 97), (17, 200)] {
            let file = jpeg(&photo(w, h));
            let c = coverage(&file).expect("a baseline JPEG concludes");
            assert!(c.is_complete(), "{w}x{h}: {c:?}");
            assert_eq!(c.coded, c.expected);
        }
    }

    #[test]
    fn a_file_cut_and_ended_again_is_not() {
        let file = jpeg(&photo(400, 300));
        for fraction in [0.0, 0.3, 0.9, 0.99] {
            let c = coverage(&cut_with_end(&file, fraction)).unwrap();
            assert!(!c.is_complete(), "{fraction}: {c:?}");
            assert!(
                c.coded as f64 <= c.expected as f64 * (fraction + 0.05),
                "{fraction}: {c:?}"
            );
        }
    }

    #[test]
    fn restart_intervals_are_followed() {
        // The `image` crate writes no restart markers (the fixture
        // restart-markers.jpg has them: tests/fixtures/bad/README.md): an
        // interval longer than the file's MCUs needs none.
        let file = jpeg(&photo(64, 64));
        let mut l = layout(&file).unwrap();
        l.first_scan.as_mut().unwrap().restart_interval = 10_000;
        let c = first_scan_coverage(&file, &l).unwrap();
        assert!(c.is_complete());
        // An interval of 1 expects a marker after the first MCU: there is
        // none, so the walk does not conclude.
        l.first_scan.as_mut().unwrap().restart_interval = 1;
        assert_eq!(first_scan_coverage(&file, &l), None);
    }
}

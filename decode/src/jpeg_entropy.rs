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

use crate::jpeg_scan::{Component, JpegLayout};

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
    FirstScanPlan::new(file, layout)?.walk(file, |_| {})
}

/// One component of the first scan, as the walk reads it.
pub(crate) struct ScanMember {
    /// Its index in the frame's components.
    pub component: usize,
    /// Its sampling factors (at least 1).
    pub h: u8,
    pub v: u8,
    dc: Huffman,
    ac: Option<Huffman>,
}

/// One block's DC coefficient, as the walk hands it out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DcBlock {
    /// Which member of the scan (index into [`FirstScanPlan::members`]).
    pub member: usize,
    /// The block's place among the member's blocks in raster order: row
    /// `index / columns`, column `index % columns`, where `columns` is
    /// [`FirstScanPlan::block_columns`] (blocks of the MCUs past the
    /// picture's edge included).
    pub index: usize,
    /// The quantised DC coefficient (the scan's point transform not undone).
    pub dc: i32,
}

/// What walking the first scan needs, read from its header and tables.
pub(crate) struct FirstScanPlan {
    pub members: Vec<ScanMember>,
    /// The point transform (successive approximation low bit): coefficients
    /// are coded shifted right by it.
    pub point_transform: u8,
    /// MCUs the frame's size calls for.
    pub expected: u64,
    /// MCUs a row.
    pub mcus_per_row: u32,
    restart_interval: u64,
    data: Range<usize>,
}

impl FirstScanPlan {
    /// The plan for the first scan of a Huffman-coded DCT frame (baseline,
    /// extended, progressive), or `None` for anything the walk does not
    /// follow.
    pub fn new(file: &[u8], layout: &JpegLayout) -> Option<FirstScanPlan> {
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
        let (h_max, v_max) = layout.max_sampling();
        let mut members = Vec::with_capacity(count);
        for pair in header[1..1 + 2 * count].chunks_exact(2) {
            let component = layout.components.iter().position(|c| c.id == pair[0])?;
            let Component { h, v, .. } = layout.components[component];
            let dc = tables.dc.get(usize::from(pair[1] >> 4))?.clone()?;
            let ac = if dc_only {
                None
            } else {
                Some(tables.ac.get(usize::from(pair[1] & 0x0F))?.clone()?)
            };
            members.push(ScanMember {
                component,
                h: h.max(1),
                v: v.max(1),
                dc,
                ac,
            });
        }
        let (w, h) = (u64::from(width), u64::from(height));
        let (columns, rows) = if let [only] = members.as_slice() {
            // One component: its blocks in raster order, one an MCU.
            let cw = (w * u64::from(only.h)).div_ceil(u64::from(h_max));
            let c_h = (h * u64::from(only.v)).div_ceil(u64::from(v_max));
            (cw.div_ceil(8), c_h.div_ceil(8))
        } else {
            (
                w.div_ceil(8 * u64::from(h_max)),
                h.div_ceil(8 * u64::from(v_max)),
            )
        };
        Some(FirstScanPlan {
            members,
            point_transform: a & 0x0F,
            expected: columns * rows,
            // At most 65535 (a frame's width).
            mcus_per_row: u32::try_from(columns).ok()?,
            restart_interval: u64::from(scan.restart_interval),
            data: scan.data.clone(),
        })
    }

    /// Columns and rows of blocks in one MCU of `member`: one block in a
    /// single-component scan.
    pub fn blocks_per_mcu(&self, member: usize) -> (u8, u8) {
        if self.members.len() == 1 {
            (1, 1)
        } else {
            let m = &self.members[member];
            (m.h, m.v)
        }
    }

    /// Blocks a row of `member` has, as [`DcBlock::index`] counts them.
    pub fn block_columns(&self, member: usize) -> usize {
        self.mcus_per_row as usize * usize::from(self.blocks_per_mcu(member).0)
    }

    /// Walks the scan's data, handing each block's DC coefficient to
    /// `on_dc`, and says how far it reaches (`None`: the walk cannot
    /// conclude).
    pub fn walk(&self, file: &[u8], mut on_dc: impl FnMut(DcBlock)) -> Option<Coverage> {
        // Per member: blocks a row of its MCU, rows of it, and blocks a row
        // of the whole member (what `DcBlock::index` counts in).
        let geometry: Vec<(usize, usize, usize)> = (0..self.members.len())
            .map(|m| {
                let (columns, rows) = self.blocks_per_mcu(m);
                (
                    usize::from(columns),
                    usize::from(rows),
                    self.block_columns(m),
                )
            })
            .collect();
        let mut predictions = vec![0i32; self.members.len()];
        let mut bits = Bits::new(file, self.data.clone());
        let interval = self.restart_interval;
        let mut coded = 0u64;
        let (mut mcu_x, mut mcu_y) = (0usize, 0usize);
        'mcus: while coded < self.expected {
            if interval > 0 && coded > 0 && coded.is_multiple_of(interval) {
                let mut copy = bits;
                let restart = copy.restart();
                bits = copy;
                match restart {
                    Restart::Found => predictions.fill(0),
                    Restart::End => break 'mcus,
                    Restart::Missing => return None,
                }
            }
            for (member, ((m, &(columns, rows, stride)), prediction)) in self
                .members
                .iter()
                .zip(&geometry)
                .zip(&mut predictions)
                .enumerate()
            {
                let first = mcu_y * rows * stride + mcu_x * columns;
                for block_y in 0..rows {
                    for block_x in 0..columns {
                        match block(&mut bits, &m.dc, m.ac.as_ref()) {
                            Step::Done(diff) => {
                                *prediction = prediction.wrapping_add(diff);
                                on_dc(DcBlock {
                                    member,
                                    index: first + block_y * stride + block_x,
                                    dc: *prediction,
                                });
                            }
                            Step::OutOfData => break 'mcus,
                            Step::Invalid => return None,
                        }
                    }
                }
            }
            coded += 1;
            mcu_x += 1;
            if mcu_x == self.mcus_per_row as usize {
                (mcu_x, mcu_y) = (0, mcu_y + 1);
            }
        }
        Some(Coverage {
            coded,
            expected: self.expected,
        })
    }
}

enum Step {
    /// A whole block, with its DC difference.
    Done(i32),
    OutOfData,
    Invalid,
}

/// One block: the DC difference and, unless `ac` is `None`, the AC run-length
/// codes up to end-of-block or the 63rd coefficient (skipped unread).
/// Inlined into the walk, so the bit reader's state stays in registers from
/// block to block.
#[inline(always)]
fn block(bits: &mut Bits, dc: &Huffman, ac: Option<&Huffman>) -> Step {
    let Some(category) = dc.decode(bits) else {
        return bits.failure();
    };
    if category > 16 {
        return Step::Invalid;
    }
    let Some(diff) = bits.signed(u32::from(category)) else {
        return Step::OutOfData;
    };
    let Some(ac) = ac else {
        return Step::Done(diff);
    };
    let mut k = 1u32;
    while k < 64 {
        k = skip_ac_steps(bits, ac, k);
        if k >= 64 {
            break;
        }
        // The next code did not fit a step: read it alone.
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
    Step::Done(diff)
}

/// Steps over the AC codes of a block from coefficient `k` on by
/// [`Huffman::ac_steps`], as long as they fit; returns where the block stands
/// (64 or more: it ended).
#[inline(always)]
fn skip_ac_steps(bits: &mut Bits, ac: &Huffman, mut k: u32) -> u32 {
    let Some(steps) = ac.ac_steps.as_deref() else {
        return k;
    };
    // The reader's state in locals, so the loop keeps it in registers.
    let (mut buffer, mut count) = (bits.buffer, bits.count);
    while k < 64 {
        if count < 32 {
            (bits.buffer, bits.count) = (buffer, count);
            bits.fill();
            (buffer, count) = (bits.buffer, bits.count);
        }
        // `fill` pads past the data's end with 1-bits, so the top bits are
        // the lookup's however few are left.
        let step = AcStep(steps[(buffer >> (64 - AC_BITS)) as usize]);
        let length = step.length();
        // At the data's end the padding may fill the lookup: the code-by-code
        // read tells out-of-data from invalid exactly.
        if k > step.last_k() || length > count {
            break;
        }
        buffer <<= length;
        count -= length;
        k += step.advance();
    }
    (bits.buffer, bits.count) = (buffer, count);
    k
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
                let table = Some(Huffman::new(&counts, symbols, class_id >> 4 == 1)?);
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

/// Bits a code is looked up by at once (longer codes are read by length).
const FAST_BITS: u32 = 10;

/// Bits an AC table's steps are looked up by: up to [`AC_MAX_CODES`] codes
/// with their coefficients' bits in one step (see [`AcStep`]). 13 bits and 4
/// codes walked a 12-megapixel photo's scan fastest of 12 to 15 bits and 2 to
/// 4 codes (the table, 16 KB, stays in the first-level cache).
const AC_BITS: u32 = 13;
const AC_MAX_CODES: u32 = 4;

/// A canonical Huffman table (JPEG's: code lengths 1 to 16, as in annex C of
/// ITU T.81), decoded with a `FAST_BITS` lookup and by length beyond.
#[derive(Clone)]
struct Huffman {
    /// For each `FAST_BITS` prefix: code length << 8 | symbol; 0 when the
    /// code is longer.
    fast: Box<[u16; 1 << FAST_BITS]>,
    /// An AC table's steps: for each `AC_BITS` prefix, how to step over the
    /// codes and coefficient bits that lie wholly inside it ([`AcStep`]); 0
    /// where not even one does. `None` for a DC table.
    ac_steps: Option<Box<[u16; 1 << AC_BITS]>>,
    /// The largest code of each length (-1 for none), and where its symbols
    /// start.
    max_code: [i32; 17],
    offset: [i32; 17],
    symbols: Vec<u8>,
}

/// An entry of [`Huffman::ac_steps`]: up to [`AC_MAX_CODES`] AC codes, each
/// with its coefficient's bits. Low 4 bits: the bits they take; next 6: how
/// far they move along the block (a coefficient: its run + 1; a run of 16
/// zeros: 16; a step that ends the block: 63, past any block's end); top 6:
/// the last coefficient `k` from which the step may be taken.
///
/// The walk takes a step only when it is sure to read the codes as the
/// code-by-code walk would: the block must not end inside the step (a move
/// over coefficients must keep within the 64 of the block; an end-of-block
/// after coefficients must come before the 64th). Otherwise (and where not
/// even one code fits: the entry 0, whose last `k` is 0) it reads the next
/// code alone.
#[derive(Clone, Copy)]
struct AcStep(u16);

impl AcStep {
    /// Nothing fits: read the next code alone.
    const NONE: u16 = 0;
    /// The move of a step that ends the block (from any `k` of at least 1,
    /// past the 63rd coefficient).
    const END: u32 = 63;

    /// A step of `bits` bits that moves `advance` (at most 63) and may be
    /// taken from `k <= last_k` (at most 63).
    fn entry(bits: u32, advance: u32, last_k: u32) -> u16 {
        debug_assert!(bits < 16 && advance < 64 && last_k < 64);
        (bits | advance << 4 | last_k << 10) as u16
    }

    fn length(self) -> u32 {
        u32::from(self.0 & 0x0F)
    }

    fn advance(self) -> u32 {
        u32::from(self.0 >> 4 & 0x3F)
    }

    fn last_k(self) -> u32 {
        u32::from(self.0 >> 10)
    }

    /// What one AC symbol does: (advance, is a coefficient, ends the block).
    fn kind(symbol: u8) -> (u32, bool, bool) {
        match (symbol >> 4, symbol & 0x0F) {
            (15, 0) => (16, false, false),
            (_, 0) => (0, false, true),
            (run, _) => (u32::from(run) + 1, true, false),
        }
    }
}

impl Huffman {
    fn new(counts: &[u8; 16], symbols: &[u8], ac: bool) -> Option<Huffman> {
        let mut table = Huffman {
            fast: Box::new([0; 1 << FAST_BITS]),
            ac_steps: None,
            max_code: [-1; 17],
            offset: [0; 17],
            symbols: symbols.to_vec(),
        };
        let mut code = 0i32;
        let mut k = 0usize;
        for length in 1..=16u32 {
            let n = usize::from(counts[length as usize - 1]);
            table.offset[length as usize] = k as i32 - code;
            for _ in 0..n {
                let symbol = *symbols.get(k)?;
                if length <= FAST_BITS {
                    let shift = FAST_BITS - length;
                    let first = (code as usize) << shift;
                    for prefix in first..first + (1 << shift) {
                        *table.fast.get_mut(prefix)? = (length as u16) << 8 | u16::from(symbol);
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                table.max_code[length as usize] = code - 1;
            }
            // Codes of one length must fit in it.
            if code > 1 << length {
                return None;
            }
            code <<= 1;
        }
        if ac {
            let mut steps = Box::new([0u16; 1 << AC_BITS]);
            for (prefix, step) in (0u32..).zip(steps.iter_mut()) {
                *step = table.ac_step(prefix);
            }
            table.ac_steps = Some(steps);
        }
        Some(table)
    }

    /// The symbol of the code at the top of `value`'s `available` bits and
    /// the bits it takes with its coefficient's, if they all lie inside.
    fn symbol_within(&self, value: u32, available: u32) -> Option<(u8, u32)> {
        for length in 1..=available.min(16) {
            let code = (value >> (available - length)) as i32;
            if code <= self.max_code[length as usize] {
                let index = usize::try_from(self.offset[length as usize] + code).ok()?;
                let symbol = *self.symbols.get(index)?;
                let bits = length + u32::from(symbol & 0x0F);
                return (bits <= available).then_some((symbol, bits));
            }
        }
        None
    }

    /// The [`AcStep`] entry of an `AC_BITS` prefix.
    fn ac_step(&self, prefix: u32) -> u16 {
        let Some((first, bits)) = self.symbol_within(prefix, AC_BITS) else {
            return AcStep::NONE;
        };
        let (advance, coefficient, end) = AcStep::kind(first);
        if end {
            // End-of-block alone: from any coefficient.
            return AcStep::entry(bits, AcStep::END, 63);
        }
        let (mut used, mut moved) = (bits, advance);
        // A run of 16 zeros alone may take the block past its end: the
        // code-by-code walk ends the block there too. Coefficients must fit.
        let mut entry = if coefficient {
            AcStep::entry(used, moved, 64 - moved)
        } else {
            AcStep::entry(used, moved, 63)
        };
        for _ in 1..AC_MAX_CODES {
            if used == AC_BITS {
                break;
            }
            let rest = prefix & ((1 << (AC_BITS - used)) - 1);
            let Some((next, more)) = self.symbol_within(rest, AC_BITS - used) else {
                break;
            };
            match AcStep::kind(next) {
                (advance, true, _) if moved + advance < 64 => {
                    used += more;
                    moved += advance;
                    entry = AcStep::entry(used, moved, 64 - moved);
                }
                // End-of-block after coefficients: before the 64th.
                (_, _, true) if moved < 63 => {
                    return AcStep::entry(used + more, AcStep::END, 63 - moved);
                }
                // A second run of zeros, or a move past any block's end: one
                // step at a time.
                _ => break,
            }
        }
        entry
    }

    /// The next symbol, or `None` when the data ends first or the bits are
    /// no code (the reader says which: [`Bits::failure`]).
    #[inline(always)]
    fn decode(&self, bits: &mut Bits) -> Option<u8> {
        if bits.count < 16 {
            bits.fill();
        }
        let entry = self.fast[bits.peek(FAST_BITS)];
        if entry != 0 {
            return bits.skip(u32::from(entry >> 8)).then_some(entry as u8);
        }
        // Through a copy: the reader itself never has its address taken, so
        // the walk keeps its state in registers.
        let mut copy = *bits;
        let symbol = self.decode_long(&mut copy);
        *bits = copy;
        symbol
    }

    /// [`Huffman::decode`] for codes longer than `FAST_BITS`.
    #[inline(never)]
    fn decode_long(&self, bits: &mut Bits) -> Option<u8> {
        // Longer codes: compare the next 16 bits' prefixes, shortest first.
        let next = bits.peek(16) as i32;
        for length in FAST_BITS + 1..=16 {
            let code = next >> (16 - length);
            if code <= self.max_code[length as usize] {
                if !bits.skip(length) {
                    return None;
                }
                let index = usize::try_from(self.offset[length as usize] + code).ok()?;
                return self.symbols.get(index).copied();
            }
        }
        // No code starts so: unless that is the padding past the data's end.
        if bits.count >= 16 {
            bits.invalid = true;
        }
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
/// `Copy`, so the rare paths work on a copy (see [`Bits::fill`]).
#[derive(Clone, Copy)]
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

    #[inline(always)]
    fn fill(&mut self) {
        // Eight bytes at once when none of them is 0xFF (a stuffed zero or a
        // marker): most of a photo's data.
        if !self.stopped && self.count <= 56 && self.at + 8 <= self.end {
            let word = u64::from_be_bytes(
                self.file[self.at..self.at + 8]
                    .try_into()
                    .unwrap_or([0xFF; 8]),
            );
            let inverted = !word;
            let has_ff =
                inverted.wrapping_sub(0x0101_0101_0101_0101) & !inverted & 0x8080_8080_8080_8080;
            if has_ff == 0 {
                let bytes = (64 - self.count) / 8;
                let kept = if bytes == 8 {
                    word
                } else {
                    word & !(u64::MAX >> (8 * bytes))
                };
                self.buffer |= kept >> self.count;
                self.count += 8 * bytes;
                self.at += bytes as usize;
                return;
            }
        }
        // Through a copy, as in `Huffman::decode`.
        let mut copy = *self;
        copy.fill_bytewise();
        *self = copy;
    }

    /// [`Bits::fill`] a byte at a time: near a stuffed zero, a marker or the
    /// data's end.
    #[inline(never)]
    fn fill_bytewise(&mut self) {
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
        if self.stopped {
            // JPEG's padding: past the data, 1-bits (as `peek` reads too).
            self.buffer |= u64::MAX.checked_shr(self.count).unwrap_or(0);
        }
    }

    /// The next `n` bits (1 to 16) without consuming them (1-padded past
    /// the data).
    fn peek(&self, n: u32) -> usize {
        let padded = if self.count >= 64 {
            self.buffer
        } else {
            self.buffer | (u64::MAX >> self.count)
        };
        (padded >> (64 - n)) as usize
    }

    /// The next `n` bits (at most 16) as a coefficient of magnitude category
    /// `n` (T.81's EXTEND: a leading 0 bit makes it negative); `None` when
    /// the data ends first.
    #[inline(always)]
    fn signed(&mut self, n: u32) -> Option<i32> {
        if n == 0 {
            return Some(0);
        }
        if n > self.count {
            self.fill();
            if n > self.count {
                return None;
            }
        }
        let value = (self.buffer >> (64 - n)) as i32;
        self.buffer <<= n;
        self.count -= n;
        Some(if value < 1 << (n - 1) {
            value - (1 << n) + 1
        } else {
            value
        })
    }

    /// Consumes `n` bits (at most 16); false when the data ends first.
    #[inline(always)]
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
    #[inline(never)]
    fn restart(&mut self) -> Restart {
        // An interval's data ends with fewer than 8 bits of padding: more
        // left unread means the walk lost its way in it (a damaged file).
        // Whether the reader had already fetched those bits or not, that is
        // no conclusion.
        if self.count >= 8 {
            return Restart::Missing;
        }
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

    /// A 64x48 JPEG with a restart marker after every MCU (12 MCUs, 11
    /// markers), made by Pillow: `decode/fixtures/README.md`.
    const RESTART_EVERY_MCU: &[u8] = include_bytes!("../fixtures/restart-every-mcu.jpg");

    #[test]
    fn restart_intervals_are_followed() {
        let c = coverage(RESTART_EVERY_MCU).expect("the markers are where the interval says");
        assert_eq!((c.coded, c.expected), (12, 12));
        // The `image` crate writes no restart markers: an interval longer
        // than the file's MCUs needs none.
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

    /// Every DC a walk handed out (member, index, DC), and how far it reached.
    type Walked = (Vec<(usize, usize, i32)>, Option<Coverage>);

    /// [`Walked`] for `file`; with `steps` false, each AC code is read alone
    /// (no [`Huffman::ac_steps`]).
    fn walked(file: &[u8], steps: bool) -> Option<Walked> {
        let mut plan = FirstScanPlan::new(file, &layout(file).ok()?)?;
        if !steps {
            for member in &mut plan.members {
                if let Some(ac) = member.ac.as_mut() {
                    ac.ac_steps = None;
                }
            }
        }
        let mut dcs = Vec::new();
        let coverage = plan.walk(file, |b| dcs.push((b.member, b.index, b.dc)));
        Some((dcs, coverage))
    }

    #[test]
    fn steps_read_the_codes_as_the_code_by_code_walk() {
        // Noise at every quality makes every kind of step: one to four codes,
        // runs of zeros, end-of-block after coefficients, codes past the
        // lookup, blocks whose last coefficient is coded. Damaged copies (a
        // bit flipped, data cut) make the walk read garbage, where a step
        // that ends a block too soon or too late would show at once.
        let mut seed = 20261207u32;
        let mut noise = move |spread: u32| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 24) % spread.max(1)
        };
        let mut files = vec![RESTART_EVERY_MCU.to_vec()];
        let smooth = photo(97, 61);
        for (quality, spread) in [(100, 256), (95, 64), (90, 16), (75, 128), (40, 8)] {
            let image = RgbImage::from_fn(97, 61, |x, y| {
                let base = smooth.get_pixel(x, y).0;
                image::Rgb(base.map(|v| v.wrapping_add(noise(spread) as u8)))
            });
            let mut out = Vec::new();
            JpegEncoder::new_with_quality(&mut out, quality)
                .encode_image(&image)
                .unwrap();
            files.push(out);
        }
        let mut compared = 0;
        for file in &files {
            let data = layout(file).unwrap().first_scan.unwrap().data;
            let mut variants = vec![file.clone()];
            for _ in 0..40 {
                let mut damaged = file.clone();
                let at = data.start + noise(data.len() as u32) as usize;
                damaged[at] ^= 1 << noise(8);
                variants.push(damaged);
            }
            for tenth in 1..10 {
                variants.push(cut_with_end(file, f64::from(tenth) / 10.0));
            }
            for variant in &variants {
                let stepped = walked(variant, true);
                assert_eq!(stepped, walked(variant, false));
                compared += usize::from(stepped.is_some());
            }
        }
        assert!(compared > 250, "{compared}");
    }

    /// The positions of the restart markers in `file`'s scan data.
    fn restart_markers(file: &[u8]) -> Vec<usize> {
        let data = layout(file).unwrap().first_scan.unwrap().data;
        (data.start..data.end - 1)
            .filter(|&i| file[i] == 0xFF && (0xD0..=0xD7).contains(&file[i + 1]))
            .collect()
    }

    #[test]
    fn data_left_over_in_an_interval_is_no_conclusion() {
        // Bytes of data added before the third marker: the interval's MCU
        // ends before them, so the walk has lost its way (a damaged file).
        // Before, whether it noticed depended on how far its reader had
        // fetched: bytes it had already fetched were dropped unread at the
        // marker, and this file was called whole.
        let at = restart_markers(RESTART_EVERY_MCU)[2];
        for extra in [&[0x12u8, 0x34][..], &[0x12, 0x34, 0x56, 0x78], &[0x5A; 7]] {
            let mut file = RESTART_EVERY_MCU[..at].to_vec();
            file.extend_from_slice(extra);
            file.extend_from_slice(&RESTART_EVERY_MCU[at..]);
            assert_eq!(coverage(&file), None, "{} bytes", extra.len());
        }
    }
}

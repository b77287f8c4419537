//! The bulletin's charts as PNG images, drawn here: a line chart (this year against last year's
//! line) and a bar chart (areas compared). No font is needed: numbers on the axes are drawn
//! with a small built-in digit font, names go in the caption and the table beside the chart.
//! The PNG is written uncompressed (stored deflate blocks); the .docx zip compresses it.

/// An RGB image.
#[derive(Debug, Clone)]
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pixels: Vec<[u8; 3]>,
}

pub const INK: [u8; 3] = [0x33, 0x33, 0x33];
pub const GRID: [u8; 3] = [0xd9, 0xde, 0xe5];
pub const NOW: [u8; 3] = [0x1f, 0x5f, 0xa8];
pub const BEFORE: [u8; 3] = [0x9a, 0xa3, 0xad];
pub const RED: [u8; 3] = [0xb0, 0x00, 0x20];

/// 3×5 digits, '.', '-', '%'.
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '.' => [0, 0, 0, 0, 0b010],
        '-' => [0, 0, 0b111, 0, 0],
        '%' => [0b101, 0b001, 0b010, 0b100, 0b101],
        _ => return None,
    })
}

impl Canvas {
    pub fn new(width: usize, height: usize) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![[255, 255, 255]; width * height],
        }
    }

    fn put(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            self.pixels[y as usize * self.width + x as usize] = c;
        }
    }

    pub fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
        for y in y0.min(y1)..=y0.max(y1) {
            for x in x0.min(x1)..=x0.max(x1) {
                self.put(x, y, c);
            }
        }
    }

    /// A line `thick` pixels wide; `dash` > 0 draws dashes of that length.
    pub fn line(
        &mut self,
        (x0, y0): (i64, i64),
        (x1, y1): (i64, i64),
        thick: i64,
        dash: i64,
        c: [u8; 3],
    ) {
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).max(1);
        for i in 0..=steps {
            if dash > 0 && (i / dash) % 2 == 1 {
                continue;
            }
            let x = x0 + (x1 - x0) * i / steps;
            let y = y0 + (y1 - y0) * i / steps;
            self.rect(
                x - thick / 2,
                y - thick / 2,
                x + thick / 2,
                y + thick / 2,
                c,
            );
        }
    }

    /// Text of digits at (x, y), each dot `scale` pixels.
    pub fn digits(&mut self, x: i64, y: i64, text: &str, scale: i64, c: [u8; 3]) {
        let mut at = x;
        for ch in text.chars() {
            if let Some(g) = glyph(ch) {
                for (row, bits) in g.iter().enumerate() {
                    for col in 0..3 {
                        if bits & (0b100 >> col) != 0 {
                            let (px, py) = (at + col * scale, y + row as i64 * scale);
                            self.rect(px, py, px + scale - 1, py + scale - 1, c);
                        }
                    }
                }
            }
            at += 4 * scale;
        }
    }

    /// Width in pixels of `text` drawn by [`Canvas::digits`].
    pub fn digits_width(text: &str, scale: i64) -> i64 {
        text.chars().count() as i64 * 4 * scale
    }

    /// The image as PNG (8-bit RGB, no compression).
    pub fn png(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity((self.width * 3 + 1) * self.height);
        for y in 0..self.height {
            raw.push(0); // filter: none
            for p in &self.pixels[y * self.width..(y + 1) * self.width] {
                raw.extend_from_slice(p);
            }
        }
        let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&(self.width as u32).to_be_bytes());
        ihdr.extend_from_slice(&(self.height as u32).to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &zlib_stored(&raw));
        chunk(&mut out, b"IEND", &[]);
        out
    }
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = data.chunks(65_535).collect();
    if blocks.is_empty() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for x in data {
        a = (a + u32::from(*x)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// A number for an axis: at most two decimals, no trailing zeros.
fn axis_number(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Chart margins: left for the y axis numbers, bottom for the x labels.
const LEFT: i64 = 70;
const BOTTOM: i64 = 40;
const TOP: i64 = 20;
const RIGHT: i64 = 20;

/// Axes with the y range's top and bottom values and a few grid lines; returns the y of a
/// value mapper's inputs (min, max).
fn frame(c: &mut Canvas, min: f64, max: f64) {
    let (w, h) = (c.width as i64, c.height as i64);
    for k in 0..=4 {
        let y = TOP + (h - TOP - BOTTOM) * k / 4;
        c.line((LEFT, y), (w - RIGHT, y), 1, 0, GRID);
        let v = max - (max - min) * k as f64 / 4.0;
        let text = axis_number(v);
        c.digits(
            LEFT - 8 - Canvas::digits_width(&text, 2),
            y - 5,
            &text,
            2,
            INK,
        );
    }
    c.line((LEFT, TOP), (LEFT, h - BOTTOM), 2, 0, INK);
    c.line((LEFT, h - BOTTOM), (w - RIGHT, h - BOTTOM), 2, 0, INK);
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    (lo, hi * 1.1)
}

/// A line chart: `now` solid, `before` (last year's) dashed, x labels under the points (e.g.
/// month numbers). Missing points break the line.
pub fn lines(now: &[Option<f64>], before: &[Option<f64>], labels: &[String]) -> Canvas {
    let mut c = Canvas::new(800, 360);
    let (lo, hi) = range(now.iter().chain(before).flatten().copied());
    frame(&mut c, lo, hi);
    let (w, h) = (c.width as i64, c.height as i64);
    let n = now.len().max(2) as i64;
    let x_of = |i: usize| LEFT + 20 + (w - LEFT - RIGHT - 40) * i as i64 / (n - 1);
    let y_of = |v: f64| h - BOTTOM - ((v - lo) / (hi - lo) * (h - TOP - BOTTOM) as f64) as i64;
    for (series, color, dash) in [(before, BEFORE, 8), (now, NOW, 0)] {
        for i in 1..series.len() {
            if let (Some(a), Some(b)) = (series[i - 1], series[i]) {
                c.line((x_of(i - 1), y_of(a)), (x_of(i), y_of(b)), 3, dash, color);
            }
        }
        for (i, v) in series.iter().enumerate() {
            if let (Some(v), 0) = (v, dash) {
                c.rect(x_of(i) - 4, y_of(*v) - 4, x_of(i) + 4, y_of(*v) + 4, color);
            }
        }
    }
    for (i, l) in labels.iter().enumerate() {
        let wdt = Canvas::digits_width(l, 2);
        c.digits(x_of(i) - wdt / 2, h - BOTTOM + 12, l, 2, INK);
    }
    c
}

/// A bar chart of `values` in order, the `mark`ed bars red (vetoed, yellow-carded), numbered
/// 1.. under the bars (the table beside names them).
pub fn bars(values: &[Option<f64>], mark: &[bool]) -> Canvas {
    let mut c = Canvas::new(800, 360);
    let (lo, hi) = range(values.iter().flatten().copied());
    frame(&mut c, lo, hi);
    let (w, h) = (c.width as i64, c.height as i64);
    let n = values.len().max(1) as i64;
    let slot = (w - LEFT - RIGHT) / n;
    let bar = (slot * 2 / 3).max(2);
    let y_of = |v: f64| h - BOTTOM - ((v - lo) / (hi - lo) * (h - TOP - BOTTOM) as f64) as i64;
    for (i, v) in values.iter().enumerate() {
        let x = LEFT + slot * i as i64 + (slot - bar) / 2;
        if let Some(v) = v {
            let color = if mark.get(i).copied().unwrap_or(false) {
                RED
            } else {
                NOW
            };
            c.rect(x, y_of(*v), x + bar, h - BOTTOM - 1, color);
        }
        if n <= 40 {
            let label = (i + 1).to_string();
            let wdt = Canvas::digits_width(&label, 2);
            c.digits(x + bar / 2 - wdt / 2, h - BOTTOM + 12, &label, 2, INK);
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_a_png_with_its_size_and_checksums() {
        let png = lines(
            &[Some(1.0), Some(3.0), None, Some(2.0)],
            &[Some(2.0); 4],
            &["1".into(), "2".into(), "3".into(), "4".into()],
        )
        .png();
        assert_eq!(&png[..8], &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]);
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 800);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 360);
        // the IHDR chunk's CRC covers its type and data
        let crc = u32::from_be_bytes(png[29..33].try_into().unwrap());
        assert_eq!(crc, crc32(&png[12..29]));
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        // stored blocks: the stream's adler32 is that of the raw rows
        let z = zlib_stored(b"Wikipedia");
        assert_eq!(&z[z.len() - 4..], &0x11e6_0398u32.to_be_bytes());
    }
}

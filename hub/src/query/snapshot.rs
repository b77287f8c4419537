//! The rollups saved to disk, so that a restart does not rebuild them from every stored revision
//! (a national month is ~665,000 revisions to read and decode; 24 months take minutes).
//!
//! The file holds one slab per period with the number of revisions the store held for that
//! period when the slab was taken. Revisions are only ever added, so at start-up a period whose
//! count in the store is the same is taken from the file, and any other period is rebuilt from
//! the store. The file also carries a fingerprint of what the arrays mean (the registry's areas in
//! index order, the slot layout, the deadlines): a hub started with another registry, catalogue
//! or deadlines ignores it and rebuilds. A checksum covers every byte; a damaged file is ignored.
//! It is a cache: deleting it costs a slower start, never a report.

use std::{
    collections::HashMap,
    fs,
    io::{self, BufReader, BufWriter, Read, Write},
    path::Path,
};

use pingan_domain::Period;

use super::cube::{Cube, LEVELS, Slab};

/// File name inside the data directory.
pub const FILE: &str = "rollups.snapshot";

const MAGIC: &[u8; 8] = b"PINGANRS";
/// 2: sums and counts slot-major (see `Slab::cell`); a version-1 file is refused (rebuilt once).
const VERSION: u32 = 2;

/// A word-at-a-time running hash (FNV-1a's prime over 64-bit words): cheap enough to cover a
/// file of hundreds of megabytes at start-up, and any flipped bit changes it.
#[derive(Debug, Clone, Copy)]
struct Hash(u64);

impl Hash {
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Hash {
        Hash(0xcbf2_9ce4_8422_2325)
    }

    fn feed(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
            self.0 = (self.0 ^ w).wrapping_mul(Self::PRIME);
        }
        for &b in words.remainder() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
        // the length too, so that moving bytes between fields changes the hash
        self.0 = (self.0 ^ bytes.len() as u64).wrapping_mul(Self::PRIME);
    }
}

/// What the cube's arrays mean: a saved slab is only valid for the same fingerprint.
pub(crate) fn fingerprint(cube: &Cube) -> u64 {
    let mut h = Hash::new();
    h.feed(&VERSION.to_le_bytes());
    h.feed(&(cube.index.n_inner as u64).to_le_bytes());
    let mut codes = String::with_capacity(cube.index.codes.len() * 13);
    for c in &cube.index.codes {
        codes.push_str(&c.to_string());
        codes.push(',');
    }
    h.feed(codes.as_bytes());
    for m in cube.layout.metrics() {
        h.feed(format!("{}:{}:{:?}", m.id, m.total, m.kind).as_bytes());
        for (part, slot) in &m.parts {
            h.feed(format!("{part}:{slot}").as_bytes());
        }
    }
    h.feed(format!("{:?}", cube.deadlines).as_bytes());
    h.0
}

/// The array sizes of the cube's slabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dims {
    n: usize,
    n_inner: usize,
    slots: usize,
}

impl Dims {
    fn of(cube: &Cube) -> Dims {
        Dims {
            n: cube.index.codes.len(),
            n_inner: cube.index.n_inner,
            slots: cube.layout.slots(),
        }
    }
}

/// A slab as saved: the revisions the store held for its period, and the arrays.
#[derive(Debug)]
pub(crate) struct SavedSlab {
    pub(crate) rows: u64,
    pub(crate) slab: Slab,
}

/// A snapshot read back.
#[derive(Debug, Default)]
pub(crate) struct Saved {
    pub(crate) slabs: HashMap<Period, SavedSlab>,
    pub(crate) summarized: Vec<bool>,
}

struct Out<W: Write> {
    w: W,
    hash: Hash,
}

impl<W: Write> Out<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hash.feed(bytes);
        self.w.write_all(bytes)
    }

    fn u64s(&mut self, v: impl ExactSizeIterator<Item = u64>) -> io::Result<()> {
        let mut buf = Vec::with_capacity(v.len() * 8);
        for x in v {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        self.put(&buf)
    }

    fn u32s(&mut self, v: &[u32]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(v.len() * 4);
        for x in v {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        self.put(&buf)
    }
}

struct In<R: Read> {
    r: R,
    hash: Hash,
}

impl<R: Read> In<R> {
    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; n];
        self.r.read_exact(&mut buf)?;
        self.hash.feed(&buf);
        Ok(buf)
    }

    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn i64s(&mut self, n: usize) -> io::Result<Vec<i64>> {
        Ok(self
            .take(n * 8)?
            .chunks_exact(8)
            .map(|w| i64::from_le_bytes(w.try_into().expect("8 bytes")))
            .collect())
    }

    fn u32s(&mut self, n: usize) -> io::Result<Vec<u32>> {
        Ok(self
            .take(n * 4)?
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")))
            .collect())
    }
}

fn invalid(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// Writes `slabs` (period, revisions stored for it, arrays) and the summarized flags to `path`
/// atomically: a temporary file, synced, then renamed over the old one. `slabs` is called once
/// per period and may take a lock for each, so writing does not hold up the rollups for long.
pub(crate) fn write(
    path: &Path,
    fingerprint: u64,
    periods: &[Period],
    slab: impl FnMut(Period) -> Option<(u64, Slab)>,
    summarized: &[bool],
) -> io::Result<u64> {
    let tmp = path.with_extension("snapshot.tmp");
    let written = write_to(&tmp, fingerprint, periods, slab, summarized);
    if written.is_err() {
        // a full disk, say: no half-written file is left behind
        let _ = fs::remove_file(&tmp);
    }
    let written = written?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Some(dir) = path.parent() {
        // the rename itself durable
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(written)
}

fn write_to(
    tmp: &Path,
    fingerprint: u64,
    periods: &[Period],
    mut slab: impl FnMut(Period) -> Option<(u64, Slab)>,
    summarized: &[bool],
) -> io::Result<u64> {
    let file = fs::File::create(tmp)?;
    let mut out = Out {
        w: BufWriter::with_capacity(1 << 20, file),
        hash: Hash::new(),
    };
    out.put(MAGIC)?;
    out.put(&VERSION.to_le_bytes())?;
    out.put(&fingerprint.to_le_bytes())?;
    let mut written = 0u64;
    for &p in periods {
        let Some((rows, s)) = slab(p) else { continue };
        let name = p.to_string();
        out.put(&[1])?;
        out.put(&(name.len() as u64).to_le_bytes())?;
        out.put(name.as_bytes())?;
        out.put(&rows.to_le_bytes())?;
        out.put(&(s.revision.len() as u64).to_le_bytes())?;
        out.put(&(s.sums.len() as u64).to_le_bytes())?;
        out.put(&(s.received.len() as u64).to_le_bytes())?;
        out.u32s(&s.revision)?;
        out.put(&s.status)?;
        out.u64s(s.sums.iter().map(|&x| x as u64))?;
        out.u32s(&s.present)?;
        out.u32s(&s.received)?;
        out.u32s(&s.on_time_n)?;
        written += 1;
    }
    out.put(&[0])?;
    let flags: Vec<u8> = summarized.iter().map(|&b| u8::from(b)).collect();
    out.put(&(flags.len() as u64).to_le_bytes())?;
    out.put(&flags)?;
    let sum = out.hash.0;
    out.w.write_all(&sum.to_le_bytes())?;
    let file = out.w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(written)
}

/// Reads the snapshot at `path` for a cube shaped like `cube`. `Ok(None)`: there is none, or it
/// was taken for another registry, catalogue or deadlines. An error: it is damaged.
pub(crate) fn read(path: &Path, cube: &Cube) -> io::Result<Option<Saved>> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut inp = In {
        r: BufReader::with_capacity(1 << 20, file),
        hash: Hash::new(),
    };
    if inp.take(8)? != MAGIC {
        return Err(invalid("not a rollup snapshot"));
    }
    let version = u32::from_le_bytes(inp.take(4)?.try_into().expect("4 bytes"));
    if version != VERSION || inp.u64()? != fingerprint(cube) {
        return Ok(None);
    }
    let dims = Dims::of(cube);
    let mut saved = Saved::default();
    loop {
        match inp.take(1)?[0] {
            0 => break,
            1 => {}
            b => return Err(invalid(format!("bad record tag {b}"))),
        }
        let len = inp.u64()? as usize;
        if len > 64 {
            return Err(invalid("period name too long"));
        }
        let name = String::from_utf8(inp.take(len)?).map_err(|_| invalid("period not UTF-8"))?;
        let period: Period = name
            .parse()
            .map_err(|_| invalid(format!("bad period {name:?}")))?;
        let rows = inp.u64()?;
        let (n, cells, counters) = (inp.u64()?, inp.u64()?, inp.u64()?);
        if (n as usize, cells as usize, counters as usize)
            != (dims.n, dims.n_inner * dims.slots, dims.n_inner * LEVELS)
        {
            return Err(invalid(format!("slab {name} has other dimensions")));
        }
        let slab = Slab {
            revision: inp.u32s(dims.n)?,
            status: inp.take(dims.n)?,
            n_inner: dims.n_inner,
            sums: inp.i64s(dims.n_inner * dims.slots)?,
            present: inp.u32s(dims.n_inner * dims.slots)?,
            received: inp.u32s(dims.n_inner * LEVELS)?,
            on_time_n: inp.u32s(dims.n_inner * LEVELS)?,
        };
        saved.slabs.insert(period, SavedSlab { rows, slab });
    }
    let n = inp.u64()? as usize;
    if n != dims.n {
        return Err(invalid("summarized flags of another registry"));
    }
    saved.summarized = inp.take(n)?.into_iter().map(|b| b != 0).collect();
    let computed = inp.hash.0;
    let mut stored = [0u8; 8];
    inp.r.read_exact(&mut stored)?;
    if u64::from_le_bytes(stored) != computed {
        return Err(invalid("checksum mismatch"));
    }
    let mut rest = [0u8; 1];
    if inp.r.read(&mut rest)? != 0 {
        return Err(invalid("trailing bytes"));
    }
    Ok(Some(saved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_save_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        // the snapshot's name is taken by a directory: the rename fails
        let path = dir.path().join(FILE);
        fs::create_dir(&path).expect("dir");
        fs::write(path.join("keep"), b"x").expect("file");
        let written = write(&path, 1, &[], |_| None, &[]);
        assert!(written.is_err());
        assert!(
            !path.with_extension("snapshot.tmp").exists(),
            "no half-written file is left"
        );
    }
}

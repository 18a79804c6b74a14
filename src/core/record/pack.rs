//! The packed form of the view (batch mode's facts): the Pack trait, the packer and unpacker of its two regions, varints, and the packing of each field type.

use super::*;

/// Batch mode's compact form of the view (the "facts" of a record): every
/// field of the view, in declaration order, as a binary head (presence
/// tags, lengths) and a text region (the strings one after the other).
/// Reading it back gives the same view, borrowing from the packed bytes, with
/// no JSON read: the rules see exactly what they saw in the record.
pub trait Pack<'a> {
    /// Append this value.
    fn pack(&self, p: &mut Packer);
    /// Replace `self` with the next packed value; `None` when the packed
    /// bytes end early or do not hold a value of this type.
    fn unpack(&mut self, u: &mut Unpacker<'a>) -> Option<()>;
}

/// The two regions a view is packed into (kept between records: no
/// allocation per record).
#[derive(Debug, Default)]
pub struct Packer {
    head: Vec<u8>,
    text: Vec<u8>,
}

impl Packer {
    /// Start a new value.
    pub fn clear(&mut self) {
        self.head.clear();
        self.text.clear();
    }

    /// Append what was packed since [`clear`](Self::clear) to `out`: the
    /// head's length, the head, the text.
    pub fn finish(&self, out: &mut Vec<u8>) {
        put_varint(out, self.head.len() as u64);
        out.extend_from_slice(&self.head);
        out.extend_from_slice(&self.text);
    }

    fn string(&mut self, s: Option<&str>) {
        self.bytes(s.map(str::as_bytes));
    }

    /// Raw JSON text the scanner validated (UTF-8 included), so the text
    /// region stays UTF-8.
    fn bytes(&mut self, s: Option<&[u8]>) {
        match s {
            None => self.head.push(0),
            Some(s) => {
                put_varint(&mut self.head, s.len() as u64 + 1);
                self.text.extend_from_slice(s);
            }
        }
    }
}

/// Append `v` as LEB128.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Read a LEB128 value at `*i` of `b`, advancing `*i`.
pub fn get_varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let c = *b.get(*i)?;
        *i += 1;
        v |= u64::from(c & 0x7f) << shift;
        if c < 0x80 {
            return Some(v);
        }
    }
    None
}

/// A cursor over what [`Packer::finish`] wrote.
#[derive(Debug)]
pub struct Unpacker<'a> {
    head: &'a [u8],
    hp: usize,
    text: &'a str,
    tp: usize,
}

impl<'a> Unpacker<'a> {
    /// Over `b` (as [`Packer::finish`] wrote it); `None` when it is not.
    /// The text region is checked as UTF-8 once, here.
    pub fn new(b: &'a [u8]) -> Option<Self> {
        let mut i = 0;
        let n = usize::try_from(get_varint(b, &mut i)?).ok()?;
        let head = b.get(i..i.checked_add(n)?)?;
        let text = simdutf8::basic::from_utf8(b.get(i + n..)?).ok()?;
        Some(Unpacker {
            head,
            hp: 0,
            text,
            tp: 0,
        })
    }

    fn byte(&mut self) -> Option<u8> {
        let c = *self.head.get(self.hp)?;
        self.hp += 1;
        Some(c)
    }

    fn varint(&mut self) -> Option<u64> {
        get_varint(self.head, &mut self.hp)
    }

    /// The text range of the next packed string (`Some(None)`: absent).
    fn span(&mut self) -> Option<Option<std::ops::Range<usize>>> {
        let n = usize::try_from(self.varint()?).ok()?;
        let Some(len) = n.checked_sub(1) else {
            return Some(None);
        };
        let r = self.tp..self.tp.checked_add(len)?;
        self.tp = r.end;
        Some(Some(r))
    }

    fn string(&mut self) -> Option<Option<&'a str>> {
        match self.span()? {
            None => Some(None),
            Some(r) => Some(Some(self.text.get(r)?)),
        }
    }

    fn bytes(&mut self) -> Option<Option<&'a [u8]>> {
        match self.span()? {
            None => Some(None),
            Some(r) => Some(Some(self.text.as_bytes().get(r)?)),
        }
    }

    /// Whether every packed value was read.
    pub fn at_end(&self) -> bool {
        self.hp == self.head.len() && self.tp == self.text.len()
    }
}

impl<'a> Pack<'a> for S<'a> {
    fn pack(&self, p: &mut Packer) {
        p.string(self.0.as_deref());
    }
    fn unpack(&mut self, u: &mut Unpacker<'a>) -> Option<()> {
        self.0 = u.string()?.map(Cow::Borrowed);
        Some(())
    }
}

impl<'a> Pack<'a> for Raw<'a> {
    fn pack(&self, p: &mut Packer) {
        p.bytes(self.0);
    }
    fn unpack(&mut self, u: &mut Unpacker<'a>) -> Option<()> {
        self.0 = u.bytes()?;
        Some(())
    }
}

impl<'a> Pack<'a> for Present {
    fn pack(&self, p: &mut Packer) {
        p.head.push(u8::from(self.0));
    }
    fn unpack(&mut self, u: &mut Unpacker<'a>) -> Option<()> {
        self.0 = match u.byte()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        Some(())
    }
}

impl<'a, T: Pack<'a> + Default> Pack<'a> for Items<T> {
    fn pack(&self, p: &mut Packer) {
        put_varint(&mut p.head, self.0.len() as u64);
        for t in &self.0 {
            t.pack(p);
        }
    }
    fn unpack(&mut self, u: &mut Unpacker<'a>) -> Option<()> {
        let n = usize::try_from(u.varint()?).ok()?;
        if n > MAX_ITEMS {
            return None;
        }
        self.0.clear();
        for _ in 0..n {
            let mut t = T::default();
            t.unpack(u)?;
            self.0.push(t);
        }
        Some(())
    }
}

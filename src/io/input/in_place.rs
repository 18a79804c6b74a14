//! Walking the `Records` of a one-line S3 delivery file in place, so each record's JSON is read once (by `Enricher::process_prefix_into`) instead of once to cut the document and again to enrich it.
//!
//! CloudTrail writes its S3 delivery files as one line, `{"Records":[…]}`.
//! [`split`] validates such a document while cutting it, and the enricher
//! then validates every record again: the first read is half the CPU of
//! reading a gzipped trail. [`InPlace`] only steps over the separators
//! between the elements (`,`, `]`, whitespace); the enricher reads each
//! element where it lies and says how long it was, or that it is not valid
//! JSON. The first thing out of the plain shape — damage, a key after
//! `Records`, anything after the object — ends the walk, and the host cuts
//! the document with [`split`] and goes on from the first record not yet
//! done: up to that point [`split`] gives the same records, the elements of
//! `Records` one by one, each a complete valid value on one line (see the
//! tests for that claim checked against mutated documents).

use super::*;

/// Where a walk over the `Records` of a one-line S3 delivery file is. Holds
/// no borrow (so it can travel with the document's text to another
/// thread): every call takes the same text that [`InPlace::new`] was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InPlace {
    /// Offset of the next byte to look at.
    at: usize,
    /// An element was read last (a `,` or `]` comes next).
    after_value: bool,
    /// `Records`, then the object, closed, and nothing but whitespace after.
    finished: bool,
}

impl InPlace {
    /// A walk over `text` when it is a one-line S3 delivery file: after
    /// whitespace, `{"Records":[` (whitespace allowed around `:` and `[`, the
    /// key not escaped), and no line break anywhere before its trailing
    /// whitespace (a record written over several lines is made one line by
    /// [`split`]: `to_single_line`). `None` otherwise: cut it with [`split`].
    pub fn new(text: &str) -> Option<InPlace> {
        let b = text.as_bytes();
        let body = trim(b);
        if memchr::memchr2(b'\n', b'\r', body).is_some() {
            return None;
        }
        let mut i = skip_ws(b, 0);
        for want in [&b"{"[..], b"\"Records\"", b":", b"["] {
            if !b.get(i..)?.starts_with(want) {
                return None;
            }
            i = skip_ws(b, i + want.len());
        }
        Some(InPlace {
            at: i,
            after_value: false,
            finished: false,
        })
    }

    /// The rest of `text` from the first byte of the next element of
    /// `Records`, to be read by the caller, who then says how long the
    /// element was ([`advance`](Self::advance)). `None` at the end of
    /// `Records`, or when what follows is not a `,` and another element
    /// (or the end of the array): then [`finished`](Self::finished) says
    /// whether the document ended as it should.
    pub fn next<'t>(&mut self, text: &'t str) -> Option<&'t str> {
        let b = text.as_bytes();
        let mut i = skip_ws(b, self.at);
        match (b.get(i), self.after_value) {
            (Some(b']'), _) => {
                self.finished = closes(b, i + 1);
                self.at = b.len();
                self.after_value = false;
                return None;
            }
            (Some(b','), true) => i = skip_ws(b, i + 1),
            (_, true) | (None, false) => return None,
            (Some(_), false) => {}
        }
        self.at = i;
        self.after_value = false;
        text.get(i..)
    }

    /// The element at the start of what [`next`](Self::next) returned was
    /// `len` bytes long.
    pub fn advance(&mut self, len: usize) {
        self.at = self.at.saturating_add(len);
        self.after_value = true;
    }

    /// Whether the walk read the whole document: `Records` closed, the
    /// object closed, nothing after it but whitespace. When
    /// [`next`](Self::next) has returned `None` (or the caller could not
    /// read an element) and this is `false`, the document must be cut with
    /// [`split`], whose records up to the number read here are the same.
    pub fn finished(&self) -> bool {
        self.finished
    }
}

/// After `Records`' closing `]` at `i - 1`: the object closes and nothing
/// but whitespace follows.
fn closes(b: &[u8], i: usize) -> bool {
    let i = skip_ws(b, i);
    b.get(i) == Some(&b'}') && skip_ws(b, i + 1) == b.len()
}

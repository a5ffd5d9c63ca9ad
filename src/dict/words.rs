//! A container's memory as 64-bit words, and items encoded in them.
//!
//! Every access is an atomic load or store (Relaxed unless said otherwise), because lock-free
//! readers race the writer (see `txn`); and every index is bounds-checked, because a reader that
//! races a writer may follow a torn offset: it gets `BadObject` and retries, and is never led
//! outside the mapping. Offsets are word indices, never pointers.
//!
//! An encoded item is a header word, `kind | len << 32` (`len`: bytes of a str or bytes, else
//! 0), then one payload word for the scalar kinds (bool 0/1, the i64, the f64's bits) or the
//! bytes packed little-endian into `ceil(len / 8)` words.

use core::ptr::NonNull;

use super::item::{Item, ItemKind};
use crate::error::Error;
use crate::sync::{AtomicU64, Ordering};

/// A bounds-checked view of `n` shared words.
pub(crate) struct Words {
    base: NonNull<AtomicU64>,
    n: u64,
}

// SAFETY: the words are only reached through atomics, from any thread.
unsafe impl Send for Words {}
// SAFETY: as above.
unsafe impl Sync for Words {}

impl Words {
    /// # Safety
    /// - `base` points at `n` 8-aligned words that stay mapped for the life of the view;
    /// - every other access to them, in any process, is atomic.
    pub(crate) unsafe fn new(base: NonNull<AtomicU64>, n: u64) -> Words {
        Words { base, n }
    }

    /// Number of words.
    pub(crate) fn len(&self) -> u64 {
        self.n
    }

    /// Word `i`, or `BadObject` past the end.
    #[inline]
    pub(crate) fn at(&self, i: u64) -> Result<&AtomicU64, Error> {
        if i >= self.n {
            return Err(Error::BadObject);
        }
        let word = self.base.as_ptr().wrapping_add(i as usize);
        // SAFETY: `i < n`, and `new`'s contract makes the n words valid atomics for our lifetime.
        Ok(unsafe { &*word })
    }

    /// Relaxed load of word `i`.
    #[inline]
    pub(crate) fn load(&self, i: u64) -> Result<u64, Error> {
        Ok(self.at(i)?.load(Ordering::Relaxed))
    }

    /// Relaxed store of word `i`.
    #[inline]
    pub(crate) fn store(&self, i: u64, v: u64) -> Result<(), Error> {
        self.at(i)?.store(v, Ordering::Relaxed);
        Ok(())
    }

    /// Checks that words `at..at + n` exist.
    #[inline]
    pub(crate) fn check(&self, at: u64, n: u64) -> Result<(), Error> {
        match at.checked_add(n) {
            Some(end) if end <= self.n => Ok(()),
            _ => Err(Error::BadObject),
        }
    }

    /// Copies words `from..from + n` to `to..to + n` (ranges must not overlap).
    pub(crate) fn copy(&self, from: u64, to: u64, n: u64) -> Result<(), Error> {
        self.check(from, n)?;
        self.check(to, n)?;
        for k in 0..n {
            self.store(to + k, self.load(from + k)?)?;
        }
        Ok(())
    }

    /// Unpacks `dst.len()` bytes from the words from `at` on.
    pub(crate) fn read_packed(&self, at: u64, dst: &mut [u8]) -> Result<(), Error> {
        self.check(at, words_for(dst.len()))?;
        for (k, chunk) in dst.chunks_mut(8).enumerate() {
            let w = self.load(at + k as u64)?.to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
        Ok(())
    }

    /// Whether the words from `at` on hold exactly `bytes`.
    fn bytes_eq(&self, at: u64, bytes: &[u8]) -> Result<bool, Error> {
        self.check(at, words_for(bytes.len()))?;
        for (k, chunk) in bytes.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            if self.load(at + k as u64)? != u64::from_le_bytes(w) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Encodes `item` at `at` (`item_words(item)` words).
    pub(crate) fn write_item(&self, at: u64, item: &Item<'_>) -> Result<(), Error> {
        let n = item_words(item);
        self.check(at, n)?;
        for k in 0..n {
            self.store(at + k, item_word(item, k))?;
        }
        Ok(())
    }

    /// The item encoded at `at`, as its header: kind, length in bytes (str/bytes), scalar bits.
    #[inline]
    pub(crate) fn item_head(&self, at: u64) -> Result<Head, Error> {
        let h = self.load(at)?;
        let kind = ItemKind::from_u8(h as u8).ok_or(Error::BadObject)?;
        let len = (h >> 32) as usize;
        let scalar = if is_scalar(kind) { self.load(at + 1)? } else { 0 };
        let head = Head { kind, len, scalar };
        self.check(at, head.words())?;
        Ok(head)
    }

    /// Whether the item at `at` equals `key` (Python's `==`).
    #[inline]
    pub(crate) fn item_eq(&self, at: u64, key: &Item<'_>) -> Result<bool, Error> {
        let h = self.load(at)?;
        if h == item_word(key, 0) {
            // Same kind and length: scalars are equal when their bits are (else the exact
            // comparison decides: -0.0 == 0.0), str and bytes when their words are.
            return match key {
                Item::Str(s) => self.bytes_eq(at + 1, s.as_bytes()),
                Item::Bytes(b) => self.bytes_eq(at + 1, b),
                _ if self.load(at + 1)? == item_word(key, 1) => Ok(true),
                _ => Ok(self.item_head(at)?.scalar_item().is_some_and(|i| i.py_eq(key))),
            };
        }
        // Different kinds may still be equal numbers (1 == 1.0 == True).
        let numeric =
            |k: u64| matches!(ItemKind::from_u8(k as u8), Some(ItemKind::Bool | ItemKind::Int | ItemKind::Float));
        if numeric(h) && numeric(item_word(key, 0)) {
            return Ok(self.item_head(at)?.scalar_item().is_some_and(|i| i.py_eq(key)));
        }
        Ok(false)
    }

    /// Copies the item at `at` out: its header, and its bytes into `buf` when they fit
    /// (`Head::len` says how many there are).
    #[inline]
    pub(crate) fn read_item(&self, at: u64, buf: &mut [u8]) -> Result<Head, Error> {
        let head = self.item_head(at)?;
        if !is_scalar(head.kind) && head.len <= buf.len() {
            self.read_packed(at + 1, &mut buf[..head.len])?;
        }
        Ok(head)
    }
}

/// An encoded item's header, copied out.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(crate) struct Head {
    pub(crate) kind: ItemKind,
    /// Bytes of a str or bytes item; 0 for the scalar kinds.
    pub(crate) len: usize,
    /// Bits of a scalar item.
    pub(crate) scalar: u64,
}

impl Head {
    /// Words the encoded item takes.
    #[inline]
    pub(crate) fn words(&self) -> u64 {
        1 + if is_scalar(self.kind) { 1 } else { words_for(self.len) }
    }

    /// The item, for a scalar kind.
    #[inline]
    pub(crate) fn scalar_item(&self) -> Option<Item<'static>> {
        Some(match self.kind {
            ItemKind::None => Item::None,
            ItemKind::Bool => Item::Bool(self.scalar != 0),
            ItemKind::Int => Item::Int(self.scalar as i64),
            ItemKind::Float => Item::Float(f64::from_bits(self.scalar)),
            ItemKind::Str | ItemKind::Bytes => return None,
        })
    }

    /// The item, its bytes in `buf` (`buf.len() == self.len` for str/bytes). `BadObject` for a
    /// str that is not UTF-8 (only a foreign writer can leave one).
    pub(crate) fn item<'b>(&self, buf: &'b [u8]) -> Result<Item<'b>, Error> {
        match self.kind {
            ItemKind::Str => core::str::from_utf8(buf).map(Item::Str).map_err(|_| Error::BadObject),
            ItemKind::Bytes => Ok(Item::Bytes(buf)),
            _ => self.scalar_item().ok_or(Error::BadObject),
        }
    }
}

/// Words that hold `len` packed bytes.
pub(crate) fn words_for(len: usize) -> u64 {
    (len as u64).div_ceil(8)
}

/// Words `item` takes encoded.
pub(crate) fn item_words(item: &Item<'_>) -> u64 {
    match item {
        Item::Str(s) => 1 + words_for(s.len()),
        Item::Bytes(b) => 1 + words_for(b.len()),
        _ => 2,
    }
}

#[inline]
fn is_scalar(kind: ItemKind) -> bool {
    !matches!(kind, ItemKind::Str | ItemKind::Bytes)
}

/// Word `k` of `item` encoded (module docs).
#[inline]
pub(crate) fn item_word(item: &Item<'_>, k: u64) -> u64 {
    let (kind, len, scalar) = split(item);
    let bytes = match item {
        Item::Str(s) => s.as_bytes(),
        Item::Bytes(b) => b,
        _ => return if k == 0 { kind as u64 } else { scalar },
    };
    if k == 0 {
        return kind as u64 | (len as u64) << 32;
    }
    let chunk = bytes.chunks(8).nth(k as usize - 1).unwrap_or(&[]);
    let mut w = [0u8; 8];
    w[..chunk.len()].copy_from_slice(chunk);
    u64::from_le_bytes(w)
}

/// Kind, byte length and scalar bits of an item.
#[inline]
fn split(item: &Item<'_>) -> (ItemKind, usize, u64) {
    match *item {
        Item::None => (ItemKind::None, 0, 0),
        Item::Bool(b) => (ItemKind::Bool, 0, b as u64),
        Item::Int(i) => (ItemKind::Int, 0, i as u64),
        Item::Float(f) => (ItemKind::Float, 0, f.to_bits()),
        Item::Str(s) => (ItemKind::Str, s.len(), 0),
        Item::Bytes(b) => (ItemKind::Bytes, b.len(), 0),
    }
}

/// Longest str or bytes an item may hold (its length must fit the header's 32 bits).
pub(crate) const MAX_ITEM_BYTES: usize = u32::MAX as usize;

impl Words {
    /// Gives the pages wholly inside words `at..at + n` back to the system (they read as zeros).
    pub(crate) fn discard(&self, at: u64, n: u64) {
        if self.check(at, n).is_err() {
            return;
        }
        #[cfg(all(feature = "std", not(loom)))]
        {
            let start = self.base.as_ptr().wrapping_add(at as usize).cast::<u8>();
            // SAFETY: the words are inside this view's mapping (checked), and the caller no longer
            // needs their contents (freed blocks; readers that race see zeros and retry).
            unsafe { crate::sys::mman::discard(start, n as usize * 8) };
        }
    }
}

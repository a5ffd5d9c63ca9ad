//! The list: an array of 2-word cells in a container's words, changed only through `txn`.
//!
//! A cell is `kind | len << 32` and the scalar's bits, or, for a str or bytes, the offset of a
//! heap block with its bytes (0 when empty). Appending fills the cell past the published
//! length and journals the length; `set` journals the cell's two words; every other change of
//! shape (`insert`, `pop` from the middle, `remove`, `reverse`, `sort`, growth) builds a new
//! array out of readers' reach and journals the array words, freeing the old array.

use std::vec::Vec;

use super::Value;
use super::item::{Item, ItemKind};
use super::txn::{Tx, at};
use super::words::{Head, Words, item_word, words_for};
use crate::error::Error;

const ARR: u64 = at::STATE;
const ACAP: u64 = at::STATE + 1;
const LEN: u64 = at::STATE + 2;

#[derive(Copy, Clone)]
struct Table {
    arr: u64,
    cap: u64,
    len: u64,
}

impl Table {
    fn load(get: impl Fn(u64) -> Result<u64, Error>, w: &Words) -> Result<Table, Error> {
        let t = Table { arr: get(ARR)?, cap: get(ACAP)?, len: get(LEN)? };
        let ok = t.len <= t.cap && t.cap.checked_mul(2).is_some_and(|n| w.check(t.arr, n).is_ok());
        if ok { Ok(t) } else { Err(Error::BadObject) }
    }

    /// Python's index rules: negative counts from the end; `IndexError` is `Inval`.
    fn index(&self, i: i64) -> Result<u64, Error> {
        let i = if i < 0 { i + self.len as i64 } else { i };
        if i < 0 || i as u64 >= self.len { Err(Error::Inval) } else { Ok(i as u64) }
    }
}

/// A cell's header, with its bytes' block.
fn cell(w: &Words, t: &Table, i: u64) -> Result<(Head, u64), Error> {
    let h = w.load(t.arr + 2 * i)?;
    let kind = ItemKind::from_u8(h as u8).ok_or(Error::BadObject)?;
    let len = (h >> 32) as usize;
    let v = w.load(t.arr + 2 * i + 1)?;
    match kind {
        ItemKind::Str | ItemKind::Bytes => {
            if len > 0 {
                w.check(v, words_for(len))?;
            }
            Ok((Head { kind, len, scalar: 0 }, v))
        }
        _ => Ok((Head { kind, len: 0, scalar: v }, 0)),
    }
}

/// Copies cell `i`'s bytes into `buf` when they fit.
fn read_cell(w: &Words, t: &Table, i: u64, buf: &mut [u8]) -> Result<Head, Error> {
    let (head, block) = cell(w, t, i)?;
    if head.len > 0 && head.len <= buf.len() {
        w.read_packed(block, &mut buf[..head.len])?;
    }
    Ok(head)
}

/// Cell `i` as an owned value.
fn value(w: &Words, t: &Table, i: u64) -> Result<Value, Error> {
    let (head, block) = cell(w, t, i)?;
    let mut buf = std::vec![0u8; head.len];
    if head.len > 0 {
        w.read_packed(block, &mut buf)?;
    }
    Value::from_head(&head, buf)
}

/// Reads: lock-free, run inside `Store::read`.
pub(crate) mod read {
    use super::*;

    /// Item `i` (negative from the end), its bytes copied into `buf` when they fit.
    pub(crate) fn get(w: &Words, i: i64, buf: &mut [u8]) -> Result<Head, Error> {
        let t = Table::load(|k| w.load(k), w)?;
        read_cell(w, &t, t.index(i)?, buf)
    }

    /// Items.
    pub(crate) fn len(w: &Words) -> u64 {
        w.load(LEN).unwrap_or(0)
    }

    /// Every item, in order.
    pub(crate) fn values(w: &Words) -> Result<Vec<Value>, Error> {
        let t = Table::load(|k| w.load(k), w)?;
        (0..t.len).map(|i| value(w, &t, i)).collect()
    }

    /// The first index holding an item equal to `v`.
    pub(crate) fn index(w: &Words, v: &Item<'_>) -> Result<Option<u64>, Error> {
        let t = Table::load(|k| w.load(k), w)?;
        for i in 0..t.len {
            if value(w, &t, i)?.as_item().py_eq(v) {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }
}

/// Writes: run inside `Store::write`.
pub(crate) mod write {
    use super::*;

    /// The two words of a cell for `item`, its bytes written to a new block.
    fn new_cell(tx: &mut Tx<'_>, item: &Item<'_>) -> Result<(u64, u64), Error> {
        let head = item_word(item, 0);
        let bytes = match item {
            Item::Str(s) => s.as_bytes(),
            Item::Bytes(b) => b,
            _ => return Ok((head, item_word(item, 1))),
        };
        if bytes.is_empty() {
            return Ok((head, 0));
        }
        let n = words_for(bytes.len());
        let block = tx.alloc(n)?;
        for k in 0..n {
            tx.w.store(block + k, item_word(item, k + 1))?;
        }
        Ok((head, block))
    }

    /// Frees the bytes block of cell `i`, if it has one.
    fn free_cell(tx: &mut Tx<'_>, t: &Table, i: u64) -> Result<(), Error> {
        let (head, block) = cell(tx.w, t, i)?;
        if block != 0 { tx.free(block, words_for(head.len)) } else { Ok(()) }
    }

    /// A new array of at least `len` cells, filled by `fill(new_array)`, published with length
    /// `len`; the old one is freed.
    fn replace(
        tx: &mut Tx<'_>,
        t: &Table,
        len: u64,
        fill: impl FnOnce(&mut Tx<'_>, u64) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let cap = len.max(8).checked_next_power_of_two().ok_or(Error::NoMem)?;
        let arr = tx.alloc(2 * cap)?;
        fill(tx, arr)?;
        if t.cap != 0 {
            tx.free(t.arr, 2 * t.cap)?;
        }
        tx.set(ARR, arr)?;
        tx.set(ACAP, cap)?;
        tx.set(LEN, len)
    }

    fn table(tx: &Tx<'_>) -> Result<Table, Error> {
        Table::load(|k| tx.get(k), tx.w)
    }

    /// `l.extend(items)` (`l.append(item)` with one item): all or nothing.
    pub(crate) fn extend(tx: &mut Tx<'_>, items: &[Item<'_>]) -> Result<(), Error> {
        let mut t = table(tx)?;
        let len = t.len.checked_add(items.len() as u64).ok_or(Error::NoMem)?;
        if len > t.cap {
            let old = t;
            replace(tx, &old, len, |tx, arr| tx.w.copy(old.arr, arr, 2 * old.len))?;
            t = Table { arr: tx.get(ARR)?, cap: tx.get(ACAP)?, len: old.len };
        }
        for (k, item) in items.iter().enumerate() {
            let (h, v) = new_cell(tx, item)?;
            // Past the published length: prepared, not journaled.
            tx.w.store(t.arr + 2 * (t.len + k as u64), h)?;
            tx.w.store(t.arr + 2 * (t.len + k as u64) + 1, v)?;
        }
        tx.set(LEN, len)
    }

    /// `l[i] = item`.
    pub(crate) fn set(tx: &mut Tx<'_>, i: i64, item: &Item<'_>) -> Result<(), Error> {
        let t = table(tx)?;
        let i = t.index(i)?;
        free_cell(tx, &t, i)?;
        let (h, v) = new_cell(tx, item)?;
        tx.set(t.arr + 2 * i, h)?;
        tx.set(t.arr + 2 * i + 1, v)
    }

    /// `l.insert(i, item)`, with Python's clamping of `i`.
    pub(crate) fn insert(tx: &mut Tx<'_>, i: i64, item: &Item<'_>) -> Result<(), Error> {
        let t = table(tx)?;
        let n = t.len as i64;
        let i = (if i < 0 { (i + n).max(0) } else { i.min(n) }) as u64;
        let (h, v) = new_cell(tx, item)?;
        replace(tx, &t, t.len + 1, |tx, arr| {
            tx.w.copy(t.arr, arr, 2 * i)?;
            tx.w.store(arr + 2 * i, h)?;
            tx.w.store(arr + 2 * i + 1, v)?;
            tx.w.copy(t.arr + 2 * i, arr + 2 * i + 2, 2 * (t.len - i))
        })
    }

    /// `l.pop(i)`: the item is copied out (its bytes into `buf`; too small → `MsgSize`, and
    /// nothing changes).
    pub(crate) fn pop(tx: &mut Tx<'_>, i: i64, buf: &mut [u8]) -> Result<Head, Error> {
        let t = table(tx)?;
        let i = t.index(i)?;
        let head = read_cell(tx.w, &t, i, buf)?;
        if head.len > buf.len() {
            return Err(Error::MsgSize { needed: head.len });
        }
        remove_at(tx, &t, i)?;
        Ok(head)
    }

    fn remove_at(tx: &mut Tx<'_>, t: &Table, i: u64) -> Result<(), Error> {
        free_cell(tx, t, i)?;
        if i + 1 == t.len {
            return tx.set(LEN, i);
        }
        replace(tx, t, t.len - 1, |tx, arr| {
            tx.w.copy(t.arr, arr, 2 * i)?;
            tx.w.copy(t.arr + 2 * i + 2, arr + 2 * i, 2 * (t.len - i - 1))
        })
    }

    /// `l.remove(v)`: the first equal item. `NotFound` if none.
    pub(crate) fn remove(tx: &mut Tx<'_>, v: &Item<'_>) -> Result<(), Error> {
        let t = table(tx)?;
        let i = read::index(tx.w, v)?.ok_or(Error::NotFound)?;
        remove_at(tx, &t, i)
    }

    /// `l.reverse()`.
    pub(crate) fn reverse(tx: &mut Tx<'_>) -> Result<(), Error> {
        let t = table(tx)?;
        replace(tx, &t, t.len, |tx, arr| {
            for k in 0..t.len {
                tx.w.copy(t.arr + 2 * k, arr + 2 * (t.len - 1 - k), 2)?;
            }
            Ok(())
        })
    }

    /// `l.sort()`: stable, Python's order; items that Python cannot compare → `Inval`, unchanged.
    pub(crate) fn sort(tx: &mut Tx<'_>) -> Result<(), Error> {
        let t = table(tx)?;
        let mut keyed = (0..t.len).map(|i| Ok((value(tx.w, &t, i)?, i))).collect::<Result<Vec<_>, Error>>()?;
        if let Some(first) = keyed.first() {
            let first = first.0.as_item();
            if keyed.iter().skip(1).any(|(v, _)| first.py_cmp(&v.as_item()).is_none()) {
                return Err(Error::Inval);
            }
        }
        // One comparable class (numbers, str or bytes): py_cmp is a total order on it.
        keyed.sort_by(|a, b| a.0.as_item().py_cmp(&b.0.as_item()).unwrap_or(core::cmp::Ordering::Equal));
        replace(tx, &t, t.len, |tx, arr| {
            for (k, &(_, i)) in keyed.iter().enumerate() {
                tx.w.copy(t.arr + 2 * i, arr + 2 * k as u64, 2)?;
            }
            Ok(())
        })
    }

    /// `l.clear()` (also `del l[:]`): every block is freed.
    pub(crate) fn clear(tx: &mut Tx<'_>) -> Result<(), Error> {
        tx.reset()?;
        for i in [ARR, ACAP, LEN] {
            tx.set(i, 0)?;
        }
        Ok(())
    }
}

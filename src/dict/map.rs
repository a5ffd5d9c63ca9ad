//! The dict: Python 3's compact layout (an entries array in insertion order and an index table
//! over it), kept in a container's words and changed only through `txn`.
//!
//! - **Entries**: 2 words each, `block | h32 << 32` and a stamp. `block` is the offset of one
//!   heap block holding the encoded key then the encoded value; 0 marks a deleted entry.
//!   Stamps grow with every insertion and survive `clear`, so a cursor ("the next entry with a
//!   stamp above mine, below the stamp at my start") never repeats a key and never crashes.
//! - **Index**: `icap` (a power of two) words, linear probing from `h32 & (icap - 1)`; a slot
//!   is 0 (empty), `DUMMY` (deleted) or `(e + 2) | h32 << 32` for entry `e`. `h32` is the high
//!   half of the item's `key_hash`.
//! - When the entries array is full it is rebuilt, live entries only, at 1.5 times the live
//!   count rounded up to a power of two, with an index twice that: prepared out of readers'
//!   reach, published by the journaled table words, the old arrays freed.
//!
//! Overwriting a value of the same encoded size journals the new value's words in place;
//! otherwise a new block (the old key copied, as Python keeps the first key) replaces the old.

use super::item::Item;
use super::txn::{Tx, at};
use super::words::{Head, Words, item_word, item_words};
use crate::error::Error;

const IDX: u64 = at::STATE;
const ICAP: u64 = at::STATE + 1;
const ENT: u64 = at::STATE + 2;
const ECAP: u64 = at::STATE + 3;
const ELEN: u64 = at::STATE + 4;
const COUNT: u64 = at::STATE + 5;
const STAMP: u64 = at::STATE + 6;

const DUMMY: u64 = 1;
/// Largest value overwritten in place (journal pairs it takes).
const IN_PLACE_WORDS: u64 = 8;

/// The table words, copied.
#[derive(Copy, Clone)]
struct Table {
    idx: u64,
    icap: u64,
    ent: u64,
    ecap: u64,
    elen: u64,
    count: u64,
    stamp: u64,
}

impl Table {
    #[inline]
    fn load(get: impl Fn(u64) -> Result<u64, Error>, w: &Words) -> Result<Table, Error> {
        let t = Table {
            idx: get(IDX)?,
            icap: get(ICAP)?,
            ent: get(ENT)?,
            ecap: get(ECAP)?,
            elen: get(ELEN)?,
            count: get(COUNT)?,
            stamp: get(STAMP)?,
        };
        // What a reader may follow: arrays inside the words, lengths within capacities.
        let ok = (t.icap == 0 || t.icap.is_power_of_two())
            && t.elen <= t.ecap
            && t.count <= t.elen
            && w.check(t.idx, t.icap).is_ok()
            && t.ecap.checked_mul(2).is_some_and(|n| w.check(t.ent, n).is_ok());
        if ok { Ok(t) } else { Err(Error::BadObject) }
    }
}

/// Where a key is, or where it would go.
enum Probe {
    Found { slot: u64, e: u64, block: u64 },
    Absent { slot: u64 },
}

#[inline]
fn h32(key: &Item<'_>) -> u64 {
    key.key_hash() >> 32
}

#[inline]
fn find(w: &Words, t: &Table, key: &Item<'_>, h: u64) -> Result<Probe, Error> {
    if t.icap == 0 {
        return Err(Error::BadObject);
    }
    let mask = t.icap - 1;
    let mut i = h & mask;
    let mut free = None;
    for _ in 0..t.icap {
        let s = w.load(t.idx + i)?;
        if s == 0 {
            return Ok(Probe::Absent { slot: free.unwrap_or(i) });
        }
        if s == DUMMY {
            free.get_or_insert(i);
        } else if s >> 32 == h {
            let e = (s & 0xffff_ffff).checked_sub(2).filter(|&e| e < t.elen).ok_or(Error::BadObject)?;
            let block = w.load(t.ent + 2 * e)? & 0xffff_ffff;
            if block != 0 && w.item_eq(block, key)? {
                return Ok(Probe::Found { slot: i, e, block });
            }
        }
        i = (i + 1) & mask;
    }
    free.map(|slot| Probe::Absent { slot }).ok_or(Error::BadObject)
}

/// Words of the key and of the value in `block`.
fn block_words(w: &Words, block: u64) -> Result<(u64, u64), Error> {
    let k = w.item_head(block)?.words();
    Ok((k, w.item_head(block + k)?.words()))
}

/// Reads: lock-free, run inside `Store::read`.
pub(crate) mod read {
    use super::*;

    /// The value of `key`, its bytes copied into `buf` when they fit; `None` if absent.
    #[inline]
    pub(crate) fn get(w: &Words, key: &Item<'_>, buf: &mut [u8]) -> Result<Option<Head>, Error> {
        let t = Table::load(|i| w.load(i), w)?;
        if t.count == 0 {
            return Ok(None);
        }
        match find(w, &t, key, h32(key))? {
            Probe::Found { block, .. } => {
                let k = w.item_head(block)?.words();
                Ok(Some(w.read_item(block + k, buf)?))
            }
            Probe::Absent { .. } => Ok(None),
        }
    }

    /// Live entries.
    pub(crate) fn len(w: &Words) -> u64 {
        w.load(COUNT).unwrap_or(0)
    }

    /// The first live entry with a stamp in `from..end`: `(stamp, key block, value offset)`.
    pub(crate) fn next(w: &Words, from: u64, end: u64) -> Result<Option<(u64, u64, u64)>, Error> {
        let t = Table::load(|i| w.load(i), w)?;
        // Entries are in stamp order: binary search for the first stamp >= from.
        let (mut lo, mut hi) = (0, t.elen);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if w.load(t.ent + 2 * mid + 1)? < from {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        for e in lo..t.elen {
            let stamp = w.load(t.ent + 2 * e + 1)?;
            if stamp >= end {
                break;
            }
            if stamp < from {
                continue; // only in a corrupt region (stamps out of order): never go back
            }
            let block = w.load(t.ent + 2 * e)? & 0xffff_ffff;
            if block != 0 {
                let k = w.item_head(block)?.words();
                return Ok(Some((stamp, block, block + k)));
            }
        }
        Ok(None)
    }

    /// The stamp the next insertion gets (a cursor's end).
    pub(crate) fn stamp(w: &Words) -> Result<u64, Error> {
        w.load(STAMP)
    }
}

/// Writes: run inside `Store::write`.
pub(crate) mod write {
    use super::*;

    /// `d[key] = value`. Returns whether the key is new.
    pub(crate) fn set(tx: &mut Tx<'_>, key: &Item<'_>, value: &Item<'_>) -> Result<bool, Error> {
        let w = tx.w;
        let mut t = Table::load(|i| tx.get(i), w)?;
        if t.icap == 0 {
            rebuild(tx, &mut t, 1)?;
        }
        let h = h32(key);
        let slot = match find(w, &t, key, h)? {
            Probe::Found { e, block, .. } => {
                overwrite(tx, &t, e, block, value)?;
                return Ok(false);
            }
            Probe::Absent { slot } if t.elen < t.ecap => slot,
            Probe::Absent { .. } => {
                let need = t.count + 1;
                rebuild(tx, &mut t, need)?;
                match find(w, &t, key, h)? {
                    Probe::Absent { slot } => slot,
                    Probe::Found { .. } => return Err(Error::BadObject),
                }
            }
        };
        let kw = item_words(key);
        let block = tx.alloc(kw + item_words(value))?;
        w.write_item(block, key)?;
        w.write_item(block + kw, value)?;
        // Entry `elen` is past the published length: prepared, not journaled.
        w.store(t.ent + 2 * t.elen, block | h << 32)?;
        w.store(t.ent + 2 * t.elen + 1, t.stamp)?;
        tx.set(t.idx + slot, (t.elen + 2) | h << 32)?;
        tx.set(ELEN, t.elen + 1)?;
        tx.set(COUNT, t.count + 1)?;
        tx.set(STAMP, t.stamp + 1)?;
        Ok(true)
    }

    fn overwrite(tx: &mut Tx<'_>, t: &Table, e: u64, block: u64, value: &Item<'_>) -> Result<(), Error> {
        let w = tx.w;
        let (kw, old_vw) = block_words(w, block)?;
        let vw = item_words(value);
        if vw == old_vw && vw <= IN_PLACE_WORDS {
            for k in 0..vw {
                let word = item_word(value, k);
                if w.load(block + kw + k)? != word {
                    tx.set(block + kw + k, word)?;
                }
            }
            return Ok(());
        }
        let new = tx.alloc(kw + vw)?;
        w.copy(block, new, kw)?;
        w.write_item(new + kw, value)?;
        let h = w.load(t.ent + 2 * e)? >> 32;
        tx.set(t.ent + 2 * e, new | h << 32)?;
        tx.free(block, kw + old_vw)
    }

    /// `del d[key]`; the value is copied out first (`pop`) when `out` is given. `NotFound`.
    pub(crate) fn del(tx: &mut Tx<'_>, key: &Item<'_>, out: Option<&mut [u8]>) -> Result<Head, Error> {
        let w = tx.w;
        let t = Table::load(|i| tx.get(i), w)?;
        if t.count == 0 {
            return Err(Error::NotFound);
        }
        let Probe::Found { slot, e, block } = find(w, &t, key, h32(key))? else {
            return Err(Error::NotFound);
        };
        let (kw, vw) = block_words(w, block)?;
        let head = match out {
            Some(buf) => {
                let head = w.read_item(block + kw, buf)?;
                if head.len > buf.len() {
                    return Err(Error::MsgSize { needed: head.len });
                }
                head
            }
            None => w.item_head(block + kw)?,
        };
        tx.set(t.idx + slot, DUMMY)?;
        tx.set(t.ent + 2 * e, 0)?;
        tx.set(COUNT, t.count - 1)?;
        tx.free(block, kw + vw)?;
        Ok(head)
    }

    /// `d.clear()`: every block is freed; stamps keep counting (cursors stay valid).
    pub(crate) fn clear(tx: &mut Tx<'_>) -> Result<(), Error> {
        tx.reset()?;
        for i in [IDX, ICAP, ENT, ECAP, ELEN, COUNT] {
            tx.set(i, 0)?;
        }
        Ok(())
    }

    /// New arrays for at least `need` live entries, holding the live ones in order.
    fn rebuild(tx: &mut Tx<'_>, t: &mut Table, need: u64) -> Result<(), Error> {
        let w = tx.w;
        let ecap = (need + need / 2).max(8).checked_next_power_of_two().ok_or(Error::NoMem)?;
        let icap = 2 * ecap;
        if icap > 1 << 32 {
            return Err(Error::NoMem);
        }
        let ent = tx.alloc(2 * ecap)?;
        let idx = tx.alloc(icap)?;
        for i in idx..idx + icap {
            w.store(i, 0)?;
        }
        let mut n = 0;
        for e in 0..t.elen {
            let w0 = w.load(t.ent + 2 * e)?;
            if w0 & 0xffff_ffff == 0 {
                continue;
            }
            if n == ecap {
                return Err(Error::BadObject); // more live entries than the count says: corrupt
            }
            w.store(ent + 2 * n, w0)?;
            w.store(ent + 2 * n + 1, w.load(t.ent + 2 * e + 1)?)?;
            let mut i = (w0 >> 32) & (icap - 1);
            while w.load(idx + i)? != 0 {
                i = (i + 1) & (icap - 1);
            }
            w.store(idx + i, (n + 2) | (w0 >> 32) << 32)?;
            n += 1;
        }
        if t.icap != 0 {
            tx.free(t.idx, t.icap)?;
            tx.free(t.ent, 2 * t.ecap)?;
        }
        *t = Table { idx, icap, ent, ecap, elen: n, ..*t };
        for (i, v) in [(IDX, idx), (ICAP, icap), (ENT, ent), (ECAP, ecap), (ELEN, n)] {
            tx.set(i, v)?;
        }
        Ok(())
    }
}

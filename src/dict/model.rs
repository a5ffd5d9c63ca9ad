//! A dict for loom models: the real `txn` and `map` code over a heap slice of model atomics.

use core::ptr::NonNull;
use std::vec::Vec;

use super::item::Item;
use super::map;
use super::txn::Store;
use super::words::Words;
use crate::error::Error;
use crate::lock::RawMutex;
use crate::sync::AtomicU64;

/// Words a model dict holds: the control block and a small heap (a table rebuild fits).
const WORDS: usize = 512;

/// A [`SharedDict`](super::SharedDict) of int keys and values for loom models: its own robust
/// mutex and `WORDS` leaked words, changed by the same `map` functions through `Store`.
#[doc(hidden)]
pub struct ModelDict {
    lock: RawMutex,
    words: Words,
}

impl ModelDict {
    /// A fresh, formatted dict (call inside a loom model: its atomics are model objects). The
    /// words are leaked, so a dict lives as long as the model's threads.
    pub fn new() -> ModelDict {
        let mem: &'static mut [AtomicU64] = Vec::leak((0..WORDS).map(|_| AtomicU64::new(0)).collect());
        let base = NonNull::from(mem).cast::<AtomicU64>();
        // SAFETY: `WORDS` leaked words (never freed), reached only through `Words` (atomics).
        let words = unsafe { Words::new(base, WORDS as u64) };
        let d = ModelDict { lock: RawMutex::new(), words };
        d.store().format(u64::from_le_bytes(*b"MPKMODEL")).expect("format");
        d
    }

    fn store(&self) -> Store<'_> {
        Store { lock: &self.lock, w: &self.words }
    }

    /// `d[k] = v`.
    pub fn set(&self, k: i64, v: i64) -> Result<(), Error> {
        self.store().write(|tx| map::write::set(tx, &Item::Int(k), &Item::Int(v))).map(drop)
    }

    /// `d.get(k)`.
    pub fn get(&self, k: i64) -> Result<Option<i64>, Error> {
        self.get_many(&[k]).map(|v| v[0])
    }

    /// The values of `keys`, all from one consistent state (one `Store::read`).
    pub fn get_many(&self, keys: &[i64]) -> Result<Vec<Option<i64>>, Error> {
        self.store().read(|w| keys.iter().map(|&k| get_in(w, k)).collect())
    }

    /// `del d[k]`: false if absent.
    pub fn del(&self, k: i64) -> Result<bool, Error> {
        match self.store().write(|tx| map::write::del(tx, &Item::Int(k), None)) {
            Ok(_) => Ok(true),
            Err(Error::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `len(d)`.
    pub fn len(&self) -> usize {
        map::read::len(&self.words) as usize
    }

    /// `len(d) == 0`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Operations repaired after a writer died.
    pub fn repairs(&self) -> u64 {
        self.store().repairs()
    }
}

impl Default for ModelDict {
    fn default() -> ModelDict {
        ModelDict::new()
    }
}

fn get_in(w: &Words, k: i64) -> Result<Option<i64>, Error> {
    match map::read::get(w, &Item::Int(k), &mut [])? {
        None => Ok(None),
        Some(head) => match head.scalar_item() {
            Some(Item::Int(v)) => Ok(Some(v)),
            _ => Err(Error::BadObject),
        },
    }
}

//! The write and read protocols every container shares: a robust lock and a redo journal for
//! writers, a sequence word for lock-free readers, and the in-region allocator's free lists.
//!
//! # Writers
//! A writer holds the container's robust mutex and works in three steps:
//! 1. **Prepare.** It allocates blocks and fills them, and fills array slots past the published
//!    length: memory that no reader can reach from the published state. Allocation pops a free
//!    list or bumps the top with one store each, so a writer that dies here leaks what it took.
//! 2. **Commit.** Every store that changes what readers can reach (a table slot, a length, a
//!    pointer to a new array, a free-list push) goes into the journal, a list of
//!    `(word, value)` pairs in the region; then `JLEN` is stored with Release. From that store
//!    on the operation has happened.
//! 3. **Apply.** `SEQ` goes odd, the pairs are stored, `SEQ` goes even, `JLEN` back to 0.
//!
//! If the writer dies, the kernel marks the mutex `OWNER_DIED` and the next locker (a writer or a
//! reader that gave up on an odd `SEQ`) repairs: with `JLEN > 0` it applies the journal again
//! (the pairs hold absolute values, so applying twice is applying once), and leaves `SEQ` even.
//! So an operation happens entirely or not at all; at worst a block prepared by a dead writer
//! leaks until `clear`. Free-list pushes are computed at commit, after the operation's pops, so
//! a block freed by an operation is reused only by a later one.
//!
//! # Readers
//! A reader takes no lock: it loads `SEQ` (Acquire; odd means a writer is applying, so it spins),
//! copies what it needs with Relaxed loads, then an Acquire fence and `SEQ` again; a change means
//! a writer ran meanwhile and the copy may be torn, so it retries. Prepare-step stores go to
//! unreachable memory and need no `SEQ` bump; a reader that still holds an older state sees
//! `SEQ` moved. Every offset a reader follows is bounds-checked (`Words`), so a torn copy
//! fails or retries, never faults. After `SPINS` spins on an odd `SEQ` (a writer died between
//! the odd and the even store, or is descheduled there) or `COPIES` copies spoilt by writers, the
//! reader takes the lock, repairing if needed.

use super::words::Words;
use crate::error::Error;
use crate::lock::{Acquired, RawMutex};
use crate::sync::{Deadline, Ordering, death_point, fence, mutant, spin_hint};

/// Word indices of the control block at the start of every container's words.
pub(crate) mod at {
    /// `MAGIC ^ kind`: which container this is.
    pub(crate) const MAGIC: u64 = 0;
    /// Words in the region (must match the mapping).
    pub(crate) const END: u64 = 1;
    /// Sequence word: odd while a writer applies.
    pub(crate) const SEQ: u64 = 2;
    /// Pairs in the journal, 0 when none is pending.
    pub(crate) const JLEN: u64 = 3;
    /// Operations repaired after a writer's death (a statistic).
    pub(crate) const REPAIRS: u64 = 4;
    /// First word past the allocated heap (bump pointer).
    pub(crate) const TOP: u64 = 5;
    /// The journal: `JMAX` pairs `(word, value)`.
    pub(crate) const JOURNAL: u64 = 8;
    /// Heads of the free lists, one per size class.
    pub(crate) const FREE: u64 = JOURNAL + 2 * super::JMAX as u64;
    /// The container's own words (its table or array).
    pub(crate) const STATE: u64 = FREE + super::NCLASS as u64;
    /// First heap word.
    pub(crate) const HEAP: u64 = STATE + 8;
}

/// Pairs one journal holds.
pub(crate) const JMAX: usize = 24;
/// Size classes: 64 exact ones (1..=64 words), then powers of two (128 words .. 2^32 words).
pub(crate) const NCLASS: usize = 64 + 26;
/// A journal pair with this bit in its word index zeroes `value` words from the index on.
const ZERO_RANGE: u64 = 1 << 63;
/// Spins on an odd `SEQ` (a writer applying: a few stores) before a reader takes the lock.
const SPINS: u32 = if cfg!(loom) { 2 } else { 4096 };
/// Copies spoilt by a writer before a reader takes the lock: a large copy (a whole list) under
/// steady writes would otherwise be redone thousands of times.
const COPIES: u32 = if cfg!(loom) { 2 } else { 16 };
/// Freed blocks at least this large give their pages back (`MADV_REMOVE`).
const DISCARD_WORDS: u64 = 8192;

/// The size class for a block of `n` words: `(class, words the class hands out)`.
pub(crate) fn class_of(n: u64) -> Result<(usize, u64), Error> {
    match n {
        0 => Err(Error::Inval),
        1..=64 => Ok((n as usize - 1, n)),
        _ => {
            let size = n.checked_next_power_of_two().filter(|&s| s <= 1 << 32).ok_or(Error::NoMem)?;
            Ok((64 + (size.trailing_zeros() as usize - 7), size))
        }
    }
}

/// A container's shared words and the lock its writers take.
pub(crate) struct Store<'a> {
    pub(crate) lock: &'a RawMutex,
    pub(crate) w: &'a Words,
}

impl Store<'_> {
    /// Lays out a fresh (zeroed) container of kind `magic`.
    pub(crate) fn format(&self, magic: u64) -> Result<(), Error> {
        if self.w.len() < at::HEAP + 64 {
            return Err(Error::Inval);
        }
        self.w.store(at::END, self.w.len())?;
        self.w.store(at::TOP, at::HEAP)?;
        // Release: whoever sees the magic sees the rest (openers load it with Acquire).
        self.w.at(at::MAGIC)?.store(magic, Ordering::Release);
        Ok(())
    }

    /// Validates a container found in a mapping (an opener's check).
    pub(crate) fn check(&self, magic: u64) -> Result<(), Error> {
        if self.w.len() < at::HEAP || self.w.at(at::MAGIC)?.load(Ordering::Acquire) != magic {
            return Err(Error::BadObject);
        }
        let top = self.w.load(at::TOP)?;
        if self.w.load(at::END)? != self.w.len() || !(at::HEAP..=self.w.len()).contains(&top) {
            return Err(Error::BadObject);
        }
        Ok(())
    }

    /// Operations repaired after a writer died.
    pub(crate) fn repairs(&self) -> u64 {
        self.w.load(at::REPAIRS).unwrap_or(0)
    }

    /// Words handed out by the allocator so far (the heap's high-water mark).
    pub(crate) fn heap_words(&self) -> u64 {
        self.w.load(at::TOP).unwrap_or(0).saturating_sub(at::HEAP)
    }

    /// Runs the write `f` under the lock, then commits and applies its journal (module docs).
    /// If `f` fails, what it allocated is freed and nothing else changes.
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<R, Error>) -> Result<R, Error> {
        self.lock()?;
        let mut tx = Tx::new(self.w);
        let r = f(&mut tx);
        let done = match r {
            Ok(_) => tx.commit(),
            Err(_) => tx.abort(),
        };
        self.lock.unlock()?;
        done?;
        r
    }

    /// Runs the read `f` lock-free, retrying until it saw one consistent state (module docs).
    pub(crate) fn read<R>(&self, mut f: impl FnMut(&Words) -> Result<R, Error>) -> Result<R, Error> {
        let seq = self.w.at(at::SEQ)?;
        let (mut spins, mut copies) = (0, 0);
        while spins < SPINS && copies < COPIES {
            // Acquire pairs with the Release store that made SEQ even: the state it ends is visible.
            let s = seq.load(Ordering::Acquire);
            if s & 1 == 1 {
                spins += 1;
                spin_hint();
                continue;
            }
            let r = f(self.w);
            if mutant("dict_no_recheck") {
                return r;
            }
            // The fence orders the copy's loads before the re-check; it pairs with the Release
            // fence after the writer's odd store (a copy that saw any applied store sees SEQ moved).
            fence(Ordering::Acquire);
            if seq.load(Ordering::Relaxed) == s {
                return r;
            }
            copies += 1;
        }
        self.lock()?;
        let r = f(self.w);
        self.lock.unlock()?;
        r
    }

    /// Takes the lock, repairing after a dead holder.
    fn lock(&self) -> Result<(), Error> {
        if self.lock.lock_until(Deadline::FOREVER)? == Acquired::OwnerDied {
            let r = if mutant("dict_no_repair") { Ok(()) } else { self.repair() };
            self.lock.consistent()?;
            if let Err(e) = r {
                self.lock.unlock()?;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Finishes what a dead writer committed; leaves `SEQ` even.
    fn repair(&self) -> Result<(), Error> {
        // Acquire pairs with the Release store of JLEN in `commit`: the pairs are visible.
        let n = self.w.at(at::JLEN)?.load(Ordering::Acquire);
        if n as usize > JMAX {
            return Err(Error::BadObject);
        }
        apply(self.w, n as usize, |k| journal_pair(self.w, k))?;
        let repairs = self.w.load(at::REPAIRS)?;
        self.w.store(at::REPAIRS, repairs + u64::from(n > 0))
    }
}

/// Stores the `n` pairs `pair(k)` between an odd and an even `SEQ`, then empties the journal.
/// Also how a repair finishes a dead writer's commit (`n` may be 0: then `SEQ` is only evened).
fn apply(w: &Words, n: usize, pair: impl Fn(u64) -> Result<(u64, u64), Error>) -> Result<(), Error> {
    let seq = w.at(at::SEQ)?;
    let s = seq.load(Ordering::Relaxed);
    let odd = s | 1;
    if !mutant("dict_no_seq") {
        seq.store(odd, Ordering::Relaxed);
    }
    // Release fence: readers that see any store below see SEQ odd (pairs with their Acquire fence).
    fence(Ordering::Release);
    for k in 0..n as u64 {
        let (i, v) = pair(k)?;
        if i & ZERO_RANGE != 0 {
            let start = i & !ZERO_RANGE;
            w.check(start, v)?;
            for j in start..start + v {
                w.store(j, 0)?;
            }
        } else if i == at::TOP || (at::FREE..w.len()).contains(&i) {
            w.store(i, v)?;
        } else {
            return Err(Error::BadObject); // never the control words
        }
        if k == 0 {
            death_point("dict_applying"); // SEQ odd, the first pair stored, the rest not
        }
    }
    // Release: a reader that loads this value sees every store above.
    seq.store(odd + 1, Ordering::Release);
    if w.load(at::JLEN)? != 0 {
        w.store(at::JLEN, 0)?;
    }
    Ok(())
}

/// The journal pair `k` in the region.
fn journal_pair(w: &Words, k: u64) -> Result<(u64, u64), Error> {
    Ok((w.load(at::JOURNAL + 2 * k)?, w.load(at::JOURNAL + 2 * k + 1)?))
}

/// One writer's operation in the making (module docs). Its journal pairs are written straight
/// into the region's journal (only the lock holder writes there, and nobody reads them before
/// `JLEN` says so); blocks are `block << 32 | words` (a region has fewer than 2^32 words).
pub(crate) struct Tx<'w> {
    pub(crate) w: &'w Words,
    /// Pairs in the journal so far.
    n: u64,
    frees: [u64; 8],
    nfree: usize,
    /// Blocks allocated, to give back if the operation fails (the first 8; any more leak).
    taken: [u64; 8],
    ntaken: usize,
    reset: bool,
}

impl<'w> Tx<'w> {
    fn new(w: &'w Words) -> Tx<'w> {
        Tx { w, n: 0, frees: [0; 8], nfree: 0, taken: [0; 8], ntaken: 0, reset: false }
    }

    /// The journal index of the pair for word `i`, if this operation has one.
    fn pending(&self, i: u64) -> Result<Option<u64>, Error> {
        for k in (0..self.n).rev() {
            if self.w.load(at::JOURNAL + 2 * k)? == i {
                return Ok(Some(k));
            }
        }
        Ok(None)
    }

    /// Word `i` as this operation will leave it (its own journaled stores included).
    pub(crate) fn get(&self, i: u64) -> Result<u64, Error> {
        match self.pending(i)? {
            Some(k) => self.w.load(at::JOURNAL + 2 * k + 1),
            None => self.w.load(i),
        }
    }

    /// Journals the store `word i = v` (readers see it at commit).
    pub(crate) fn set(&mut self, i: u64, v: u64) -> Result<(), Error> {
        if let Some(k) = self.pending(i)? {
            return self.w.store(at::JOURNAL + 2 * k + 1, v);
        }
        if self.n == JMAX as u64 {
            return Err(Error::State);
        }
        self.w.store(at::JOURNAL + 2 * self.n, i)?;
        self.w.store(at::JOURNAL + 2 * self.n + 1, v)?;
        self.n += 1;
        Ok(())
    }

    /// A block of at least `n` words, from its class's free list or the top of the heap.
    pub(crate) fn alloc(&mut self, n: u64) -> Result<u64, Error> {
        let (class, size) = class_of(n)?;
        let head_at = at::FREE + class as u64;
        let head = self.w.load(head_at)?;
        let block = if head != 0 {
            if head < at::HEAP {
                return Err(Error::BadObject);
            }
            self.w.check(head, size)?;
            self.w.store(head_at, self.w.load(head)?)?;
            head
        } else {
            let top = self.w.load(at::TOP)?;
            let end = top.checked_add(size).filter(|&e| e <= self.w.len()).ok_or(Error::NoMem)?;
            self.w.store(at::TOP, end)?;
            top
        };
        if let Some(t) = self.taken.get_mut(self.ntaken) {
            *t = block << 32 | n;
            self.ntaken += 1;
        }
        Ok(block)
    }

    /// Frees the `n`-word block at `at` when the operation commits.
    pub(crate) fn free(&mut self, at: u64, n: u64) -> Result<(), Error> {
        class_of(n)?;
        *self.frees.get_mut(self.nfree).ok_or(Error::State)? = at << 32 | n;
        self.nfree += 1;
        Ok(())
    }

    /// Frees the whole heap at commit (`clear`): the container's state words are the caller's.
    pub(crate) fn reset(&mut self) -> Result<(), Error> {
        self.reset = true;
        self.nfree = 0;
        self.set(ZERO_RANGE | at::FREE, NCLASS as u64)?;
        self.set(at::TOP, at::HEAP)
    }

    /// Journals the free-list pushes, publishes the journal, applies it, gives pages back.
    fn commit(&mut self) -> Result<(), Error> {
        for f in 0..self.nfree {
            let (block, n) = (self.frees[f] >> 32, self.frees[f] & 0xffff_ffff);
            let head_at = at::FREE + class_of(n)?.0 as u64;
            let head = self.get(head_at)?;
            self.set(block, head)?;
            self.set(head_at, block)?;
        }
        death_point("dict_prepared"); // prepared, nothing committed: the operation did not happen
        if self.n > 1 {
            // Release: a repairer that sees JLEN sees the pairs (pairs with its Acquire load).
            self.w.at(at::JLEN)?.store(self.n, Ordering::Release);
            death_point("dict_committed");
        }
        // One store needs no commit record: it is the commit point itself.
        if self.n > 0 {
            apply(self.w, self.n as usize, |k| journal_pair(self.w, k))?;
        }
        if self.reset {
            self.w.discard(at::HEAP, self.w.len() - at::HEAP);
        } else {
            for &f in &self.frees[..self.nfree] {
                let (block, n) = (f >> 32, f & 0xffff_ffff);
                let size = class_of(n)?.1;
                if size >= DISCARD_WORDS {
                    self.w.discard(block + 1, size - 1); // word 0 holds the free-list link
                }
            }
        }
        Ok(())
    }

    /// A failed operation: gives back what it allocated, changes nothing else.
    fn abort(&mut self) -> Result<(), Error> {
        self.n = 0;
        self.nfree = 0;
        self.reset = false;
        for t in 0..self.ntaken.min(self.frees.len()) {
            let (block, n) = (self.taken[t] >> 32, self.taken[t] & 0xffff_ffff);
            self.free(block, n)?; // beyond `frees`, the rest leak (at most until `clear`)
        }
        self.commit()
    }
}

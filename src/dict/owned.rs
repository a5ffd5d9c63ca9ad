//! The owned containers: a region holding a robust mutex, then the container's words.

use core::fmt;
use core::ptr::NonNull;
use std::string::String;
use std::vec::Vec;

use super::item::{Item, ItemKind};
use super::txn::Store;
use super::words::{Head, MAX_ITEM_BYTES, Words};
use super::{list, map};
use crate::error::Error;
use crate::lock::RawMutex;
use crate::shm::{Kind, Region};
use crate::sync::AtomicU64;

/// How a container is made.
#[derive(Copy, Clone, Debug)]
pub struct ContainerOptions {
    /// Bytes of address space reserved (pages are committed when touched); the most the
    /// container can ever hold, control block included. Default 1 GiB; 64 KiB to 32 GiB.
    pub reserve: usize,
}

impl Default for ContainerOptions {
    fn default() -> ContainerOptions {
        ContainerOptions { reserve: 1 << 30 }
    }
}

/// An owned item, as reads return it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// A 64-bit int.
    Int(i64),
    /// A float.
    Float(f64),
    /// A str.
    Str(String),
    /// A bytes.
    Bytes(Vec<u8>),
}

impl Value {
    /// The borrowed form.
    pub fn as_item(&self) -> Item<'_> {
        match self {
            Value::None => Item::None,
            Value::Bool(b) => Item::Bool(*b),
            Value::Int(i) => Item::Int(*i),
            Value::Float(f) => Item::Float(*f),
            Value::Str(s) => Item::Str(s),
            Value::Bytes(b) => Item::Bytes(b),
        }
    }

    /// An owned copy of `item`.
    pub fn from_item(item: &Item<'_>) -> Value {
        match *item {
            Item::None => Value::None,
            Item::Bool(b) => Value::Bool(b),
            Item::Int(i) => Value::Int(i),
            Item::Float(f) => Value::Float(f),
            Item::Str(s) => Value::Str(s.into()),
            Item::Bytes(b) => Value::Bytes(b.to_vec()),
        }
    }

    /// The value of header `head` with the item's bytes `buf`.
    pub(crate) fn from_head(head: &Head, buf: Vec<u8>) -> Result<Value, Error> {
        Ok(match head.kind {
            ItemKind::Str => Value::Str(String::from_utf8(buf).map_err(|_| Error::BadObject)?),
            ItemKind::Bytes => Value::Bytes(buf),
            _ => Value::from_item(&head.scalar_item().ok_or(Error::BadObject)?),
        })
    }

    /// The item encoded at word `at`.
    fn at(w: &Words, at: u64) -> Result<Value, Error> {
        let head = w.item_head(at)?;
        let mut buf = std::vec![0u8; head.len];
        w.read_item(at, &mut buf)?;
        Value::from_head(&head, buf)
    }
}

/// Python's `repr()`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_item().write_repr(f)
    }
}

impl From<i64> for Item<'_> {
    fn from(v: i64) -> Self {
        Item::Int(v)
    }
}
impl From<f64> for Item<'_> {
    fn from(v: f64) -> Self {
        Item::Float(v)
    }
}
impl From<bool> for Item<'_> {
    fn from(v: bool) -> Self {
        Item::Bool(v)
    }
}
impl<'a> From<&'a str> for Item<'a> {
    fn from(v: &'a str) -> Self {
        Item::Str(v)
    }
}
impl<'a> From<&'a [u8]> for Item<'a> {
    fn from(v: &'a [u8]) -> Self {
        Item::Bytes(v)
    }
}
impl<'a> From<&'a Value> for Item<'a> {
    fn from(v: &'a Value) -> Self {
        v.as_item()
    }
}

/// Where the words start in the payload: after the robust mutex.
const LOCK_LEN: usize = 64;
// Not under loom: a model `RawMutex` is larger, and models use `ModelDict` (heap words), never a region.
#[cfg(not(loom))]
static_assertions::const_assert!(core::mem::size_of::<RawMutex>() <= LOCK_LEN);

const MAGIC_DICT: u64 = u64::from_le_bytes(*b"MPKDICT1");
const MAGIC_LIST: u64 = u64::from_le_bytes(*b"MPKLIST1");

/// One container's region and its views.
struct Container {
    region: Region,
    words: Words,
}

impl Container {
    fn create(kind: Kind, magic: u64, opts: &ContainerOptions, name: Option<&str>) -> Result<Container, Error> {
        if !(1 << 16..=1 << 35).contains(&opts.reserve) {
            return Err(Error::Inval); // offsets are 32-bit word indices: at most 32 GiB
        }
        let payload_len = opts.reserve / 8 * 8;
        let region = Region::build(kind, [payload_len as u64, 0, 0, 0], payload_len, name, |_| {})?;
        let c = Container::view(region)?;
        c.store().format(magic)?;
        Ok(c)
    }

    fn open(name: &str, kind: Kind, magic: u64) -> Result<Container, Error> {
        let region = Region::attach(name, kind)?;
        if region.layout()[0] != region.len() as u64 {
            return Err(Error::BadObject);
        }
        let c = Container::view(region)?;
        c.store().check(magic)?;
        Ok(c)
    }

    fn view(region: Region) -> Result<Container, Error> {
        let n = region.len().checked_sub(LOCK_LEN).ok_or(Error::BadObject)? / 8;
        let base = NonNull::new(region.as_ptr().wrapping_add(LOCK_LEN).cast::<AtomicU64>()).ok_or(Error::BadObject)?;
        // SAFETY: the payload is 64-byte aligned and `len` bytes long, so the `n` words after the
        // lock are in it; `words` never outlives `region` (same struct, dropped together), and
        // every access to them, in any process, goes through `Words` (atomics).
        let words = unsafe { Words::new(base, n as u64) };
        Ok(Container { region, words })
    }

    fn store(&self) -> Store<'_> {
        // SAFETY: the payload starts with a 64-byte slot for the mutex; zero bytes are an
        // unlocked `RawMutex` and the region outlives the borrow.
        let lock = unsafe { &*self.region.as_ptr().cast::<RawMutex>() };
        Store { lock, w: &self.words }
    }
}

fn check_item(item: &Item<'_>) -> Result<(), Error> {
    match item {
        Item::Str(s) if s.len() > MAX_ITEM_BYTES => Err(Error::MsgSize { needed: s.len() }),
        Item::Bytes(b) if b.len() > MAX_ITEM_BYTES => Err(Error::MsgSize { needed: b.len() }),
        _ => Ok(()),
    }
}

/// Python's `Manager().dict()`, in shared memory with no server (see [the module](super)).
///
/// Created before `fork`, it is shared with the children; named ones are opened by any process.
/// Iteration is in insertion order, as in Python 3.
/// ```
/// use mpkit::{SharedDict, Value};
///
/// let d = SharedDict::new()?;
/// d.set(1, "1")?;
/// d.set("2", 2)?;
/// d.set(0.25, mpkit::dict::item::Item::None)?;
/// assert_eq!(d.get(1.0)?, Some(Value::Str("1".into()))); // 1 and 1.0 are one key
/// assert_eq!(d.to_string(), "{1: '1', '2': 2, 0.25: None}");
/// # Ok::<(), mpkit::Error>(())
/// ```
pub struct SharedDict {
    c: Container,
}

impl SharedDict {
    /// An anonymous dict with the default reserve.
    pub fn new() -> Result<SharedDict, Error> {
        SharedDict::with_options(&ContainerOptions::default())
    }

    /// An anonymous dict.
    pub fn with_options(opts: &ContainerOptions) -> Result<SharedDict, Error> {
        Ok(SharedDict { c: Container::create(Kind::Dict, MAGIC_DICT, opts, None)? })
    }

    /// Creates the named dict `name` (`Exists` if taken).
    pub fn create_named(name: &str, opts: &ContainerOptions) -> Result<SharedDict, Error> {
        Ok(SharedDict { c: Container::create(Kind::Dict, MAGIC_DICT, opts, Some(name))? })
    }

    /// Opens the named dict `name`. `NotFound`, `BadObject` (not a dict, or corrupt), `Version`.
    pub fn open_named(name: &str) -> Result<SharedDict, Error> {
        Ok(SharedDict { c: Container::open(name, Kind::Dict, MAGIC_DICT)? })
    }

    /// Removes the name; processes that have the dict open keep it.
    pub fn unlink(name: &str) -> Result<(), Error> {
        Region::unlink(name)
    }

    /// Keeps the name after this handle is dropped (C's named objects live until unlinked).
    pub(crate) fn persist(&mut self) {
        self.c.region.persist();
    }

    /// `d[key] = value`.
    pub fn set<'k, 'v>(&self, key: impl Into<Item<'k>>, value: impl Into<Item<'v>>) -> Result<(), Error> {
        let (key, value) = (key.into(), value.into());
        check_item(&key)?;
        check_item(&value)?;
        self.c.store().write(|tx| map::write::set(tx, &key, &value)).map(drop)
    }

    /// `d.get(key)`: `None` when absent.
    pub fn get<'k>(&self, key: impl Into<Item<'k>>) -> Result<Option<Value>, Error> {
        let key = key.into();
        let mut small = [0u8; 64];
        let mut big = Vec::new();
        self.c.store().read(|w| {
            let Some(head) = map::read::get(w, &key, &mut small)? else { return Ok(None) };
            if head.len <= small.len() {
                return Value::from_head(&head, small[..head.len].to_vec()).map(Some);
            }
            big.resize(head.len, 0);
            match map::read::get(w, &key, &mut big)? {
                Some(h) if h.len == big.len() => Value::from_head(&h, core::mem::take(&mut big)).map(Some),
                _ => Err(Error::BadObject), // changed meanwhile: the read retries
            }
        })
    }

    /// C-style get: the value's header, its bytes copied into `buf` when they fit.
    pub(crate) fn get_into(&self, key: &Item<'_>, buf: &mut [u8]) -> Result<Option<Head>, Error> {
        self.c.store().read(|w| map::read::get(w, key, buf))
    }

    /// `key in d`.
    pub fn contains<'k>(&self, key: impl Into<Item<'k>>) -> Result<bool, Error> {
        let key = key.into();
        self.c.store().read(|w| Ok(map::read::get(w, &key, &mut [])?.is_some()))
    }

    /// `del d[key]`. `NotFound` if absent.
    pub fn del<'k>(&self, key: impl Into<Item<'k>>) -> Result<(), Error> {
        let key = key.into();
        self.c.store().write(|tx| map::write::del(tx, &key, None)).map(drop)
    }

    /// `d.pop(key)`. `NotFound` if absent.
    pub fn pop<'k>(&self, key: impl Into<Item<'k>>) -> Result<Value, Error> {
        let key = key.into();
        let mut buf = Vec::new();
        loop {
            match self.pop_into(&key, &mut buf) {
                Ok(head) => {
                    buf.truncate(head.len);
                    return Value::from_head(&head, buf);
                }
                Err(Error::MsgSize { needed }) => buf.resize(needed, 0),
                Err(e) => return Err(e),
            }
        }
    }

    /// C-style pop: the value's bytes into `buf`; too small → `MsgSize` and nothing removed.
    pub(crate) fn pop_into(&self, key: &Item<'_>, buf: &mut [u8]) -> Result<Head, Error> {
        self.c.store().write(|tx| map::write::del(tx, key, Some(buf)))
    }

    /// `d.setdefault(key, default)`: the value of `key`, after setting it to `default` if absent.
    pub fn setdefault<'k, 'v>(&self, key: impl Into<Item<'k>>, default: impl Into<Item<'v>>) -> Result<Value, Error> {
        let (key, default) = (key.into(), default.into());
        check_item(&key)?;
        check_item(&default)?;
        loop {
            if let Some(v) = self.get(key)? {
                return Ok(v);
            }
            let inserted = self.c.store().write(|tx| {
                if map::read::get(tx.w, &key, &mut [])?.is_some() {
                    return Ok(false); // set meanwhile by another process: read it
                }
                map::write::set(tx, &key, &default)
            })?;
            if inserted {
                return self.get(key)?.ok_or(Error::BadObject);
            }
        }
    }

    /// `len(d)`.
    pub fn len(&self) -> usize {
        map::read::len(&self.c.words) as usize
    }

    /// `len(d) == 0`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `d.clear()`: all the memory is given back.
    pub fn clear(&self) -> Result<(), Error> {
        self.c.store().write(map::write::clear)
    }

    /// The items in insertion order. The cursor survives concurrent changes: it yields each key
    /// present from its start until reached at most once, never one inserted after its start.
    pub fn iter(&self) -> DictIter<'_> {
        let end = map::read::stamp(&self.c.words).unwrap_or(0);
        DictIter { d: self, cursor: Cursor { from: 0, end } }
    }

    /// C-style cursor step: `(key, value)` heads with their bytes in the buffers, or `None`
    /// when done. The cursor moves only when both fit (`Head::len` ≤ its buffer's length);
    /// otherwise the heads say the sizes needed and the next call returns the same pair.
    pub(crate) fn next_into(
        &self,
        cursor: &mut Cursor,
        kbuf: &mut [u8],
        vbuf: &mut [u8],
    ) -> Result<Option<(Head, Head)>, Error> {
        let r = self.c.store().read(|w| {
            let Some((stamp, kat, vat)) = map::read::next(w, cursor.from, cursor.end)? else {
                return Ok(None);
            };
            Ok(Some((stamp, w.read_item(kat, kbuf)?, w.read_item(vat, vbuf)?)))
        })?;
        let Some((stamp, k, v)) = r else { return Ok(None) };
        if k.len <= kbuf.len() && v.len <= vbuf.len() {
            cursor.from = stamp + 1;
        }
        Ok(Some((k, v)))
    }

    /// A cursor at the start (C's `mpk_dict_iter_begin`).
    pub(crate) fn cursor(&self) -> Cursor {
        Cursor { from: 0, end: map::read::stamp(&self.c.words).unwrap_or(0) }
    }

    /// Python's `repr(d)`: `{1: '1', '2': 2}` (insertion order).
    pub fn repr(&self) -> Result<String, Error> {
        let mut out = String::from("{");
        for (i, kv) in self.iter().enumerate() {
            let (k, v) = kv?;
            if i > 0 {
                out.push_str(", ");
            }
            fmt::write(&mut out, format_args!("{k}: {v}")).map_err(|_| Error::NoMem)?;
        }
        out.push('}');
        Ok(out)
    }

    /// Operations finished for writers that died after committing them.
    pub fn repairs(&self) -> u64 {
        self.c.store().repairs()
    }

    /// Bytes of the region backed by memory now (what the dict costs the machine).
    pub fn memory_used(&self) -> usize {
        self.c.region.resident()
    }

    /// Bytes the allocator has handed out so far (its high-water mark), free blocks included.
    pub fn heap_bytes(&self) -> usize {
        self.c.store().heap_words() as usize * 8
    }
}

impl fmt::Display for SharedDict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repr().map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for SharedDict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedDict").field("len", &self.len()).field("region", &self.c.region).finish()
    }
}

/// A dict cursor: the first stamp not yet passed, and the stamp at its start.
#[derive(Copy, Clone, Debug, Default)]
pub(crate) struct Cursor {
    pub(crate) from: u64,
    pub(crate) end: u64,
}

/// Iterator over a [`SharedDict`]'s `(key, value)` pairs in insertion order.
pub struct DictIter<'a> {
    d: &'a SharedDict,
    cursor: Cursor,
}

impl Iterator for DictIter<'_> {
    type Item = Result<(Value, Value), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let cursor = self.cursor;
        let r = self.d.c.store().read(|w| {
            let Some((stamp, kat, vat)) = map::read::next(w, cursor.from, cursor.end)? else {
                return Ok(None);
            };
            Ok(Some((stamp, Value::at(w, kat)?, Value::at(w, vat)?)))
        });
        match r {
            Ok(Some((stamp, k, v))) => {
                self.cursor.from = stamp + 1;
                Some(Ok((k, v)))
            }
            Ok(None) => None,
            Err(e) => {
                self.cursor.from = self.cursor.end; // a broken region: stop
                Some(Err(e))
            }
        }
    }
}

/// Python's `Manager().list()`, in shared memory with no server (see [the module](super)).
/// ```
/// use mpkit::SharedList;
///
/// let l = SharedList::new()?;
/// l.extend(&(0..10).map(Into::into).collect::<Vec<_>>())?;
/// l.reverse()?;
/// assert_eq!(l.to_string(), "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]");
/// # Ok::<(), mpkit::Error>(())
/// ```
pub struct SharedList {
    c: Container,
}

impl SharedList {
    /// An anonymous list with the default reserve.
    pub fn new() -> Result<SharedList, Error> {
        SharedList::with_options(&ContainerOptions::default())
    }

    /// An anonymous list.
    pub fn with_options(opts: &ContainerOptions) -> Result<SharedList, Error> {
        Ok(SharedList { c: Container::create(Kind::List, MAGIC_LIST, opts, None)? })
    }

    /// Creates the named list `name` (`Exists` if taken).
    pub fn create_named(name: &str, opts: &ContainerOptions) -> Result<SharedList, Error> {
        Ok(SharedList { c: Container::create(Kind::List, MAGIC_LIST, opts, Some(name))? })
    }

    /// Opens the named list `name`. `NotFound`, `BadObject` (not a list, or corrupt), `Version`.
    pub fn open_named(name: &str) -> Result<SharedList, Error> {
        Ok(SharedList { c: Container::open(name, Kind::List, MAGIC_LIST)? })
    }

    /// Removes the name; processes that have the list open keep it.
    pub fn unlink(name: &str) -> Result<(), Error> {
        Region::unlink(name)
    }

    /// Keeps the name after this handle is dropped (C's named objects live until unlinked).
    pub(crate) fn persist(&mut self) {
        self.c.region.persist();
    }

    /// `l.append(item)`.
    pub fn append<'i>(&self, item: impl Into<Item<'i>>) -> Result<(), Error> {
        self.extend(&[item.into()])
    }

    /// `l.extend(items)`: all of them or, on `NoMem`, none.
    pub fn extend(&self, items: &[Item<'_>]) -> Result<(), Error> {
        items.iter().try_for_each(check_item)?;
        self.c.store().write(|tx| list::write::extend(tx, items))
    }

    /// `l.insert(index, item)` (an index past either end inserts at that end, as in Python).
    pub fn insert<'i>(&self, index: i64, item: impl Into<Item<'i>>) -> Result<(), Error> {
        let item = item.into();
        check_item(&item)?;
        self.c.store().write(|tx| list::write::insert(tx, index, &item))
    }

    /// `l[index]` (negative from the end). `Inval` out of range (Python's IndexError).
    pub fn get(&self, index: i64) -> Result<Value, Error> {
        let mut buf = Vec::new();
        loop {
            let head = self.get_into(index, &mut buf)?;
            if head.len <= buf.len() {
                buf.truncate(head.len);
                return Value::from_head(&head, buf);
            }
            buf.resize(head.len, 0);
        }
    }

    /// C-style get: the item's header, its bytes copied into `buf` when they fit.
    pub(crate) fn get_into(&self, index: i64, buf: &mut [u8]) -> Result<Head, Error> {
        self.c.store().read(|w| list::read::get(w, index, buf))
    }

    /// `l[index] = item`.
    pub fn set<'i>(&self, index: i64, item: impl Into<Item<'i>>) -> Result<(), Error> {
        let item = item.into();
        check_item(&item)?;
        self.c.store().write(|tx| list::write::set(tx, index, &item))
    }

    /// `l.pop(index)` (`-1`: the last).
    pub fn pop(&self, index: i64) -> Result<Value, Error> {
        let mut buf = Vec::new();
        loop {
            match self.pop_into(index, &mut buf) {
                Ok(head) => {
                    buf.truncate(head.len);
                    return Value::from_head(&head, buf);
                }
                Err(Error::MsgSize { needed }) => buf.resize(needed, 0),
                Err(e) => return Err(e),
            }
        }
    }

    /// C-style pop: the item's bytes into `buf`; too small → `MsgSize` and nothing removed.
    pub(crate) fn pop_into(&self, index: i64, buf: &mut [u8]) -> Result<Head, Error> {
        self.c.store().write(|tx| list::write::pop(tx, index, buf))
    }

    /// `l.index(item)`. `NotFound` (Python's ValueError) if absent.
    pub fn index<'i>(&self, item: impl Into<Item<'i>>) -> Result<usize, Error> {
        let item = item.into();
        self.c.store().read(|w| list::read::index(w, &item))?.map(|i| i as usize).ok_or(Error::NotFound)
    }

    /// `l.remove(item)`: the first equal item. `NotFound` if none.
    pub fn remove<'i>(&self, item: impl Into<Item<'i>>) -> Result<(), Error> {
        let item = item.into();
        self.c.store().write(|tx| list::write::remove(tx, &item))
    }

    /// `l.reverse()`.
    pub fn reverse(&self) -> Result<(), Error> {
        self.c.store().write(list::write::reverse)
    }

    /// `l.sort()`: stable, Python's order. `Inval` if two items cannot be compared (a str and
    /// an int, None with anything: Python's TypeError); then nothing changes.
    pub fn sort(&self) -> Result<(), Error> {
        self.c.store().write(list::write::sort)
    }

    /// `l.clear()`: all the memory is given back.
    pub fn clear(&self) -> Result<(), Error> {
        self.c.store().write(list::write::clear)
    }

    /// `len(l)`.
    pub fn len(&self) -> usize {
        list::read::len(&self.c.words) as usize
    }

    /// `len(l) == 0`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every item, in order, from one consistent state.
    pub fn to_vec(&self) -> Result<Vec<Value>, Error> {
        self.c.store().read(list::read::values)
    }

    /// Python's `repr(l)`: `[9, 8, 'a', None]`.
    pub fn repr(&self) -> Result<String, Error> {
        let mut out = String::from("[");
        for (i, v) in self.to_vec()?.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            fmt::write(&mut out, format_args!("{v}")).map_err(|_| Error::NoMem)?;
        }
        out.push(']');
        Ok(out)
    }

    /// Operations finished for writers that died after committing them.
    pub fn repairs(&self) -> u64 {
        self.c.store().repairs()
    }

    /// Bytes of the region backed by memory now.
    pub fn memory_used(&self) -> usize {
        self.c.region.resident()
    }
}

impl fmt::Display for SharedList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repr().map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for SharedList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedList").field("len", &self.len()).field("region", &self.c.region).finish()
    }
}

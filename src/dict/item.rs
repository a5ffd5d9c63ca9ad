//! Tagged items with Python 3 semantics: the keys and values of `SharedDict` and `SharedList`.
//!
//! Equality ([`Item::py_eq`]), hashing ([`Item::key_hash`]), ordering ([`Item::py_cmp`]) and
//! `repr()` ([`Item::write_repr`]) follow CPython 3, so that a dict or list in shared memory
//! behaves as Python's does. The deviations, each documented at its method:
//! - every NaN equals every NaN (one dict key), hashes to Python's old NaN hash 0 and sorts after
//!   `+inf`; CPython compares NaN objects by identity and hashes them by address;
//! - the `repr` of a `str` escapes only the C0 and C1 controls and DEL, not the other code points
//!   that CPython's Unicode table calls non-printable.
//!
//! Hashes carry no random seed: they live in shared memory and must agree across processes.

use core::cmp::Ordering;
use core::fmt::{self, Write};

/// The kind tag of an item; values are the C ABI's `MPK_ITEM_*`.
#[repr(u8)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// Python's `None`.
    None = 0,
    /// `bool`.
    Bool = 1,
    /// `int`, limited to `i64`.
    Int = 2,
    /// `float` (an IEEE double).
    Float = 3,
    /// `str`, as UTF-8.
    Str = 4,
    /// `bytes`.
    Bytes = 5,
}

impl ItemKind {
    /// The kind whose tag is `v`; `None` for a tag no kind has (a corrupt or foreign slot).
    pub fn from_u8(v: u8) -> Option<ItemKind> {
        Some(match v {
            0 => ItemKind::None,
            1 => ItemKind::Bool,
            2 => ItemKind::Int,
            3 => ItemKind::Float,
            4 => ItemKind::Str,
            5 => ItemKind::Bytes,
            _ => return None,
        })
    }
}

/// A key or value: what `SharedDict`/`SharedList` store. Borrowed: str/bytes point at the caller's bytes.
#[derive(Copy, Clone, Debug)]
pub enum Item<'a> {
    /// Python's `None`.
    None,
    /// `True` or `False`; equal to and hashed as the int 1 or 0.
    Bool(bool),
    /// An `int` that fits `i64`.
    Int(i64),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(&'a str),
    /// A `bytes`.
    Bytes(&'a [u8]),
}

/// A number with bool folded into int: the three numeric kinds compare as one class in Python.
#[derive(Copy, Clone)]
enum Num {
    Int(i64),
    Float(f64),
}

/// sys.hash_info.modulus: Python reduces every number modulo this Mersenne prime.
const MODULUS: u64 = (1 << 61) - 1;
/// sys.hash_info.inf.
const HASH_INF: i64 = 314_159;
/// 2^63 as a float: the first float above every i64.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;
/// The hash of `None` before mixing: any constant does, as None equals only None.
const NONE_HASH: u64 = 0x4e6f_6e65;
/// FNV-1a's offset basis, the seed for str.
const STR_SEED: u64 = 0xcbf2_9ce4_8422_2325;
/// Another seed for bytes: FNV-1a's steps are bijective in the state, so equal content with
/// different seeds never collides between a str and a bytes.
const BYTES_SEED: u64 = STR_SEED ^ 0x6279_7465_7300_0000;

impl<'a> Item<'a> {
    /// The kind tag of this item.
    pub fn kind(&self) -> ItemKind {
        match self {
            Item::None => ItemKind::None,
            Item::Bool(_) => ItemKind::Bool,
            Item::Int(_) => ItemKind::Int,
            Item::Float(_) => ItemKind::Float,
            Item::Str(_) => ItemKind::Str,
            Item::Bytes(_) => ItemKind::Bytes,
        }
    }

    fn num(&self) -> Option<Num> {
        match *self {
            Item::Bool(b) => Some(Num::Int(b as i64)),
            Item::Int(i) => Some(Num::Int(i)),
            Item::Float(f) => Some(Num::Float(f)),
            _ => None,
        }
    }

    /// Python's `==`: bool, int and float compare by numeric value across kinds
    /// (`1 == 1.0 == True`, `0 == False`, `-0.0 == 0`), exactly: an int and a float are compared
    /// without rounding either (`2**53 + 1 != 2.0**53`, `2**63 - 1 != 2.0**63`). str equals str
    /// and bytes equals bytes by content; a str never equals a bytes; None equals only None.
    ///
    /// Deviation: every NaN equals every NaN here, so all NaNs are one dict key. Python's dict
    /// finds a NaN key only by object identity, which shared memory has no notion of.
    pub fn py_eq(&self, other: &Item<'_>) -> bool {
        if let (Item::Int(a), Item::Int(b)) = (self, other) {
            return a == b; // the common case, without the exact int/float comparison
        }
        if let (Some(a), Some(b)) = (self.num(), other.num()) {
            return num_cmp(a, b) == Ordering::Equal;
        }
        match (self, other) {
            (Item::None, Item::None) => true,
            (Item::Str(a), Item::Str(b)) => a == b,
            (Item::Bytes(a), Item::Bytes(b)) => a == b,
            _ => false,
        }
    }

    /// Python's `hash()` of a number (sys.hash_info: modulus 2^61 − 1, inf 314159), before
    /// mixing; `None` for the other kinds. NaN hashes to 0 (Python before 3.10) as all NaNs are
    /// one key here.
    fn py_numeric_hash(&self) -> Option<i64> {
        Some(match self.num()? {
            Num::Int(n) => hash_int(n),
            Num::Float(f) => hash_float(f),
        })
    }

    /// A 64-bit hash, stable across processes and builds (no random seed: it lives in shared
    /// memory), with `a.py_eq(b)` ⇒ `a.key_hash() == b.key_hash()`.
    ///
    /// Numbers start from Python's numeric hash (so `1`, `1.0` and `True` agree; NaN → 0),
    /// str and bytes from FNV-1a with a seed each, None from a constant. Every kind then goes
    /// through the splitmix64 finalizer, a bijection, because Python's small ints hash to
    /// themselves and a power-of-two open-addressing table indexes by the low bits.
    pub fn key_hash(&self) -> u64 {
        let pre = match *self {
            Item::None => NONE_HASH,
            Item::Str(s) => fnv1a(STR_SEED, s.as_bytes()),
            Item::Bytes(b) => fnv1a(BYTES_SEED, b),
            _ => self.py_numeric_hash().unwrap_or(0) as u64,
        };
        splitmix64(pre)
    }

    /// Python 3's ordering as `list.sort` needs it: numbers (bool, int, float) with numbers,
    /// exactly (an int and a float without rounding either); str with str by code point (which
    /// is UTF-8 byte order); bytes with bytes lexicographically. Anything else (None with
    /// anything, str with bytes, a number with a str, ...) is `None`, where Python raises
    /// `TypeError`.
    ///
    /// Deviation: NaN takes part in a total order, after `+inf`, all NaNs equal. Python's `<`
    /// is false both ways with NaN, so its sort leaves an order that depends on the input; this
    /// one is deterministic.
    pub fn py_cmp(&self, other: &Item<'_>) -> Option<Ordering> {
        if let (Some(a), Some(b)) = (self.num(), other.num()) {
            return Some(num_cmp(a, b));
        }
        match (self, other) {
            (Item::Str(a), Item::Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (Item::Bytes(a), Item::Bytes(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// Python 3's `repr()` of the item, written to `out`: `None`, `True`, `-5`, `1e+16`, `0.25`,
    /// `'it\'s'`-style quoting of str and bytes (`"it's"`, `b'\x00'`).
    ///
    /// Deviation: in a str only the C0 controls, DEL and the C1 controls (U+0080–U+009F) are
    /// escaped (as `\xNN`). CPython also escapes the other code points its Unicode table calls
    /// non-printable (U+00A0, U+00AD, U+200B, surrogates, unassigned ones...); that table is not
    /// carried here, so those print as themselves.
    pub fn write_repr(&self, out: &mut dyn Write) -> fmt::Result {
        match *self {
            Item::None => out.write_str("None"),
            Item::Bool(true) => out.write_str("True"),
            Item::Bool(false) => out.write_str("False"),
            Item::Int(i) => write!(out, "{i}"),
            Item::Float(f) => write_float_repr(f, out),
            Item::Str(s) => write_str_repr(s, out),
            Item::Bytes(b) => write_bytes_repr(b, out),
        }
    }
}

/// Compares two numbers exactly, NaN last and equal to itself (see [`Item::py_cmp`]).
fn num_cmp(a: Num, b: Num) -> Ordering {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (Num::Int(x), Num::Float(y)) => int_float_cmp(x, y),
        (Num::Float(x), Num::Int(y)) => int_float_cmp(y, x).reverse(),
        (Num::Float(x), Num::Float(y)) => match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            // -0.0 == 0.0, as in Python.
            (false, false) if x < y => Ordering::Less,
            (false, false) if x > y => Ordering::Greater,
            (false, false) => Ordering::Equal,
        },
    }
}

/// Compares an i64 with a float without rounding: converting the int to a float would make
/// 2^53 + 1 equal 2^53, so the float's integral part is compared as an int instead.
fn int_float_cmp(i: i64, f: f64) -> Ordering {
    if f.is_nan() || f >= TWO_63 {
        return Ordering::Less;
    }
    if f < -TWO_63 {
        return Ordering::Greater;
    }
    // f is in [-2^63, 2^63): `as` truncates it exactly, and the integral value is a float too.
    let t = f as i64;
    i.cmp(&t).then_with(|| {
        let t = t as f64;
        if f > t {
            Ordering::Less
        } else if f < t {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    })
}

/// CPython's `long_hash` for an i64: the absolute value modulo 2^61 − 1 with the sign, -1 → -2
/// (-1 is CPython's error return).
fn hash_int(n: i64) -> i64 {
    let u = n.unsigned_abs();
    let r = if u < MODULUS { u } else { u % MODULUS } as i64; // most ints need no division
    let h = if n < 0 { -r } else { r };
    if h == -1 { -2 } else { h }
}

/// CPython's `_Py_HashDouble`: the float's exact value modulo 2^61 − 1, so that an integral
/// float hashes as the int it equals. NaN → 0 (all NaNs are one key here).
fn hash_float(v: f64) -> i64 {
    if v.is_nan() {
        return 0;
    }
    if v.is_infinite() {
        return if v > 0.0 { HASH_INF } else { -HASH_INF };
    }
    let (mut m, mut e) = frexp(v);
    let negative = m < 0.0;
    if negative {
        m = -m;
    }
    // Take the mantissa 28 bits at a time; multiplying by 2^28 mod P is a rotation of 61 bits.
    let mut x: u64 = 0;
    while m != 0.0 {
        x = ((x << 28) & MODULUS) | (x >> (61 - 28));
        m *= 268_435_456.0;
        e -= 28;
        let y = m as u64;
        m -= y as f64;
        x += y;
        if x >= MODULUS {
            x -= MODULUS;
        }
    }
    // Then multiply by 2^e mod P: a rotation by e mod 61.
    let e = (if e >= 0 { e % 61 } else { 60 - ((-1 - e) % 61) }) as u32;
    x = ((x << e) & MODULUS) | (x >> (61 - e));
    let h = (if negative { x.wrapping_neg() } else { x }) as i64;
    if h == -1 { -2 } else { h }
}

/// C's `frexp` for a finite float: `v = m × 2^e` with `0.5 <= |m| < 1` (m = 0, e = 0 for zero).
/// core has no frexp, so the exponent field is read directly.
fn frexp(v: f64) -> (f64, i32) {
    let bits = v.to_bits();
    let field = ((bits >> 52) & 0x7ff) as i32;
    if field == 0 {
        if v == 0.0 {
            return (v, 0);
        }
        // Subnormal: scale by 2^64 into the normal range first.
        let (m, e) = frexp(v * 18_446_744_073_709_551_616.0);
        return (m, e - 64);
    }
    (f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52)), field - 1022)
}

/// FNV-1a 64 over `bytes` from `seed`: simple and fixed, so it agrees across processes.
fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seed, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// One splitmix64 step: a bijection that spreads every input bit over the low bits.
fn splitmix64(h: u64) -> u64 {
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fixed buffer to capture core's float formatting without `alloc`.
struct Digits {
    buf: [u8; 40],
    len: usize,
}

impl Write for Digits {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.buf.get_mut(self.len..end).ok_or(fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn write_zeros(out: &mut dyn Write, n: usize) -> fmt::Result {
    (0..n).try_for_each(|_| out.write_char('0'))
}

/// Python's `repr(float)`: the shortest digits that round-trip (core's `{:e}` gives them),
/// positional for a decimal exponent in [-4, 16) with `.0` when integral, else scientific
/// with a signed exponent of at least two digits.
fn write_float_repr(v: f64, out: &mut dyn Write) -> fmt::Result {
    if v.is_nan() {
        return out.write_str("nan");
    }
    if v.is_sign_negative() {
        out.write_char('-')?;
    }
    if v.is_infinite() {
        return out.write_str("inf");
    }
    let mut d = Digits { buf: [0; 40], len: 0 };
    write!(d, "{:e}", v.abs())?;
    let s = core::str::from_utf8(&d.buf[..d.len]).map_err(|_| fmt::Error)?;
    let (mantissa, exp) = s.split_once('e').ok_or(fmt::Error)?;
    let exp: i32 = exp.parse().map_err(|_| fmt::Error)?;
    let (lead, rest) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // All significant digits, `d.ddd` without the point.
    let mut digits = Digits { buf: [0; 40], len: 0 };
    digits.write_str(lead)?;
    digits.write_str(rest)?;
    let digits = core::str::from_utf8(&digits.buf[..digits.len]).map_err(|_| fmt::Error)?;
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.write_str("0.")?;
            write_zeros(out, (-exp - 1) as usize)?;
            out.write_str(digits)
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.write_str(digits)?;
                write_zeros(out, int_len - digits.len())?;
                out.write_str(".0")
            } else {
                out.write_str(&digits[..int_len])?;
                out.write_char('.')?;
                out.write_str(&digits[int_len..])
            }
        }
    } else {
        out.write_str(&digits[..1])?;
        if digits.len() > 1 {
            out.write_char('.')?;
            out.write_str(&digits[1..])?;
        }
        let sign = if exp < 0 { '-' } else { '+' };
        write!(out, "e{sign}{:02}", exp.unsigned_abs())
    }
}

/// Python's quote choice for str and bytes reprs: single quotes unless the text holds `'` and
/// no `"`.
fn quote_for(has_single: bool, has_double: bool) -> char {
    if has_single && !has_double { '"' } else { '\'' }
}

/// The escape for one code point of a str or byte of a bytes, or `None` to print it as is.
/// `c` is a code point; bytes pass `high_is_control` so that every byte >= 0x7f is escaped.
fn write_escape(c: u32, quote: char, high_is_control: bool, out: &mut dyn Write) -> Result<bool, fmt::Error> {
    match c {
        0x5c => out.write_str("\\\\")?,
        0x09 => out.write_str("\\t")?,
        0x0a => out.write_str("\\n")?,
        0x0d => out.write_str("\\r")?,
        _ if c == quote as u32 => {
            out.write_char('\\')?;
            out.write_char(quote)?;
        }
        _ if c < 0x20 || c == 0x7f || (0x80..=0x9f).contains(&c) || (high_is_control && c > 0x7f) => {
            write!(out, "\\x{c:02x}")?
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Python's `repr(str)`; runs that need no escape are written whole.
fn write_str_repr(s: &str, out: &mut dyn Write) -> fmt::Result {
    let quote = quote_for(s.contains('\''), s.contains('"'));
    out.write_char(quote)?;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        // Escapes are all ASCII or C1, so checking before writing keeps the run intact.
        let needs = c == quote || matches!(c as u32, 0..=0x1f | 0x5c | 0x7f..=0x9f);
        if needs {
            out.write_str(&s[start..i])?;
            write_escape(c as u32, quote, false, out)?;
            start = i + c.len_utf8();
        }
    }
    out.write_str(&s[start..])?;
    out.write_char(quote)
}

/// Python's `repr(bytes)`: printable ASCII as is, the rest escaped.
fn write_bytes_repr(b: &[u8], out: &mut dyn Write) -> fmt::Result {
    let quote = quote_for(b.contains(&b'\''), b.contains(&b'"'));
    out.write_char('b')?;
    out.write_char(quote)?;
    for &byte in b {
        if !write_escape(byte as u32, quote, true, out)? {
            out.write_char(byte as char)?;
        }
    }
    out.write_char(quote)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::string::String;

    fn repr(item: Item<'_>) -> String {
        let mut s = String::new();
        item.write_repr(&mut s).unwrap();
        s
    }

    #[test]
    fn kind_tags_round_trip() {
        for v in 0..=255u8 {
            match ItemKind::from_u8(v) {
                Some(k) => assert_eq!(k as u8, v),
                None => assert!(v > 5),
            }
        }
        assert_eq!(Item::Str("x").kind(), ItemKind::Str);
        assert_eq!(Item::Bool(true).kind(), ItemKind::Bool);
        assert_eq!(Item::Float(1.0).kind(), ItemKind::Float);
    }

    #[test]
    fn repr_matches_python() {
        // Expected values from CPython 3.11's repr().
        let table: &[(Item<'_>, &str)] = &[
            (Item::None, "None"),
            (Item::Bool(true), "True"),
            (Item::Bool(false), "False"),
            (Item::Int(-5), "-5"),
            (Item::Int(0), "0"),
            (Item::Int(i64::MAX), "9223372036854775807"),
            (Item::Int(i64::MIN), "-9223372036854775808"),
            (Item::Float(1.0), "1.0"),
            (Item::Float(100.0), "100.0"),
            (Item::Float(1234567890123456.0), "1234567890123456.0"),
            (Item::Float(9999999999999998.0), "9999999999999998.0"),
            (Item::Float(1e16), "1e+16"),
            (Item::Float(1.5e16), "1.5e+16"),
            (Item::Float(123456789012345678.0), "1.2345678901234568e+17"),
            (Item::Float(1e-5), "1e-05"),
            (Item::Float(-1.5e-5), "-1.5e-05"),
            (Item::Float(1.234e-7), "1.234e-07"),
            (Item::Float(1e100), "1e+100"),
            (Item::Float(0.0001), "0.0001"),
            (Item::Float(0.00012345), "0.00012345"),
            (Item::Float(2.5e-4), "0.00025"),
            (Item::Float(0.25), "0.25"),
            (Item::Float(0.1), "0.1"),
            (Item::Float(1.0 / 3.0), "0.3333333333333333"),
            (Item::Float(0.0), "0.0"),
            (Item::Float(-0.0), "-0.0"),
            (Item::Float(5e-324), "5e-324"),
            (Item::Float(f64::MAX), "1.7976931348623157e+308"),
            (Item::Float(f64::INFINITY), "inf"),
            (Item::Float(f64::NEG_INFINITY), "-inf"),
            (Item::Float(f64::NAN), "nan"),
            (Item::Float(-f64::NAN), "nan"),
            (Item::Str(""), "''"),
            (Item::Str("it's"), "\"it's\""),
            (Item::Str("a'b\"c"), r#"'a\'b"c'"#),
            (Item::Str("\""), r#"'"'"#),
            (Item::Str("\x00"), r"'\x00'"),
            (Item::Str("\x1b"), r"'\x1b'"),
            (Item::Str("é"), "'é'"),
            (Item::Str("😀"), "'😀'"),
            (Item::Str("a\\b"), r"'a\\b'"),
            (Item::Str("\t\n\r"), r"'\t\n\r'"),
            (Item::Str("x\x7f\u{80}\u{9f}y"), r"'x\x7f\x80\x9fy'"),
            (Item::Bytes(b""), "b''"),
            (Item::Bytes(b"\x00\xff"), r"b'\x00\xff'"),
            (Item::Bytes(b"it's"), "b\"it's\""),
            (Item::Bytes(b"a\"b"), r#"b'a"b'"#),
            (Item::Bytes(b"a'b\"c"), r#"b'a\'b"c'"#),
            (Item::Bytes(b"\\\t\n\r\x7f ~"), r"b'\\\t\n\r\x7f ~'"),
        ];
        for (item, want) in table {
            assert_eq!(repr(*item), *want, "{item:?}");
        }
    }

    #[test]
    fn numeric_hash_matches_python() {
        // Expected values from CPython 3.11's hash().
        let table: &[(Item<'_>, i64)] = &[
            (Item::Float(1.5), 1152921504606846977),
            (Item::Int(-1), -2),
            (Item::Int(-2), -2),
            (Item::Float(-1.0), -2),
            (Item::Int(1 << 61), 1),
            (Item::Int((1 << 61) - 1), 0),
            (Item::Float(1e300), 1224995262755759164),
            (Item::Float(1e-300), 482449582752280463),
            (Item::Float(0.1), 230584300921369408),
            (Item::Float(-0.1), -230584300921369408),
            (Item::Float(123456.789), 1819310134279660096),
            (Item::Float(5e-324), 16777216),
            (Item::Float(3e-310), 1847129723797242297),
            (Item::Int(1 << 53), 9007199254740992),
            (Item::Int(i64::MAX), 3),
            (Item::Int(i64::MIN), -4),
            (Item::Float(-TWO_63), -4),
            (Item::Float(TWO_63), 4),
            (Item::Float(4611686018427387904.0), 2),
            (Item::Float(f64::INFINITY), 314159),
            (Item::Float(f64::NEG_INFINITY), -314159),
            (Item::Bool(true), 1),
            (Item::Float(-0.0), 0),
            (Item::Float(f64::NAN), 0),
        ];
        for (item, want) in table {
            assert_eq!(item.py_numeric_hash(), Some(*want), "{item:?}");
        }
        assert_eq!(Item::Str("1").py_numeric_hash(), None);
        assert_eq!(Item::None.py_numeric_hash(), None);
    }

    fn assert_same_key(a: Item<'_>, b: Item<'_>) {
        assert!(a.py_eq(&b) && b.py_eq(&a), "{a:?} == {b:?}");
        assert_eq!(a.key_hash(), b.key_hash(), "{a:?} and {b:?} hash alike");
    }

    fn assert_other_key(a: Item<'_>, b: Item<'_>) {
        assert!(!a.py_eq(&b) && !b.py_eq(&a), "{a:?} != {b:?}");
    }

    #[test]
    fn equal_items_hash_alike() {
        assert_same_key(Item::Int(1), Item::Float(1.0));
        assert_same_key(Item::Int(1), Item::Bool(true));
        assert_same_key(Item::Float(1.0), Item::Bool(true));
        assert_same_key(Item::Int(0), Item::Float(-0.0));
        assert_same_key(Item::Int(0), Item::Bool(false));
        assert_same_key(Item::Float(0.0), Item::Float(-0.0));
        assert_same_key(Item::Int(1 << 53), Item::Float(9007199254740992.0));
        assert_same_key(Item::Int(-(1 << 62)), Item::Float(-4611686018427387904.0));
        assert_same_key(Item::Int(i64::MIN), Item::Float(-TWO_63));
        assert_same_key(Item::Int(123_456_789_012), Item::Float(123_456_789_012.0));
        assert_same_key(Item::Float(f64::NAN), Item::Float(-f64::NAN));
        assert_same_key(Item::Float(f64::NAN), Item::Float(f64::from_bits(0x7ff0_0000_0000_0001)));
        assert_same_key(Item::Str("abc"), Item::Str("abc"));
        assert_same_key(Item::Bytes(b"abc"), Item::Bytes(b"abc"));
        assert_same_key(Item::None, Item::None);

        assert_other_key(Item::Int((1 << 53) + 1), Item::Float(9007199254740992.0));
        assert_other_key(Item::Int(i64::MAX), Item::Float(9.223372036854776e18));
        assert_other_key(Item::Int(1), Item::Float(1.5));
        assert_other_key(Item::Int(1), Item::Float(f64::NAN));
        assert_other_key(Item::Float(f64::INFINITY), Item::Int(i64::MAX));
        assert_other_key(Item::Str("abc"), Item::Bytes(b"abc"));
        assert_other_key(Item::Str(""), Item::Bytes(b""));
        assert_other_key(Item::Str("1"), Item::Int(1));
        assert_other_key(Item::None, Item::Int(0));
        assert_other_key(Item::None, Item::Str(""));
        assert_other_key(Item::Str("abc"), Item::Str("abd"));
        assert_ne!(Item::Str("abc").key_hash(), Item::Bytes(b"abc").key_hash());
        assert_ne!(Item::Str("").key_hash(), Item::Bytes(b"").key_hash());
    }

    #[test]
    fn integral_floats_hash_as_ints() {
        let mut n: i64 = 1;
        for _ in 0..62 {
            for v in [n, n - 1, n + 1, -n, -n + 1] {
                if (v as f64) as i64 == v {
                    assert_eq!(hash_float(v as f64), hash_int(v), "{v}");
                }
            }
            n *= 2;
        }
    }

    #[test]
    fn small_int_hashes_spread_in_low_bits() {
        let mut seen = [false; 1024];
        for i in 0..1024 {
            seen[(Item::Int(i).key_hash() & 1023) as usize] = true;
        }
        let distinct = seen.iter().filter(|&&s| s).count();
        assert!(distinct >= 500, "{distinct} distinct low-10-bit values");
    }

    #[test]
    fn ordering_matches_python() {
        use Ordering::*;
        let table: &[(Item<'_>, Item<'_>, Option<Ordering>)] = &[
            (Item::Int(1), Item::Float(1.5), Some(Less)),
            (Item::Float(1.5), Item::Int(1), Some(Greater)),
            (Item::Int(2), Item::Float(1.5), Some(Greater)),
            (Item::Int(-2), Item::Float(-1.5), Some(Less)),
            (Item::Int(-1), Item::Float(-1.5), Some(Greater)),
            (Item::Bool(true), Item::Float(1.0), Some(Equal)),
            (Item::Bool(false), Item::Bool(true), Some(Less)),
            (Item::Bool(true), Item::Int(2), Some(Less)),
            (Item::Int((1 << 53) + 1), Item::Float(9007199254740992.0), Some(Greater)),
            (Item::Int(i64::MAX), Item::Float(TWO_63), Some(Less)),
            (Item::Int(i64::MIN), Item::Float(-TWO_63), Some(Equal)),
            (Item::Int(i64::MIN), Item::Float(-1e300), Some(Greater)),
            (Item::Int(i64::MAX), Item::Float(f64::INFINITY), Some(Less)),
            (Item::Int(i64::MIN), Item::Float(f64::NEG_INFINITY), Some(Greater)),
            (Item::Float(-0.0), Item::Int(0), Some(Equal)),
            (Item::Float(f64::NAN), Item::Float(f64::INFINITY), Some(Greater)),
            (Item::Int(i64::MAX), Item::Float(f64::NAN), Some(Less)),
            (Item::Float(f64::NAN), Item::Float(-f64::NAN), Some(Equal)),
            (Item::Str("a"), Item::Str("b"), Some(Less)),
            (Item::Str("ab"), Item::Str("a"), Some(Greater)),
            (Item::Str("z"), Item::Str("é"), Some(Less)),
            (Item::Str("\u{ffff}"), Item::Str("😀"), Some(Less)),
            (Item::Str("x"), Item::Str("x"), Some(Equal)),
            (Item::Bytes(b"\x00"), Item::Bytes(b"\xff"), Some(Less)),
            (Item::Bytes(b"ab"), Item::Bytes(b"a"), Some(Greater)),
            (Item::Bytes(b""), Item::Bytes(b""), Some(Equal)),
            (Item::None, Item::None, None),
            (Item::None, Item::Int(0), None),
            (Item::Int(0), Item::None, None),
            (Item::Str("a"), Item::Bytes(b"a"), None),
            (Item::Int(1), Item::Str("1"), None),
            (Item::Bytes(b"1"), Item::Float(1.0), None),
        ];
        for (a, b, want) in table {
            assert_eq!(a.py_cmp(b), *want, "{a:?} vs {b:?}");
        }
    }
}

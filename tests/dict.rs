//! SharedDict and SharedList: Python's semantics, model tests against Rust's collections,
//! memory limits and reuse, named objects, and many processes at once.

mod common;

use common::{child, join};
use mpkit::dict::item::Item;
use mpkit::{ContainerOptions, Error, Region, SharedDict, SharedList, Value};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

#[test]
fn the_seed_example_runs_in_a_child() {
    let d = SharedDict::new().unwrap();
    let l = SharedList::new().unwrap();
    l.extend(&(0..10).map(Item::Int).collect::<Vec<_>>()).unwrap();
    let p = child(|| {
        d.set(1, "1").unwrap();
        d.set("2", 2).unwrap();
        d.set(0.25, Item::None).unwrap();
        l.reverse().unwrap();
        0
    });
    assert_eq!(join(&p), 0);
    assert_eq!(d.to_string(), "{1: '1', '2': 2, 0.25: None}");
    assert_eq!(l.to_string(), "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]");
}

#[test]
fn keys_compare_like_python() {
    let d = SharedDict::new().unwrap();
    d.set(1, "int").unwrap();
    d.set(1.0, "float").unwrap(); // the same key: the value changes, the key stays 1
    d.set(true, "bool").unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d.to_string(), "{1: 'bool'}");
    d.set("k", 1).unwrap();
    d.set(&b"k"[..], 2).unwrap(); // str and bytes never equal
    assert_eq!(d.len(), 3);
    assert_eq!(d.get("k").unwrap(), Some(Value::Int(1)));
    assert_eq!(d.get(&b"k"[..]).unwrap(), Some(Value::Int(2)));
    assert_eq!(d.get(2).unwrap(), None);
    assert!(d.contains(1.0).unwrap() && !d.contains(0).unwrap());
    d.set(0.0, Item::None).unwrap();
    assert!(d.contains(false).unwrap() && d.contains(-0.0).unwrap());
    assert_eq!(d.to_string(), "{1: 'bool', 'k': 1, b'k': 2, 0.0: None}");
}

#[test]
fn dict_operations_follow_python() {
    let d = SharedDict::new().unwrap();
    assert_eq!(d.del(1), Err(Error::NotFound));
    assert_eq!(d.pop(1), Err(Error::NotFound));
    assert_eq!(d.setdefault("a", 1).unwrap(), Value::Int(1));
    assert_eq!(d.setdefault("a", 2).unwrap(), Value::Int(1));
    let long = "x".repeat(100_000);
    d.set("long", long.as_str()).unwrap();
    assert_eq!(d.get("long").unwrap(), Some(s(&long)));
    assert_eq!(d.pop("long").unwrap(), s(&long));
    d.set("b", &b"\x00\xff"[..]).unwrap();
    d.set("c", f64::INFINITY).unwrap();
    assert_eq!(d.to_string(), "{'a': 1, 'b': b'\\x00\\xff', 'c': inf}");
    d.del("a").unwrap();
    d.set("a", 3).unwrap(); // re-inserted: now last
    assert_eq!(d.to_string(), "{'b': b'\\x00\\xff', 'c': inf, 'a': 3}");
    d.clear().unwrap();
    assert_eq!((d.len(), d.to_string()), (0, "{}".to_string()));
    d.set("after", "clear").unwrap();
    assert_eq!(d.to_string(), "{'after': 'clear'}");
}

/// Python's dict semantics by brute force: insertion-ordered pairs found by `py_eq`.
#[derive(Default)]
struct DictModel(Vec<(Value, Value)>);
impl DictModel {
    fn find(&self, k: &Item<'_>) -> Option<usize> {
        self.0.iter().position(|(mk, _)| mk.as_item().py_eq(k))
    }
}

fn random_item(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 => Value::Int(rng.below(40) as i64 - 20),
        1 => Value::Float((rng.below(20) as f64) / 2.0), // some equal ints
        2 => Value::Str("k".repeat(rng.below(40) as usize) + &rng.below(5).to_string()),
        3 => Value::Bytes(vec![rng.below(3) as u8; rng.below(20) as usize]),
        4 => Value::Bool(rng.below(2) == 0),
        _ => Value::None,
    }
}

#[test]
fn dict_matches_a_model_under_random_operations() {
    let d = SharedDict::with_options(&ContainerOptions { reserve: 64 << 20 }).unwrap();
    let mut m = DictModel::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for step in 0..20_000 {
        let k = random_item(&mut rng);
        let v = random_item(&mut rng);
        let (k, v) = (k.as_item(), v.as_item());
        match rng.below(10) {
            0..=4 => {
                d.set(k, v).unwrap();
                match m.find(&k) {
                    Some(i) => m.0[i].1 = Value::from_item(&v),
                    None => m.0.push((Value::from_item(&k), Value::from_item(&v))),
                }
            }
            5 | 6 => {
                let want = m.find(&k).map(|i| m.0.remove(i).1);
                assert_eq!(d.pop(k).ok(), want, "step {step}");
            }
            7 => {
                let want = m.find(&k).map(|i| m.0[i].1.clone());
                assert_eq!(d.get(k).unwrap(), want, "step {step}");
            }
            8 => {
                let before = m.find(&k).map(|i| m.0[i].1.clone());
                let got = d.setdefault(k, v).unwrap();
                let want = before.unwrap_or_else(|| {
                    m.0.push((Value::from_item(&k), Value::from_item(&v)));
                    Value::from_item(&v)
                });
                assert_eq!(got, want, "step {step}");
            }
            _ if rng.below(50) == 0 => {
                d.clear().unwrap();
                m.0.clear();
            }
            _ => {}
        }
        assert_eq!(d.len(), m.0.len(), "step {step}");
        if step % 500 == 0 {
            let got: Vec<_> = d.iter().map(Result::unwrap).collect();
            assert_eq!(got, m.0, "step {step}");
        }
    }
}

#[test]
fn list_matches_a_model_under_random_operations() {
    let l = SharedList::with_options(&ContainerOptions { reserve: 64 << 20 }).unwrap();
    let mut m: Vec<Value> = Vec::new();
    let mut rng = Rng(7);
    for step in 0..20_000 {
        let v = random_item(&mut rng);
        let n = m.len() as i64;
        let i = rng.below(2 * n as u64 + 3) as i64 - n - 1; // in range and out of it
        let in_range = -n <= i && i < n;
        let at = if i < 0 { (i + n) as usize } else { i as usize };
        match rng.below(12) {
            0..=3 => {
                l.append(v.as_item()).unwrap();
                m.push(v);
            }
            4 => {
                l.insert(i, v.as_item()).unwrap();
                let pos = if i < 0 { (i + n).max(0) } else { i.min(n) } as usize;
                m.insert(pos, v);
            }
            5 => match l.pop(i) {
                Ok(got) => assert_eq!(got, m.remove(at), "step {step}"),
                Err(e) => assert!(!in_range && e == Error::Inval, "step {step}: {e:?}"),
            },
            6 => match l.set(i, v.as_item()) {
                Ok(()) => m[at] = v,
                Err(e) => assert!(!in_range && e == Error::Inval, "step {step}"),
            },
            7 => {
                let want = m.iter().position(|x| x.as_item().py_eq(&v.as_item()));
                assert_eq!(l.index(v.as_item()).ok(), want, "step {step}");
                if let Some(p) = want {
                    l.remove(v.as_item()).unwrap();
                    m.remove(p);
                }
            }
            8 => {
                l.reverse().unwrap();
                m.reverse();
            }
            9 => {
                let nums = m.iter().all(|x| matches!(x, Value::Int(_) | Value::Float(_) | Value::Bool(_)));
                let strs =
                    m.iter().all(|x| matches!(x, Value::Str(_))) || m.iter().all(|x| matches!(x, Value::Bytes(_)));
                match l.sort() {
                    Ok(()) => {
                        assert!(nums || strs || m.len() < 2, "step {step}");
                        m.sort_by(|a, b| a.as_item().py_cmp(&b.as_item()).unwrap());
                    }
                    Err(e) => assert!(e == Error::Inval && !nums && !strs, "step {step}"),
                }
            }
            10 => {
                if in_range {
                    assert_eq!(l.get(i).unwrap(), m[at], "step {step}");
                } else {
                    assert_eq!(l.get(i), Err(Error::Inval));
                }
            }
            _ if rng.below(30) == 0 || m.len() > 300 => {
                l.clear().unwrap();
                m.clear();
            }
            _ => {
                // Keep sortable runs common: a list of ints only.
                l.clear().unwrap();
                m.clear();
                let items: Vec<_> = (0..rng.below(20)).map(|_| Value::Int(rng.below(9) as i64)).collect();
                l.extend(&items.iter().map(Value::as_item).collect::<Vec<_>>()).unwrap();
                m.extend(items);
            }
        }
        assert_eq!(l.len(), m.len(), "step {step}");
        if step % 200 == 0 {
            assert_eq!(l.to_vec().unwrap(), m, "step {step}");
        }
    }
}

#[test]
fn list_repr_and_sort_follow_python() {
    let l = SharedList::new().unwrap();
    for v in [Item::Int(3), Item::Float(1.5), Item::Bool(true), Item::Float(0.25), Item::Int(1)] {
        l.append(v).unwrap();
    }
    l.sort().unwrap(); // stable: True before the later 1
    assert_eq!(l.to_string(), "[0.25, True, 1, 1.5, 3]");
    l.append("x").unwrap();
    assert_eq!(l.sort(), Err(Error::Inval));
    assert_eq!(l.to_string(), "[0.25, True, 1, 1.5, 3, 'x']", "a failed sort changes nothing");
    assert_eq!(l.get(-1).unwrap(), s("x"));
    assert_eq!(l.index(1.0).unwrap(), 1); // True == 1.0
    assert_eq!(l.remove(42), Err(Error::NotFound));
    l.clear().unwrap();
    for w in ["pear", "apple", "fig"] {
        l.append(w).unwrap();
    }
    l.sort().unwrap();
    assert_eq!(l.to_string(), "['apple', 'fig', 'pear']");
    let single = SharedList::new().unwrap();
    single.append(Item::None).unwrap();
    single.sort().unwrap(); // one item: nothing to compare, as in Python
}

#[test]
fn a_full_container_fails_with_nomem_and_stays_usable() {
    let d = SharedDict::with_options(&ContainerOptions { reserve: 1 << 20 }).unwrap();
    let mut n = 0i64;
    let err = loop {
        match d.set(n, "v".repeat(100).as_str()) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err, Error::NoMem);
    assert!(n > 1000, "only {n} entries fit in 1 MiB");
    assert_eq!(d.len(), n as usize);
    assert_eq!(d.get(n - 1).unwrap(), Some(s(&"v".repeat(100))));
    d.del(0).unwrap();
    assert_eq!(d.len(), n as usize - 1);
    d.clear().unwrap();
    for k in 0..n {
        d.set(k, "v".repeat(100).as_str()).unwrap();
    }
    assert_eq!(d.len(), n as usize);
    // Freed space is reused: churn through 50 times the container's size.
    d.clear().unwrap();
    for k in 0..50 * n {
        d.set(k, "v".repeat(100).as_str()).unwrap();
        if k >= 500 {
            d.del(k - 500).unwrap();
        }
    }
    let l = SharedList::with_options(&ContainerOptions { reserve: 1 << 20 }).unwrap();
    for k in 0..50_000 {
        l.append("x".repeat(k % 300).as_str()).unwrap();
        if k % 3 != 0 {
            l.pop(0).unwrap();
        }
        if l.len() > 1000 {
            l.clear().unwrap();
        }
    }
}

#[test]
fn the_cursor_survives_concurrent_changes_and_never_repeats() {
    let d = SharedDict::new().unwrap();
    for k in 0..100 {
        d.set(k, k).unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    let mut it = d.iter();
    for step in 0..100 {
        let Some(kv) = it.next() else { break };
        let (k, _) = kv.unwrap();
        let Value::Int(k) = k else { panic!() };
        assert!(seen.insert(k), "key {k} repeated");
        // Churn: delete and re-insert keys ahead and behind, grow the table.
        d.del((k + 7) % 100).ok();
        d.set((k + 7) % 100, -1).unwrap();
        d.set(1000 + step, 0).unwrap();
    }
    assert!(seen.iter().all(|&k| k < 100), "keys inserted after the start are not yielded");
}

#[test]
fn named_dicts_and_lists_open_elsewhere_and_refuse_foreign_objects() {
    let name = format!("/mpkit-dict-test-{}", std::process::id());
    let d = SharedDict::create_named(&name, &ContainerOptions { reserve: 1 << 20 }).unwrap();
    d.set("x", 1).unwrap();
    let other = SharedDict::open_named(&name).unwrap();
    assert_eq!(other.get("x").unwrap(), Some(Value::Int(1)));
    assert_eq!(SharedList::open_named(&name).err(), Some(Error::BadObject));
    assert!(matches!(SharedDict::create_named(&name, &ContainerOptions::default()), Err(Error::Exists)));
    SharedDict::unlink(&name).unwrap();
    assert_eq!(SharedDict::open_named(&name).err(), Some(Error::NotFound));
    let raw = format!("/mpkit-dict-raw-{}", std::process::id());
    let _r = Region::create_named(&raw, 1 << 16).unwrap();
    assert_eq!(SharedDict::open_named(&raw).err(), Some(Error::BadObject));
    Region::unlink(&raw).unwrap();
    assert_eq!(SharedDict::with_options(&ContainerOptions { reserve: 100 }).err(), Some(Error::Inval));
}

#[test]
fn four_processes_write_and_read_at_once() {
    let d = SharedDict::new().unwrap();
    let l = SharedList::new().unwrap();
    const PER: i64 = 5000;
    let kids: Vec<_> = (0..4i64)
        .map(|p| {
            let (d, l) = (&d, &l);
            child(move || {
                for i in 0..PER {
                    let key = format!("p{p}-{i}");
                    d.set(key.as_str(), p * PER + i).unwrap();
                    l.append(p * PER + i).unwrap();
                    // Readers take no lock: read back a key of this process and one of another's.
                    if d.get(key.as_str()).unwrap() != Some(Value::Int(p * PER + i)) {
                        return 1;
                    }
                    let _ = d.get(format!("p{}-{i}", (p + 1) % 4).as_str()).unwrap();
                    if i % 2 == 0 {
                        d.del(key.as_str()).unwrap();
                    }
                }
                0
            })
        })
        .collect();
    for k in &kids {
        assert_eq!(join(k), 0);
    }
    assert_eq!(d.len(), 4 * PER as usize / 2);
    for p in 0..4 {
        for i in (1..PER).step_by(2) {
            assert_eq!(d.get(format!("p{p}-{i}").as_str()).unwrap(), Some(Value::Int(p * PER + i)));
        }
    }
    let mut all: Vec<i64> =
        l.to_vec().unwrap().into_iter().map(|v| if let Value::Int(i) = v { i } else { -1 }).collect();
    all.sort();
    assert_eq!(all, (0..4 * PER).collect::<Vec<_>>(), "nothing lost, nothing duplicated");
}

#[test]
fn a_corrupt_region_gives_errors_never_a_crash() {
    // Garbage over everything after the lock (the control block, tables, blocks): every call
    // returns a value or an error; nothing reads or writes outside the mapping.
    let mut rng = Rng(0xdead_beef);
    let mut opened = 0;
    for round in 0..200 {
        let name = format!("/mpkit-dict-corrupt-{}-{round}", std::process::id());
        let d = SharedDict::create_named(&name, &ContainerOptions { reserve: 1 << 16 }).unwrap();
        for k in 0..50 {
            d.set(k, "v".repeat(k as usize).as_str()).unwrap();
        }
        let path = format!("/dev/shm{name}");
        let mut bytes = std::fs::read(&path).unwrap();
        // The region header (64 bytes) and the lock (64) stay; some words of the rest change.
        for _ in 0..1 + rng.below(64) {
            let at = 128 + 8 * rng.below(((bytes.len() - 128) / 8) as u64) as usize;
            let v = match rng.below(3) {
                0 => rng.next(),
                1 => rng.below(1 << 16),
                _ => 0,
            };
            bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(d) = SharedDict::open_named(&name) {
            opened += 1;
            for k in 0..60 {
                let _ = d.get(k);
                let _ = d.set(k, k);
                let _ = d.del(k + 1);
            }
            let _ = d.iter().take(1000).count();
            let _ = d.repr();
            let _ = d.clear();
        }
        drop(d); // the creator's handle removes the name
    }
    assert!(opened >= 100, "only {opened} of 200 corrupted dicts opened: the test exercises too little");
}

#[test]
fn a_corrupt_list_gives_errors_never_a_crash() {
    let mut rng = Rng(0xfeed_f00d);
    let mut opened = 0;
    for round in 0..200 {
        let name = format!("/mpkit-list-corrupt-{}-{round}", std::process::id());
        let l = SharedList::create_named(&name, &ContainerOptions { reserve: 1 << 16 }).unwrap();
        for k in 0..50 {
            l.append("v".repeat(k).as_str()).unwrap();
            l.append(k as i64).unwrap();
        }
        let path = format!("/dev/shm{name}");
        let mut bytes = std::fs::read(&path).unwrap();
        for _ in 0..1 + rng.below(64) {
            let at = 128 + 8 * rng.below(((bytes.len() - 128) / 8) as u64) as usize;
            let v = if rng.below(2) == 0 { rng.next() } else { rng.below(1 << 16) };
            bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(l) = SharedList::open_named(&name) {
            opened += 1;
            for i in -5..120 {
                let _ = l.get(i);
                let _ = l.set(i, i);
            }
            let _ = (l.index(3), l.remove("vvv"), l.insert(7, "x"), l.pop(-1), l.pop(0));
            let _ = (l.reverse(), l.sort(), l.to_vec(), l.repr(), l.extend(&[Item::Int(1)]));
            let _ = l.clear();
        }
        drop(l);
    }
    assert!(opened >= 100, "only {opened} of 200 corrupted lists opened");
}

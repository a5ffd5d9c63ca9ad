//! Criterion: SharedDict get, set (overwrite in place and with a new block), insert into a
//! growing table, string keys; SharedList get, append, reverse of 10 (the seed's `l.reverse()`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mpkit::dict::item::Item;
use mpkit::{ContainerOptions, SharedDict, SharedList};

fn dict(c: &mut Criterion) {
    let d = SharedDict::with_options(&ContainerOptions { reserve: 256 << 20 }).unwrap();
    for k in 0..64 {
        d.set(k, k).unwrap();
    }
    let mut i = 0i64;
    c.bench_function("dict/get_int_64_keys", |b| {
        b.iter(|| {
            i += 1;
            black_box(d.get(i & 63).unwrap())
        })
    });
    c.bench_function("dict/set_int_in_place", |b| {
        b.iter(|| {
            i += 1;
            d.set(i & 63, i).unwrap()
        })
    });
    c.bench_function("dict/set_str_new_block", |b| {
        b.iter(|| {
            i += 1;
            d.set(i & 63, if i & 1 == 0 { "short" } else { "a longer value than the other one" }).unwrap()
        })
    });
    let keys: Vec<String> = (0..10_000).map(|k| format!("key-{k:012}")).collect();
    for k in &keys {
        d.set(k.as_str(), 1).unwrap();
    }
    c.bench_function("dict/get_str_key_10k", |b| {
        b.iter(|| {
            i += 1;
            black_box(d.get(keys[(i as usize * 7919) % keys.len()].as_str()).unwrap())
        })
    });
    c.bench_function("dict/insert_4096_then_clear", |b| {
        b.iter(|| {
            for k in 0..4096 {
                d.set(k, k).unwrap();
            }
            d.clear().unwrap();
        })
    });
}

fn list(c: &mut Criterion) {
    let l = SharedList::new().unwrap();
    l.extend(&(0..10).map(Item::Int).collect::<Vec<_>>()).unwrap();
    c.bench_function("list/reverse_10", |b| b.iter(|| l.reverse().unwrap()));
    let mut i = 0i64;
    c.bench_function("list/get", |b| {
        b.iter(|| {
            i += 1;
            black_box(l.get(i % 10).unwrap())
        })
    });
    c.bench_function("list/append_4096_then_clear", |b| {
        b.iter(|| {
            for k in 0..4096 {
                l.append(k).unwrap();
            }
            l.clear().unwrap();
        })
    });
}

criterion_group!(benches, dict, list);
criterion_main!(benches);

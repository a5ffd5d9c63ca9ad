// Checks mpkit.hpp beyond the tutorial examples: that it compiles (included twice, so its
// include guard works), that its owners are move-only and nothrow-movable, that mpk::Mutex is
// Lockable and TimedLockable for the standard guards, and, at run time, the behaviour the
// header documents: errors and their category, owner death, timeouts, end-of-stream, child
// exit codes, pipes, named objects and the pool. Prints one line per part; every wait is bounded.
#include "mpkit.hpp"
#include "mpkit.hpp" // twice on purpose: the include guard

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;

// ---- compile-time checks ----------------------------------------------------------------------

template <class T>
constexpr bool move_only_v = !std::is_copy_constructible_v<T> && !std::is_copy_assignable_v<T> &&
                             std::is_nothrow_move_constructible_v<T> && std::is_nothrow_move_assignable_v<T> &&
                             std::is_nothrow_destructible_v<T>;

static_assert(move_only_v<mpk::Process>);
static_assert(move_only_v<mpk::Mutex>);
static_assert(move_only_v<mpk::Queue<int>>);
static_assert(move_only_v<mpk::Connection>);
static_assert(move_only_v<mpk::SharedArray<double>>);
static_assert(move_only_v<mpk::Value<std::int64_t>>);
static_assert(move_only_v<mpk::Pool>);
static_assert(move_only_v<mpk::Dict>);
static_assert(move_only_v<mpk::List>);
static_assert(std::is_copy_constructible_v<mpk::Item> && std::is_nothrow_move_constructible_v<mpk::Item>);
static_assert(move_only_v<mpk::AsyncResult<int>>);
static_assert(std::is_nothrow_move_constructible_v<mpk::Pipe>);
static_assert(std::is_trivially_copyable_v<mpk::MutexRef>);
static_assert(std::is_error_code_enum_v<mpk::errc>);
static_assert(std::is_base_of_v<std::system_error, mpk::owner_dead>);
static_assert(std::is_base_of_v<std::system_error, mpk::task_error>);
static_assert(noexcept(std::declval<mpk::Mutex&>().unlock()));
static_assert(mpk::is_shared_element_v<std::int8_t> && mpk::is_shared_element_v<std::uint64_t> &&
              mpk::is_shared_element_v<long long> && mpk::is_shared_element_v<float> &&
              !mpk::is_shared_element_v<bool> && !mpk::is_shared_element_v<long double>);

// The standard guards instantiate with both mutex types.
template class std::lock_guard<mpk::Mutex>;
template class std::unique_lock<mpk::Mutex>;
template class std::lock_guard<mpk::MutexRef>;
template class std::unique_lock<mpk::MutexRef>;

// ---- helpers ----------------------------------------------------------------------------------

[[noreturn]] static void fail(int line, const char* what) {
    throw std::logic_error("header_check.cpp:" + std::to_string(line) + ": check failed: " + what);
}
#define CHECK(c)                          \
    do {                                  \
        if (!(c)) fail(__LINE__, #c);     \
    } while (0)

// Runs `f`, which must throw std::system_error with `code`.
template <class F>
static void expect_error(int line, F&& f, mpk::errc code) {
    try {
        f();
    } catch (const std::system_error& e) {
        if (e.code() != code) fail(line, e.what());
        return;
    }
    fail(line, "no exception");
}
#define EXPECT_ERROR(code, ...) expect_error(__LINE__, [&] { __VA_ARGS__; }, code)

static void say(const char* part) { std::cout << part << " ok" << std::endl; }

// ---- parts ------------------------------------------------------------------------------------

static void errors() {
    const std::error_code ec = mpk::errc::timeout;
    CHECK(std::string(ec.category().name()) == "mpk");
    CHECK(&ec.category() == &mpk::category());
    CHECK(ec.value() == MPK_ERR_TIMEOUT && ec.value() < 0);
    CHECK(ec.message() == mpk_strerror(MPK_ERR_TIMEOUT));
    CHECK(ec == std::errc::timed_out);
    CHECK(std::error_code(mpk::errc::owner_dead) == std::errc::owner_dead);
    CHECK(std::error_code(mpk::errc::closed) != std::errc::timed_out);
    EXPECT_ERROR(mpk::errc::invalid_argument, mpk::Queue<int> q(std::size_t{0}));
    try {
        mpk::SharedArray<double> a(std::size_t{0});
        fail(__LINE__, "no exception");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::invalid_argument); // the portable condition matches too
        CHECK(std::string(e.what()).find(mpk_strerror(MPK_ERR_INVAL)) != std::string::npos);
    }
    say("errors");
}

static void mutex() {
    mpk::Mutex m;
    {
        std::lock_guard<mpk::Mutex> g(m);
        EXPECT_ERROR(mpk::errc::state, m.lock()); // relocking is refused, not a deadlock
    }
    {
        std::unique_lock<mpk::Mutex> lk(m, std::defer_lock);
        CHECK(lk.try_lock_for(1s));
        lk.unlock();
        CHECK(lk.try_lock_until(std::chrono::steady_clock::now() + 1s));
    }
    mpk::Mutex other;
    { std::scoped_lock both(m, other); }

    // A live holder: every timed attempt times out, then the lock is free again.
    mpk::Queue<int> to_parent(4), to_child(4);
    mpk::Process holder([&] {
        std::lock_guard<mpk::Mutex> g(m);
        to_parent.put(1);
        return to_child.try_get(30s) ? 0 : 2;
    });
    CHECK(to_parent.try_get(30s));
    CHECK(!m.try_lock());
    CHECK(!m.try_lock_for(20ms));
    CHECK(!m.try_lock_until(std::chrono::system_clock::now() + 20ms));
    CHECK(m.lock_checked(mpk::nowait) == mpk::LockResult::timed_out);
    to_child.put(1);
    CHECK(m.try_lock_for(30s));
    m.unlock();
    CHECK(holder.join() == 0);

    // Owner death, reported in-band by lock_checked.
    CHECK(mpk::Process([&] { m.lock(); /* exits holding it */ }).join() == 0);
    CHECK(m.lock_checked(30s) == mpk::LockResult::owner_dead);
    m.consistent(); // "repaired"
    m.unlock();

    // Owner death thrown by lock() after acquiring: the catcher holds the lock.
    CHECK(mpk::Process([&] { m.lock(); }).join() == 0);
    bool caught = false;
    try {
        std::lock_guard<mpk::Mutex> g(m);
    } catch (const mpk::owner_dead& e) {
        caught = true;
        CHECK(e.code() == mpk::errc::owner_dead);
        CHECK(e.mutex() == m.ref());
        mpk::MutexRef held = e.mutex();
        held.consistent();
        std::lock_guard<mpk::MutexRef> g(held, std::adopt_lock); // unlocks at the end of the scope
    }
    CHECK(caught);
    CHECK(m.lock_checked(mpk::nowait) == mpk::LockResult::acquired);
    m.unlock();

    // Released without consistent(): unusable for everyone.
    CHECK(mpk::Process([&] { m.lock(); }).join() == 0);
    CHECK(m.lock_checked(30s) == mpk::LockResult::owner_dead);
    m.unlock();
    EXPECT_ERROR(mpk::errc::not_recoverable, m.lock());
    CHECK(m.unlock_checked() == MPK_ERR_NOT_OWNER);
    say("mutex");
}

static void process() {
    CHECK(mpk::Process([] { return 7; }).join() == 7);
    CHECK(mpk::Process([] {}).join() == 0);
    CHECK(mpk::Process([]() -> int { throw std::runtime_error("in the child"); }).join() == 1);

    // Arguments are the caller's objects as they were at the fork, by reference.
    int x = 1;
    CHECK(mpk::Process([](int& v) { return ++v; }, x).join() == 2);
    CHECK(x == 1); // the child changed its own copy

    mpk::Process sleeper([] { std::this_thread::sleep_for(30s); });
    CHECK(sleeper.pid() > 0 && sleeper.pid() != getpid());
    CHECK(sleeper.sentinel() >= 0);
    CHECK(!sleeper.try_join(10ms));
    CHECK(!sleeper.exitcode());
    CHECK(sleeper.is_alive());
    sleeper.kill();
    CHECK(sleeper.join() == -9);
    CHECK(sleeper.exitcode() == -9);
    CHECK(!sleeper.is_alive());

    mpk::Process moved = std::move(sleeper); // the handle moves; the moved-from one holds nothing
    CHECK(moved.exitcode() == -9);
    CHECK(sleeper.native_handle() == nullptr);
    say("process");
}

static void queue() {
    mpk::Queue<std::int64_t> q(2);
    CHECK(q.capacity() == 2 && q.empty());
    CHECK(!q.try_get());
    CHECK(!q.try_get(10ms));
    q.put(1);
    CHECK(q.try_put(2, 10ms));
    CHECK(!q.try_put(3));       // full
    CHECK(!q.try_put(3, 10ms)); // still full
    CHECK(q.size() == 2);
    CHECK(q.get() == 1);
    CHECK(q.try_get(1s) == 2);
    q.task_done();
    q.task_done();
    CHECK(q.try_join(1s));

    q.put(4);
    q.close();
    EXPECT_ERROR(mpk::errc::closed, q.put(5));
    CHECK(q.get() == 4); // drained first
    EXPECT_ERROR(mpk::errc::closed, (void)q.get());
    EXPECT_ERROR(mpk::errc::closed, (void)q.try_get());

    // Several producers in other processes.
    struct Item {
        std::int32_t producer;
        std::int32_t n;
    };
    mpk::Queue<Item> items(8);
    std::vector<mpk::Process> producers;
    for (std::int32_t p = 0; p < 3; p++)
        producers.emplace_back(
            [&items](std::int32_t id) {
                for (std::int32_t n = 0; n < 100; n++) items.put(Item{id, n});
            },
            p);
    std::int32_t next[3] = {0, 0, 0};
    for (int k = 0; k < 300; k++) {
        const std::optional<Item> it = items.try_get(30s);
        CHECK(it);
        CHECK(it->n == next[it->producer]++); // each producer's items in order
    }
    for (mpk::Process& p : producers) CHECK(p.join() == 0);
    say("queue");
}

struct Point {
    double x, y;
};

static void pipe() {
    auto [a, b] = mpk::Pipe(4096);
    CHECK(!a.poll());
    CHECK(!a.try_recv<Point>(10ms));
    b.send(Point{3, 4});
    CHECK(a.poll(1s));
    const Point p = a.recv<Point>();
    CHECK(p.x == 3 && p.y == 4);
    a.send_bytes("duplex");
    CHECK(b.recv_bytes() == "duplex");
    a.send_bytes("");
    CHECK(b.try_recv_bytes(1s) == std::string());

    // A message larger than the ring and than recv_bytes' first buffer, from another process.
    std::string big(100000, '\0');
    for (std::size_t i = 0; i < big.size(); i++) big[i] = static_cast<char>('a' + i % 26);
    mpk::Process sender([&] {
        a.close();
        b.send_bytes(big);
        b.close();
    });
    b.close();
    CHECK(a.try_recv_bytes(30s) == big);
    CHECK(a.poll(30s)); // end-of-file: a receive would not wait...
    EXPECT_ERROR(mpk::errc::closed, (void)a.recv_bytes()); // ...it throws
    CHECK(sender.join() == 0);

    // A sized receive that does not fit leaves the message there.
    mpk::Pipe one_way(4096, false); // first receives, second sends
    one_way.second.send_bytes("0123456789");
    char small[4];
    EXPECT_ERROR(mpk::errc::message_size, (void)one_way.first.recv_bytes_into(small, sizeof small));
    char buf[16];
    CHECK(one_way.first.recv_bytes_into(buf, sizeof buf) == 10 && std::memcmp(buf, "0123456789", 10) == 0);
    EXPECT_ERROR(mpk::errc::state, one_way.first.send_bytes("x")); // receive-only end
    say("pipe");
}

// Removes a name at the end of a scope, whatever happens.
struct Unlinker {
    std::string name;
    ~Unlinker() { (void)mpk_shm_unlink(name.c_str()); }
};

static void arrays() {
    mpk::SharedArray<std::uint16_t> a{1, 2, 3};
    CHECK(a.size() == 3 && a[2] == 3 && a.at(0) == 1);
    EXPECT_ERROR(mpk::errc::invalid_argument, mpk::SharedArray<float>(nullptr, 0));
    bool out_of_range = false;
    try {
        (void)a.at(3);
    } catch (const std::out_of_range&) {
        out_of_range = true;
    }
    CHECK(out_of_range);
    const std::vector<double> init{0.5, 1.5};
    mpk::SharedArray<double> d(init);
    CHECK(d[0] == 0.5 && d[1] == 1.5);

    mpk::Value<std::int64_t> counter;
    CHECK(counter.get() == 0);
    std::vector<mpk::Process> adders;
    for (int k = 0; k < 4; k++)
        adders.emplace_back([&] {
            for (int n = 0; n < 1000; n++) {
                mpk::MutexRef m = counter.mutex();
                std::lock_guard<mpk::MutexRef> g(m);
                ++*counter.data();
            }
        });
    for (mpk::Process& p : adders) CHECK(p.join() == 0);
    CHECK(counter.get() == 4000);
    counter.set(-1);
    CHECK(*counter.data() == -1);

    const Unlinker name{"/mpkit-hpp-check-" + std::to_string(getpid())};
    const std::int32_t values[2] = {10, 20};
    mpk::SharedArray<std::int32_t> named = mpk::SharedArray<std::int32_t>::create_named(name.name, 2, values);
    EXPECT_ERROR(mpk::errc::exists, mpk::SharedArray<std::int32_t>::create_named(name.name, 2));
    mpk::SharedArray<std::int32_t> opened = mpk::SharedArray<std::int32_t>::open_named(name.name);
    CHECK(opened.size() == 2 && opened[1] == 20);
    opened[1] = 21;
    CHECK(named[1] == 21); // one object, two mappings
    EXPECT_ERROR(mpk::errc::bad_object, mpk::SharedArray<float>::open_named(name.name));
    mpk::unlink(name.name);
    EXPECT_ERROR(mpk::errc::not_found, mpk::unlink(name.name));
    say("arrays");
}

static void dict() {
    CHECK(mpk::Item().is_none() && mpk::Item(nullptr).is_none());
    CHECK(mpk::Item(true).as_bool() && mpk::Item(7u).as_int() == 7 && mpk::Item(0.5f).as_float() == 0.5);
    CHECK(mpk::Item("s") == mpk::Item(std::string("s")) && mpk::Item("s") != mpk::Item::bytes("s"));
    EXPECT_ERROR(mpk::errc::invalid_argument, mpk::Item(UINT64_MAX));
    EXPECT_ERROR(mpk::errc::invalid_argument, (void)mpk::Item(1).as_str());
    EXPECT_ERROR(mpk::errc::null_pointer, mpk::Item(static_cast<const char*>(nullptr)));

    mpk::Dict d(1 << 20);
    const std::string long_value(1000, 'x'); // larger than the first read buffer
    d.set(1, long_value);
    d.set(mpk::Item::bytes("\0\1", 2), 2.5);
    CHECK(d.size() == 2 && d.contains(1.0) && !d.contains("1"));
    CHECK(d.get(true) == mpk::Item(long_value)); // Python's equality: True == 1
    CHECK(!d.get(3).has_value());
    CHECK(d.setdefault(3, "three").as_str() == "three" && d.setdefault(3, 4).as_str() == "three");
    const auto items = d.items();
    CHECK(items.size() == 3 && items[1].first.as_bytes() == std::string("\0\1", 2) && items[2].second == mpk::Item("three"));
    CHECK(d.pop(3) == mpk::Item("three") && !d.pop(3).has_value() && d.erase(1) && !d.erase(1));
    CHECK(d.repr() == "{b'\\x00\\x01': 2.5}");
    d.clear();
    CHECK(d.empty() && d.repr() == "{}" && d.repairs() == 0);

    mpk::List l{3, 1, 2};
    l.append(long_value);
    CHECK(l.get(-1).as_str() == long_value && l.pop().as_str() == long_value);
    l.sort();
    l.insert(0, 0.5);
    CHECK(l.repr() == "[0.5, 1, 2, 3]" && l.index(2) == 2 && l.size() == 4);
    EXPECT_ERROR(mpk::errc::invalid_argument, (void)l.get(4));
    EXPECT_ERROR(mpk::errc::not_found, (void)l.index("x"));
    l.set(0, "x");
    EXPECT_ERROR(mpk::errc::invalid_argument, l.sort());
    CHECK(l.repr() == "['x', 1, 2, 3]");
    l.remove("x");
    l.extend(std::vector<mpk::Item>{nullptr, false});
    CHECK(l.repr() == "[1, 2, 3, None, False]");
    l.clear();
    CHECK(l.empty());

    const Unlinker name{"/mpkit-hpp-dict-" + std::to_string(getpid())};
    mpk::Dict named = mpk::Dict::create_named(name.name, 1 << 20);
    named.set("k", "v");
    CHECK(mpk::Dict::open_named(name.name).get("k") == mpk::Item("v"));
    EXPECT_ERROR(mpk::errc::bad_object, mpk::List::open_named(name.name));
    mpk::unlink(name.name);
    say("dict");
}

// Pool tasks: plain functions, run in the workers.
static std::int64_t square(std::int64_t x) { return x * x; }
static double norm2(const Point& p) { return p.x * p.x + p.y * p.y; }
static std::int32_t worker_pid() { return getpid(); } // pid_t is int32_t on Linux
static std::int64_t fail_on_two(std::int64_t x) {
    if (x == 2) throw std::runtime_error("two");
    return x;
}
static std::int64_t nap(std::int64_t ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}

static void pool() {
    mpk::PoolOptions opts;
    opts.workers = 2;
    mpk::Pool pool(opts);
    CHECK(pool.workers() == 2);

    CHECK(pool.map(square, {1, 2, 3, 4}) == (std::vector<std::int64_t>{1, 4, 9, 16}));
    CHECK(pool.map(square, {}).empty());
    CHECK(pool.map(norm2, {Point{3, 4}, Point{1, 1}}) == (std::vector<double>{25, 2}));
    CHECK(pool.apply(square, 20) == 400);
    const std::int32_t pid = pool.apply(worker_pid);
    CHECK(pid > 0 && pid != getpid());

    mpk::AsyncResult<std::int64_t> r = pool.apply_async(square, 12);
    CHECK(r.wait(30s));
    CHECK(r.ready() && r.successful());
    CHECK(r.get() == 144);
    EXPECT_ERROR(mpk::errc::state, (void)r.get()); // taken already

    mpk::AsyncResult<std::int32_t> p = pool.apply_async(worker_pid);
    const std::optional<std::int32_t> got = p.try_get(30s);
    CHECK(got && *got > 0);

    try {
        (void)pool.map(fail_on_two, {0, 1, 2, 3});
        fail(__LINE__, "no exception");
    } catch (const mpk::task_error& e) {
        CHECK(e.code() == mpk::errc::task_failed);
        CHECK(e.index() == 2);
        CHECK(e.task_code() == mpk::task_threw);
    }

    mpk::AsyncResult<std::int64_t> slow = pool.apply_async(nap, 10000);
    CHECK(!slow.try_get(10ms)); // not in time: it goes on
    slow.cancel();
    EXPECT_ERROR(mpk::errc::cancelled, (void)slow.get());

    CHECK(pool.map(square, {5}) == std::vector<std::int64_t>{25}); // the pool still serves
    pool.close();
    EXPECT_ERROR(mpk::errc::state, (void)pool.apply(square, 1));
    CHECK(pool.try_join(30s));
    say("pool");
}

int main() {
    try {
        CHECK(mpk::abi_compatible());
        CHECK(mpk::cpu_count() >= 1);
        errors();
        mutex();
        process();
        queue();
        pipe();
        arrays();
        dict();
        pool();
        return 0;
    } catch (const std::exception& e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
}

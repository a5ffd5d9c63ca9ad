/*
 * mpkit.hpp: a header-only C++17 wrapper over the C ABI in mpkit.h (Python's multiprocessing
 * for C++ on Linux). Written by hand; it only calls the functions mpkit.h declares, so it links
 * against the same libmpkit.a / libmpkit.so:
 *
 *     c++ -std=c++17 -Iinclude app.cpp target/release/libmpkit.a -lpthread -ldl -lm
 *
 * Types (namespace mpk)
 *   Process          a forked child running a callable (mpk_process_*)
 *   Mutex, MutexRef  an owned robust process-shared mutex, and a non-owning view of any
 *                    mpk_mutex (e.g. a shared array's lock); Lockable and TimedLockable
 *   RMutex           an owned robust recursive mutex (Python's RLock; mpk_rmutex_*)
 *   Semaphore        an owned counting semaphore, bounded or not (mpk_sem_*)
 *   Queue<T>         a bounded MPMC queue of trivially copyable T (mpk_queue_*)
 *   Pipe, Connection a connected pair of ends; bytes or trivially copyable T (mpk_conn_*)
 *   SharedArray<T>, Value<T>   typed shared memory with its lock (mpk_array_*, mpk_value_create)
 *   Pool, AsyncResult<T>       a pool of worker processes: map, apply, apply_async (mpk_pool_*)
 *   Dict, List, Item           Manager().dict() and .list() in shared memory (mpk_dict_*, mpk_list_*)
 *
 * Ownership. Every owner is move-only (copy deleted, move noexcept); a moved-from object holds
 * nothing (its throwing calls throw errc::null_pointer) and may be destroyed or assigned to. Destructors
 * call the matching C destroy function and never throw. Handles are inherited by forked
 * children (the child has a copy of the address space): children end with _exit and never run
 * the parent's destructors. Thread-safety is the C handle's: Process, Mutex, Queue, SharedArray,
 * Value and Pool may be used by many threads at once; a Connection or an AsyncResult by one
 * thread at a time.
 *
 * Errors. Every failure of mpkit is thrown as std::system_error (or its subclasses owner_dead
 * and task_error) whose code() has category mpk::category() and the (negative) mpk_status as
 * its value, so `e.code() == mpk::errc::closed` and `e.code() == std::errc::timed_out` both
 * work; the message is mpk_strerror's text (plus the errno for MPK_ERR_SYS). The wrapper's own
 * checks use the same codes (errc::message_size for a message that is not sizeof(T) bytes,
 * errc::bad_object for a named object of another element type); at() throws std::out_of_range.
 * Waiting is not an error: functions that take a timeout are named try_* and report "not in
 * time" in-band (false, std::nullopt); their blocking twins (put, get, recv, join) wait as long
 * as needed. End-of-stream (a closed and drained queue, a pipe whose
 * other end is closed everywhere) is thrown as errc::closed, like Python's EOFError.
 *
 * Timeouts are std::chrono::milliseconds: mpk::forever (milliseconds::max()) blocks, zero or
 * any negative duration (mpk::nowait) never blocks, as with the standard's try_*_for.
 *
 * Robust locks and owner death (Mutex, MutexRef, and every call that locks an array's lock).
 * When a lock's holder died holding it, the next locker acquires it and learns that the data it
 * guards may be half-updated. mpkit never hides this:
 *   - lock_checked(timeout) returns LockResult::owner_dead (lock held) without throwing; this
 *     is the recommended way to write repair code:
 *         if (m.lock_checked() == mpk::LockResult::owner_dead) { repair(); m.consistent(); }
 *         std::lock_guard<mpk::Mutex> g(m, std::adopt_lock);
 *   - lock(), try_lock(), try_lock_for() and try_lock_until() throw mpk::owner_dead AFTER
 *     acquiring: the catcher holds the lock (owner_dead::mutex() names it) and must repair the
 *     data, call consistent(), and unlock() (or unlock without consistent(), which makes the
 *     mutex unusable for everyone: MPK_ERR_NOT_RECOVERABLE). This is the one, deliberate,
 *     departure from the standard's Lockable requirements ("if an exception is thrown then a
 *     lock shall not have been acquired"): releasing the lock before throwing would let another
 *     process see the damaged data as if it were fine. It matters for std::lock_guard,
 *     std::unique_lock and std::scoped_lock: when their constructor throws owner_dead there is
 *     no guard, and the lock is the catcher's to repair and release. Every other error of a
 *     lock call is thrown with the lock not acquired, as the requirements say.
 *   - unlock() is noexcept (guards call it from destructors); unlocking a lock the calling
 *     thread does not hold is a bug, caught by assert() (unlock_checked() returns the status).
 *
 * Fork rules (from mpkit.h): objects made before a fork are shared with the child at the same
 * address; a child of a process that has other threads may only do async-signal-safe work and
 * use mpkit's shared-memory objects until it returns; stdio buffers are copied by fork, so flush
 * (std::fflush, std::endl) before a child returns, and before starting children if the parent
 * has unwritten output.
 */
#ifndef MPKIT_HPP
#define MPKIT_HPP

#if !defined(__cplusplus) || __cplusplus < 201703L
#error "mpkit.hpp needs C++17 or later (-std=c++17)"
#endif

#include "mpkit.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace mpk {

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// The mpk_status codes as an error-code enum: `std::error_code ec = mpk::errc::timeout;`.
/// Values are the negative MPK_ERR_* codes (fixed forever by the C ABI).
enum class errc : int {
    null_pointer = MPK_ERR_NULL,
    invalid_argument = MPK_ERR_INVAL,
    no_memory = MPK_ERR_NOMEM,
    timeout = MPK_ERR_TIMEOUT,
    closed = MPK_ERR_CLOSED,
    message_size = MPK_ERR_MSGSIZE,
    owner_dead = MPK_ERR_OWNER_DEAD,
    not_recoverable = MPK_ERR_NOT_RECOVERABLE,
    not_owner = MPK_ERR_NOT_OWNER,
    worker_died = MPK_ERR_WORKER_DIED,
    task_failed = MPK_ERR_TASK_FAILED,
    bad_object = MPK_ERR_BAD_OBJECT,
    version = MPK_ERR_VERSION,
    exists = MPK_ERR_EXISTS,
    not_found = MPK_ERR_NOT_FOUND,
    broken = MPK_ERR_BROKEN,
    state = MPK_ERR_STATE,
    sys = MPK_ERR_SYS,
    panic = MPK_ERR_PANIC,
    task_timeout = MPK_ERR_TASK_TIMEOUT,
    cancelled = MPK_ERR_CANCELLED,
};

namespace detail {

class category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "mpk"; }
    std::string message(int ev) const override { return mpk_strerror(ev); }
    // The portable conditions that mean the same thing, so `ec == std::errc::timed_out` works.
    std::error_condition default_error_condition(int ev) const noexcept override {
        switch (ev) {
        case MPK_ERR_NULL:
        case MPK_ERR_INVAL: return std::errc::invalid_argument;
        case MPK_ERR_NOMEM: return std::errc::not_enough_memory;
        case MPK_ERR_TIMEOUT: return std::errc::timed_out;
        case MPK_ERR_MSGSIZE: return std::errc::message_size;
        case MPK_ERR_OWNER_DEAD: return std::errc::owner_dead;
        case MPK_ERR_NOT_RECOVERABLE: return std::errc::state_not_recoverable;
        case MPK_ERR_NOT_OWNER: return std::errc::operation_not_permitted;
        case MPK_ERR_EXISTS: return std::errc::file_exists;
        case MPK_ERR_NOT_FOUND: return std::errc::no_such_file_or_directory;
        case MPK_ERR_CANCELLED: return std::errc::operation_canceled;
        default: return std::error_condition(ev, *this);
        }
    }
};

} // namespace detail

/// The error category of every mpk_status: name "mpk", messages from mpk_strerror.
inline const std::error_category& category() noexcept {
    static const detail::category_impl instance;
    return instance;
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

} // namespace mpk

namespace std {
template <>
struct is_error_code_enum<mpk::errc> : true_type {};
} // namespace std

namespace mpk {

class MutexRef;

/// Thrown by a lock call that acquired a lock whose previous owner died holding it. The caller
/// HOLDS the lock: repair the data it guards, call consistent(), then unlock() (see the header
/// comment). mutex() names the lock.
class owner_dead : public std::system_error {
public:
    owner_dead(mpk_mutex* m, const char* what)
        : std::system_error(static_cast<int>(errc::owner_dead), category(), what), m_(m) {}
    /// The lock the catcher now holds (defined below, after MutexRef).
    MutexRef mutex() const noexcept;
    mpk_mutex* native_handle() const noexcept { return m_; }

private:
    mpk_mutex* m_;
};

/// Thrown by Pool::map/apply when a task failed (errc::task_failed: the function returned
/// non-zero or threw) or its worker died (errc::worker_died): index() is the item, task_code()
/// the task's return code (0 for a dead worker), as mpk_pool_last_failure reports them.
class task_error : public std::system_error {
public:
    task_error(mpk_status st, std::size_t index, int task_code, const std::string& what)
        : std::system_error(st, category(), what), index_(index), code_(task_code) {}
    std::size_t index() const noexcept { return index_; }
    int task_code() const noexcept { return code_; }

private:
    std::size_t index_;
    int code_;
};

namespace detail {

/// Throws `st` (not MPK_OK) as std::system_error; MPK_ERR_SYS carries its errno in the message.
[[noreturn]] inline void throw_status(mpk_status st, const char* what) {
    if (st == MPK_ERR_SYS) {
        const int e = mpk_last_errno();
        throw std::system_error(st, category(),
                                std::string(what) + " (errno " + std::to_string(e) + ": " +
                                    std::system_category().message(e) + ")");
    }
    throw std::system_error(st, category(), what);
}

inline void check(mpk_status st, const char* what) {
    if (st != MPK_OK) throw_status(st, what);
}

/// Selects the constructors that adopt a C handle.
struct adopt_t {
    explicit adopt_t() = default;
};
inline constexpr adopt_t adopt{};

/// A unique owner of a C handle: the one place that calls Destroy. Move-only.
template <class H, void (*Destroy)(H*)>
class unique_handle {
public:
    unique_handle() noexcept = default;
    explicit unique_handle(H* h) noexcept : h_(h) {}
    unique_handle(const unique_handle&) = delete;
    unique_handle& operator=(const unique_handle&) = delete;
    unique_handle(unique_handle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    unique_handle& operator=(unique_handle&& o) noexcept {
        if (this != &o) {
            reset();
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    ~unique_handle() { reset(); }
    void reset() noexcept { Destroy(std::exchange(h_, nullptr)); } // every *_destroy accepts NULL
    H* get() const noexcept { return h_; }

private:
    H* h_ = nullptr;
};

} // namespace detail

// ---------------------------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------------------------

/// Block as long as needed.
inline constexpr std::chrono::milliseconds forever = std::chrono::milliseconds::max();
/// Never block.
inline constexpr std::chrono::milliseconds nowait = std::chrono::milliseconds::zero();

namespace detail {

/// A duration as mpkit's int64_t milliseconds: <= 0 is MPK_NOWAIT, beyond ~285,000 years (and
/// mpk::forever) is MPK_FOREVER, anything else rounds up to whole milliseconds.
template <class Rep, class Period>
std::int64_t to_ms(const std::chrono::duration<Rep, Period>& d) {
    if (d <= d.zero()) return MPK_NOWAIT;
    if (std::chrono::duration<double, std::milli>(d).count() >= 9.0e15) return MPK_FOREVER;
    return static_cast<std::int64_t>(std::chrono::ceil<std::chrono::milliseconds>(d).count());
}

/// A timeout shared by several waits: left() is what remains of it now.
class countdown {
public:
    explicit countdown(std::int64_t ms) : ms_(ms) {
        if (ms_ > 0) end_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms_);
    }
    std::int64_t left() const {
        if (ms_ <= 0) return ms_; // MPK_FOREVER or MPK_NOWAIT
        return to_ms(end_ - std::chrono::steady_clock::now());
    }

private:
    std::int64_t ms_;
    std::chrono::steady_clock::time_point end_{};
};

} // namespace detail

// ---------------------------------------------------------------------------------------------
// Mutex
// ---------------------------------------------------------------------------------------------

/// What lock_checked() got.
enum class LockResult {
    acquired,   ///< locked
    owner_dead, ///< locked, from a holder that died: repair, consistent(), then unlock()
    timed_out,  ///< not locked
};

namespace detail {

/// The operations of a robust mutex, shared by the owner (Mutex) and the view (MutexRef).
class mutex_ops {
public:
    /// BasicLockable: blocks until locked. Throws owner_dead holding the lock (see the header
    /// comment), std::system_error without it (errc::state: this thread holds it already;
    /// errc::not_recoverable; errc::no_memory: MPK_MAX_HELD_LOCKS held).
    void lock() { (void)acquire(MPK_FOREVER, "mpk::Mutex::lock"); }

    /// Lockable: locks if free now. Throws as lock().
    bool try_lock() { return acquire(MPK_NOWAIT, "mpk::Mutex::try_lock"); }

    /// TimedLockable: waits at most `d`. Throws as lock().
    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
        return acquire(to_ms(d), "mpk::Mutex::try_lock_for");
    }

    /// TimedLockable: waits until `t` (of any clock; measured as the time left now).
    template <class Clock, class Duration>
    bool try_lock_until(const std::chrono::time_point<Clock, Duration>& t) {
        return acquire(to_ms(t - Clock::now()), "mpk::Mutex::try_lock_until");
    }

    /// Locks, waiting at most `t`, and reports owner death in-band instead of throwing it.
    /// Other errors throw std::system_error (lock not acquired).
    [[nodiscard]] LockResult lock_checked(std::chrono::milliseconds t = forever) {
        const mpk_status st = mpk_mutex_lock(m_, to_ms(t));
        switch (st) {
        case MPK_OK: return LockResult::acquired;
        case MPK_ERR_OWNER_DEAD: return LockResult::owner_dead;
        case MPK_ERR_TIMEOUT: return LockResult::timed_out;
        default: throw_status(st, "mpk::Mutex::lock_checked");
        }
    }

    /// Lockable: unlocks. Never throws; a failure (the calling thread does not hold the lock)
    /// is a bug, caught by assert().
    void unlock() noexcept {
        [[maybe_unused]] const mpk_status st = mpk_mutex_unlock(m_);
        assert(st == MPK_OK && "mpk::Mutex::unlock: the calling thread does not hold the lock");
    }

    /// unlock() that returns the status (MPK_ERR_NOT_OWNER) instead of asserting.
    [[nodiscard]] mpk_status unlock_checked() noexcept { return mpk_mutex_unlock(m_); }

    /// Marks a lock taken from a dead owner consistent again (it stays locked). Throws
    /// errc::not_owner if the caller does not hold it, errc::invalid_argument if it was not
    /// inconsistent.
    void consistent() { check(mpk_mutex_consistent(m_), "mpk::Mutex::consistent"); }

    mpk_mutex* native_handle() const noexcept { return m_; }

protected:
    explicit mutex_ops(mpk_mutex* m) noexcept : m_(m) {}
    mutex_ops(const mutex_ops&) noexcept = default;
    mutex_ops& operator=(const mutex_ops&) noexcept = default;
    ~mutex_ops() = default;

    mpk_mutex* m_;

private:
    bool acquire(std::int64_t ms, const char* what) {
        const mpk_status st = mpk_mutex_lock(m_, ms);
        if (st == MPK_OK) return true;
        if (st == MPK_ERR_TIMEOUT) return false;
        if (st == MPK_ERR_OWNER_DEAD) throw owner_dead(m_, what);
        throw_status(st, what);
    }
};

} // namespace detail

/// A non-owning view of a robust mutex anywhere (an array's lock, one placed in shared memory):
/// copyable like a pointer; valid while the mutex is. Lockable and TimedLockable.
class MutexRef : public detail::mutex_ops {
public:
    explicit MutexRef(mpk_mutex* m) noexcept : mutex_ops(m) {}
    MutexRef(const MutexRef&) noexcept = default;
    MutexRef& operator=(const MutexRef&) noexcept = default;
    ~MutexRef() = default;

    friend bool operator==(const MutexRef& a, const MutexRef& b) noexcept { return a.m_ == b.m_; }
    friend bool operator!=(const MutexRef& a, const MutexRef& b) noexcept { return a.m_ != b.m_; }
};

inline MutexRef owner_dead::mutex() const noexcept { return MutexRef(m_); }

/// An owned robust process-shared mutex in its own small shared mapping (mpk_mutex_create),
/// shared with children forked afterwards (Python's Lock). Lockable and TimedLockable, so
/// std::lock_guard<mpk::Mutex> and std::unique_lock<mpk::Mutex> work; see the header comment
/// for owner death. Destroying it while this thread holds it releases it as if its owner had
/// died (other processes get owner_dead).
class Mutex : public detail::mutex_ops {
public:
    Mutex() : mutex_ops(nullptr) {
        detail::check(mpk_mutex_create(&m_), "mpk_mutex_create");
    }
    Mutex(const Mutex&) = delete;
    Mutex& operator=(const Mutex&) = delete;
    Mutex(Mutex&& o) noexcept : mutex_ops(std::exchange(o.m_, nullptr)) {}
    Mutex& operator=(Mutex&& o) noexcept {
        if (this != &o) {
            mpk_mutex_destroy(m_);
            m_ = std::exchange(o.m_, nullptr);
        }
        return *this;
    }
    ~Mutex() { mpk_mutex_destroy(m_); }

    /// A view of this mutex (valid while it lives).
    MutexRef ref() const noexcept { return MutexRef(m_); }
};

// ---------------------------------------------------------------------------------------------
// RMutex, Semaphore
// ---------------------------------------------------------------------------------------------

/// An owned robust, recursive process-shared mutex (mpk_rmutex_create; Python's RLock): the
/// thread that holds it may lock it again and must unlock it as often. Lockable and
/// TimedLockable. Owner death as Mutex, except that lock() and the try_* calls throw a plain
/// std::system_error with errc::owner_dead AFTER acquiring (the catcher holds it at depth 1:
/// repair, consistent(), unlock()); lock_checked() reports it in-band.
class RMutex {
public:
    RMutex() { detail::check(mpk_rmutex_create(&m_), "mpk_rmutex_create"); }
    RMutex(const RMutex&) = delete;
    RMutex& operator=(const RMutex&) = delete;
    RMutex(RMutex&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
    RMutex& operator=(RMutex&& o) noexcept {
        if (this != &o) {
            mpk_rmutex_destroy(m_);
            m_ = std::exchange(o.m_, nullptr);
        }
        return *this;
    }
    ~RMutex() { mpk_rmutex_destroy(m_); }

    /// BasicLockable: blocks until locked (or one level deeper). Throws as described above.
    void lock() { (void)acquire(MPK_FOREVER, "mpk::RMutex::lock"); }
    /// Lockable: locks if that needs no waiting.
    bool try_lock() { return acquire(MPK_NOWAIT, "mpk::RMutex::try_lock"); }
    /// TimedLockable: waits at most `d`.
    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
        return acquire(detail::to_ms(d), "mpk::RMutex::try_lock_for");
    }
    /// Locks, waiting at most `t`, and reports owner death in-band.
    [[nodiscard]] LockResult lock_checked(std::chrono::milliseconds t = forever) {
        const mpk_status st = mpk_rmutex_lock(m_, detail::to_ms(t));
        switch (st) {
        case MPK_OK: return LockResult::acquired;
        case MPK_ERR_OWNER_DEAD: return LockResult::owner_dead;
        case MPK_ERR_TIMEOUT: return LockResult::timed_out;
        default: detail::throw_status(st, "mpk::RMutex::lock_checked");
        }
    }
    /// Releases one level. Never throws; unlocking a lock this thread does not hold is caught
    /// by assert() (unlock_checked() returns the status).
    void unlock() noexcept {
        [[maybe_unused]] const mpk_status st = mpk_rmutex_unlock(m_);
        assert(st == MPK_OK && "mpk::RMutex::unlock: the calling thread does not hold the lock");
    }
    [[nodiscard]] mpk_status unlock_checked() noexcept { return mpk_rmutex_unlock(m_); }
    /// Marks a lock taken from a dead owner consistent again (it stays locked).
    void consistent() { detail::check(mpk_rmutex_consistent(m_), "mpk::RMutex::consistent"); }
    /// How many times the calling thread holds it (0: not at all).
    std::uint32_t depth() const noexcept { return mpk_rmutex_depth(m_); }
    mpk_rmutex* native_handle() const noexcept { return m_; }

private:
    bool acquire(std::int64_t ms, const char* what) {
        const mpk_status st = mpk_rmutex_lock(m_, ms);
        if (st == MPK_OK) return true;
        if (st == MPK_ERR_TIMEOUT) return false;
        detail::throw_status(st, what); // MPK_ERR_OWNER_DEAD included: the lock is held
    }

    mpk_rmutex* m_ = nullptr;
};

/// An owned process-shared counting semaphore (mpk_sem_create): Python's Semaphore(value)
/// with max 0, BoundedSemaphore with max > 0 (release past it throws errc::state). It has no
/// owner: any thread of any process may release, and a process that dies holding a permit
/// loses it. acquire()/release() make it BasicLockable, so std::lock_guard<mpk::Semaphore>
/// holds one permit.
class Semaphore {
public:
    explicit Semaphore(std::uint32_t value = 1, std::uint32_t max = 0) {
        detail::check(mpk_sem_create(value, max, &s_), "mpk_sem_create");
    }
    Semaphore(const Semaphore&) = delete;
    Semaphore& operator=(const Semaphore&) = delete;
    Semaphore(Semaphore&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    Semaphore& operator=(Semaphore&& o) noexcept {
        if (this != &o) {
            mpk_sem_destroy(s_);
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    ~Semaphore() { mpk_sem_destroy(s_); }

    /// Takes a permit, blocking as long as needed.
    void acquire() { detail::check(mpk_sem_acquire(s_, MPK_FOREVER), "mpk::Semaphore::acquire"); }
    /// Takes a permit if one comes within `d`; false if none did.
    template <class Rep, class Period>
    bool try_acquire_for(const std::chrono::duration<Rep, Period>& d) {
        const mpk_status st = mpk_sem_acquire(s_, detail::to_ms(d));
        if (st == MPK_ERR_TIMEOUT) return false;
        detail::check(st, "mpk::Semaphore::try_acquire_for");
        return true;
    }
    bool try_acquire() { return try_acquire_for(nowait); }
    /// Returns a permit; throws errc::state past the bound.
    void release() { detail::check(mpk_sem_release(s_), "mpk::Semaphore::release"); }
    /// BasicLockable, for std::lock_guard: one permit.
    void lock() { acquire(); }
    void unlock() noexcept {
        [[maybe_unused]] const mpk_status st = mpk_sem_release(s_);
        assert(st == MPK_OK && "mpk::Semaphore::unlock: released past the bound");
    }
    /// Permits available now.
    std::uint32_t value() const noexcept { return mpk_sem_value(s_); }
    mpk_sem* native_handle() const noexcept { return s_; }

private:
    mpk_sem* s_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Event, Condition, Barrier
// ---------------------------------------------------------------------------------------------

/// An owned process-shared event (mpk_event_create; Python's Event), shared with children
/// forked afterwards. set() wakes every waiter.
class Event {
public:
    Event() {
        mpk_event* e = nullptr;
        detail::check(mpk_event_create(&e), "mpk_event_create");
        h_ = handle(e);
    }
    void set() { detail::check(mpk_event_set(h_.get()), "mpk::Event::set"); }
    void clear() { detail::check(mpk_event_clear(h_.get()), "mpk::Event::clear"); }
    bool is_set() const noexcept { return mpk_event_is_set(h_.get()); }
    /// Waits at most `t` for the event; false on timeout (as Python's wait).
    bool wait(std::chrono::milliseconds t = forever) {
        const mpk_status st = mpk_event_wait(h_.get(), detail::to_ms(t));
        if (st == MPK_ERR_TIMEOUT) return false;
        detail::check(st, "mpk::Event::wait");
        return true;
    }
    mpk_event* native_handle() const noexcept { return h_.get(); }

private:
    using handle = detail::unique_handle<mpk_event, mpk_event_destroy>;
    handle h_;
};

/// An owned process-shared condition variable (mpk_cond_create), used with a robust mutex
/// (Python's Condition without its bundled lock). The caller holds `m` (e.g. in a
/// std::unique_lock<mpk::Mutex>) around wait(); wake-ups may be spurious, so wait in a loop or
/// with a predicate.
class Condition {
public:
    Condition() {
        mpk_cond* c = nullptr;
        detail::check(mpk_cond_create(&c), "mpk_cond_create");
        h_ = handle(c);
    }
    /// Releases `m`, waits at most `t`, re-locks `m`; false on timeout (`m` held either way).
    /// Throws owner_dead holding `m` if it was re-taken from a dead owner.
    bool wait(MutexRef m, std::chrono::milliseconds t = forever) {
        const mpk_status st = mpk_cond_wait(h_.get(), m.native_handle(), detail::to_ms(t));
        if (st == MPK_ERR_TIMEOUT) return false;
        if (st == MPK_ERR_OWNER_DEAD) throw owner_dead(m.native_handle(), "mpk::Condition::wait");
        detail::check(st, "mpk::Condition::wait");
        return true;
    }
    /// Waits until `pred()` holds, at most `t` in all; returns pred() (Python's wait_for).
    template <class Pred>
    bool wait_for(MutexRef m, Pred pred, std::chrono::milliseconds t = forever) {
        detail::countdown left(detail::to_ms(t));
        while (!pred())
            if (!wait(m, std::chrono::milliseconds(left.left()))) return pred();
        return true;
    }
    void notify(std::uint32_t n = 1) { detail::check(mpk_cond_notify(h_.get(), n), "mpk::Condition::notify"); }
    void notify_all() { detail::check(mpk_cond_notify_all(h_.get()), "mpk::Condition::notify_all"); }
    mpk_cond* native_handle() const noexcept { return h_.get(); }

private:
    using handle = detail::unique_handle<mpk_cond, mpk_cond_destroy>;
    handle h_;
};

/// An owned process-shared barrier (mpk_barrier_create; Python's Barrier).
class Barrier {
public:
    explicit Barrier(std::uint32_t parties) {
        mpk_barrier* b = nullptr;
        detail::check(mpk_barrier_create(parties, &b), "mpk_barrier_create");
        h_ = handle(b);
    }
    /// Waits for all parties; returns this party's index (0..parties-1). Throws errc::broken
    /// (broken or reset while waiting) or errc::timeout (this wait's timeout broke the barrier).
    std::uint32_t wait(std::chrono::milliseconds t = forever) {
        std::uint32_t index = 0;
        detail::check(mpk_barrier_wait(h_.get(), detail::to_ms(t), &index), "mpk::Barrier::wait");
        return index;
    }
    void abort() { detail::check(mpk_barrier_abort(h_.get()), "mpk::Barrier::abort"); }
    void reset() { detail::check(mpk_barrier_reset(h_.get()), "mpk::Barrier::reset"); }
    std::uint32_t n_waiting() const noexcept { return mpk_barrier_n_waiting(h_.get()); }
    bool broken() const noexcept { return mpk_barrier_broken(h_.get()); }
    mpk_barrier* native_handle() const noexcept { return h_.get(); }

private:
    using handle = detail::unique_handle<mpk_barrier, mpk_barrier_destroy>;
    handle h_;
};

// ---------------------------------------------------------------------------------------------
// Process
// ---------------------------------------------------------------------------------------------

/// Options of a Process.
struct ProcessOptions {
    /// Kill the child (SIGKILL) when the parent thread that started it exits (Python's daemon).
    bool daemon = false;
};

/// A child process running a callable (Python's Process, started at construction like
/// std::thread). The callable and its arguments are NOT copied: the child is forked inside the
/// constructor and sees the caller's objects as they were at that moment, in its own copy of
/// the address space, so the callable may take them by reference (an mpk::Queue& is the shared
/// queue; a changed std::string stays the child's). Its result is the exit code: an int
/// (0..255), or 0 for void; an exception escaping it makes the child exit with 1.
///
/// The destructor releases the handle: an exited child is reaped, a running one is detached
/// and reaped later (not killed, not waited for: call join() first, or kill()/terminate()).
class Process {
public:
    /// Starts `fn(args...)` in a new child. Throws std::system_error if it cannot fork.
    template <class F, class... Args,
              class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Process> &&
                                       !std::is_same_v<std::decay_t<F>, ProcessOptions>>>
    explicit Process(F&& fn, Args&&... args)
        : Process(ProcessOptions{}, std::forward<F>(fn), std::forward<Args>(args)...) {}

    /// As above, with options.
    template <class F, class... Args>
    Process(const ProcessOptions& opts, F&& fn, Args&&... args) {
        static_assert(std::is_invocable_v<F&&, Args&&...>, "mpk::Process: fn is not callable with these arguments");
        using R = std::invoke_result_t<F&&, Args&&...>;
        static_assert(std::is_void_v<R> || std::is_convertible_v<R, int>,
                      "mpk::Process: fn must return void or an int-like exit code");
        std::tuple<F&&, Args&&...> call(std::forward<F>(fn), std::forward<Args>(args)...);
        mpk_process_opts o{};
        o.struct_size = sizeof o;
        o.daemon = opts.daemon;
        mpk_process* p = nullptr;
        // `call` lives on this stack frame until the fork is done; the child has its own copy.
        detail::check(mpk_process_start(&child_main<std::tuple<F&&, Args&&...>>, &call, &o, &p), "mpk_process_start");
        h_ = Handle(p);
    }

    /// Starts the C entry point `fn(arg)` (mpk_process_start as it is).
    Process(mpk_process_fn fn, void* arg, const ProcessOptions& opts = {}) {
        mpk_process_opts o{};
        o.struct_size = sizeof o;
        o.daemon = opts.daemon;
        mpk_process* p = nullptr;
        detail::check(mpk_process_start(fn, arg, &o, &p), "mpk_process_start");
        h_ = Handle(p);
    }

    Process(Process&&) noexcept = default;
    Process& operator=(Process&&) noexcept = default;
    ~Process() = default;

    /// Waits for the child to exit; returns its exit code (-N if signal N killed it).
    int join() {
        detail::check(mpk_process_join(h_.get(), MPK_FOREVER), "mpk_process_join");
        return code();
    }

    /// Waits at most `t`; the exit code, or std::nullopt if it still runs.
    [[nodiscard]] std::optional<int> try_join(std::chrono::milliseconds t) {
        const mpk_status st = mpk_process_join(h_.get(), detail::to_ms(t));
        if (st == MPK_ERR_TIMEOUT) return std::nullopt;
        detail::check(st, "mpk_process_join");
        return code();
    }

    /// The exit code, or std::nullopt while it runs (reaps it if it has exited).
    std::optional<int> exitcode() {
        if (mpk_process_is_alive(h_.get())) return std::nullopt;
        int c = 0;
        const mpk_status st = mpk_process_exitcode(h_.get(), &c);
        if (st == MPK_ERR_STATE) return std::nullopt;
        detail::check(st, "mpk_process_exitcode");
        return c;
    }

    bool is_alive() noexcept { return mpk_process_is_alive(h_.get()); }
    int pid() const noexcept { return mpk_process_pid(h_.get()); }
    /// A descriptor that polls readable once the child has exited; owned by this object.
    int sentinel() const noexcept { return mpk_process_sentinel(h_.get()); }
    /// SIGTERM (no-op once it has exited).
    void terminate() { detail::check(mpk_process_terminate(h_.get()), "mpk_process_terminate"); }
    /// SIGKILL (no-op once it has exited).
    void kill() { detail::check(mpk_process_kill(h_.get()), "mpk_process_kill"); }

    mpk_process* native_handle() const noexcept { return h_.get(); }

private:
    using Handle = detail::unique_handle<mpk_process, &mpk_process_destroy>;

    // The mpk_process_fn of the child: calls the callable on the caller's objects, in the child's copy.
    template <class Call>
    static int child_main(void* call) noexcept {
        try {
            return std::apply(
                [](auto&&... a) -> int {
                    if constexpr (std::is_void_v<decltype(std::invoke(std::forward<decltype(a)>(a)...))>) {
                        std::invoke(std::forward<decltype(a)>(a)...);
                        return 0;
                    } else {
                        return static_cast<int>(std::invoke(std::forward<decltype(a)>(a)...));
                    }
                },
                std::move(*static_cast<Call*>(call)));
        } catch (...) {
            return 1; // as Python's Process exits 1 on an exception
        }
    }

    int code() const {
        int c = 0;
        detail::check(mpk_process_exitcode(h_.get(), &c), "mpk_process_exitcode");
        return c;
    }

    Handle h_;
};

// ---------------------------------------------------------------------------------------------
// Queue<T>
// ---------------------------------------------------------------------------------------------

/// A bounded multi-producer multi-consumer queue of T in shared memory (Python's Queue),
/// shared with children forked afterwards. Messages are T's bytes, so T is trivially copyable
/// (no pointers into this process, please: the reader may be another one).
template <class T>
class Queue {
    static_assert(std::is_trivially_copyable_v<T>, "mpk::Queue<T>: T must be trivially copyable");
    static_assert(!std::is_const_v<T> && !std::is_volatile_v<T>, "mpk::Queue<T>: T must not be cv-qualified");

public:
    /// A queue of `capacity` messages (1..MPK_QUEUE_MAX_CAPACITY).
    explicit Queue(std::size_t capacity) {
        mpk_queue* q = nullptr;
        detail::check(mpk_queue_create(capacity, sizeof(T), &q), "mpk_queue_create");
        h_ = Handle(q);
    }

    /// A named queue that unrelated processes open with open_named (the name stays until
    /// mpk::unlink). errc::exists if taken.
    static Queue create_named(const std::string& name, std::size_t capacity) {
        mpk_queue* q = nullptr;
        detail::check(mpk_queue_create_named(name.c_str(), capacity, sizeof(T), &q), "mpk_queue_create_named");
        return Queue(detail::adopt, q);
    }

    /// Opens a named queue; errc::bad_object if its messages are not the size of T.
    static Queue open_named(const std::string& name) {
        mpk_queue* q = nullptr;
        detail::check(mpk_queue_open_named(name.c_str(), &q), "mpk_queue_open_named");
        Queue r(detail::adopt, q);
        if (mpk_queue_max_msg(q) != sizeof(T))
            detail::throw_status(MPK_ERR_BAD_OBJECT, "mpk::Queue<T>::open_named: message size is not sizeof(T)");
        return r;
    }

    Queue(Queue&&) noexcept = default;
    Queue& operator=(Queue&&) noexcept = default;
    ~Queue() = default;

    /// Puts `v`, waiting for room as long as needed. Throws errc::closed once closed.
    void put(const T& v) { (void)put_ms(v, MPK_FOREVER); }

    /// Puts `v` if there is room within `t`; false if not.
    [[nodiscard]] bool try_put(const T& v, std::chrono::milliseconds t = nowait) { return put_ms(v, detail::to_ms(t)); }

    /// Takes the next message, waiting as long as needed. Throws errc::closed once closed and
    /// drained.
    T get() {
        std::optional<T> v = get_ms(MPK_FOREVER);
        return *v; // never empty with MPK_FOREVER
    }

    /// Takes the next message if one comes within `t`; std::nullopt if not.
    [[nodiscard]] std::optional<T> try_get(std::chrono::milliseconds t = nowait) { return get_ms(detail::to_ms(t)); }

    /// Closes the queue for every process: puts then throw errc::closed, gets drain what is left.
    void close() { detail::check(mpk_queue_close(h_.get()), "mpk_queue_close"); }

    /// JoinableQueue: marks one message processed.
    void task_done() { detail::check(mpk_queue_task_done(h_.get()), "mpk_queue_task_done"); }
    /// JoinableQueue: waits until every message put so far was marked done.
    void join() { detail::check(mpk_queue_join(h_.get(), MPK_FOREVER), "mpk_queue_join"); }
    /// As join(), at most `t`; false if not in time.
    [[nodiscard]] bool try_join(std::chrono::milliseconds t) {
        const mpk_status st = mpk_queue_join(h_.get(), detail::to_ms(t));
        if (st == MPK_ERR_TIMEOUT) return false;
        detail::check(st, "mpk_queue_join");
        return true;
    }

    /// Messages in the queue now (Python's qsize).
    std::size_t size() const noexcept { return mpk_queue_len(h_.get()); }
    bool empty() const noexcept { return size() == 0; }
    std::size_t capacity() const noexcept { return mpk_queue_capacity(h_.get()); }
    /// Slots repaired after a process died holding them (see mpk_queue_stats).
    mpk_queue_repairs repairs() const {
        mpk_queue_repairs r{};
        detail::check(mpk_queue_stats(h_.get(), &r), "mpk_queue_stats");
        return r;
    }

    mpk_queue* native_handle() const noexcept { return h_.get(); }

private:
    using Handle = detail::unique_handle<mpk_queue, &mpk_queue_destroy>;
    Queue(detail::adopt_t, mpk_queue* q) noexcept : h_(q) {}

    bool put_ms(const T& v, std::int64_t ms) {
        const mpk_status st = mpk_queue_put(h_.get(), &v, sizeof(T), ms);
        if (st == MPK_ERR_TIMEOUT) return false;
        detail::check(st, "mpk_queue_put");
        return true;
    }

    std::optional<T> get_ms(std::int64_t ms) {
        static_assert(std::is_default_constructible_v<T>, "mpk::Queue<T>::get: T must be default-constructible");
        T v{};
        std::size_t len = 0;
        const mpk_status st = mpk_queue_get(h_.get(), &v, sizeof(T), &len, ms);
        if (st == MPK_ERR_TIMEOUT) return std::nullopt;
        detail::check(st, "mpk_queue_get");
        if (len != sizeof(T)) detail::throw_status(MPK_ERR_MSGSIZE, "mpk::Queue<T>::get: message is not sizeof(T)");
        return v;
    }

    Handle h_;
};

// ---------------------------------------------------------------------------------------------
// Pipe
// ---------------------------------------------------------------------------------------------

/// One end of a pipe (Python's Connection). One thread at a time per end. After a fork both
/// processes hold both ends: each should close() the end it does not use, since an end reads
/// as closed to its peer only once every process holding it has closed it or died.
class Connection {
public:
    explicit Connection(mpk_conn* c) noexcept : h_(c) {}
    Connection(Connection&&) noexcept = default;
    Connection& operator=(Connection&&) noexcept = default;
    ~Connection() = default;

    /// Sends one message of `len` bytes (any length), waiting as long as needed. Throws
    /// errc::closed once the other end is closed everywhere, errc::state on a closed or
    /// receive-only end.
    void send_bytes(const void* data, std::size_t len) { (void)send_ms(data, len, MPK_FOREVER); }
    void send_bytes(std::string_view bytes) { send_bytes(bytes.data(), bytes.size()); }
    /// As send_bytes, finishing within `t`; false if not (the reader gets nothing of it).
    [[nodiscard]] bool try_send_bytes(const void* data, std::size_t len, std::chrono::milliseconds t) {
        return send_ms(data, len, detail::to_ms(t));
    }
    [[nodiscard]] bool try_send_bytes(std::string_view bytes, std::chrono::milliseconds t) {
        return try_send_bytes(bytes.data(), bytes.size(), t);
    }

    /// Receives one whole message, waiting as long as needed. Throws errc::closed at
    /// end-of-file (the other end closed everywhere and everything read).
    std::string recv_bytes() { return *recv_string(MPK_FOREVER); }
    /// As recv_bytes, within `t` in all; std::nullopt if not in time.
    [[nodiscard]] std::optional<std::string> try_recv_bytes(std::chrono::milliseconds t) {
        return recv_string(detail::to_ms(t));
    }

    /// Receives one message into `buf` (`cap` bytes) and returns its length. Throws
    /// errc::message_size if it does not fit (the message stays), errc::closed at end-of-file.
    std::size_t recv_bytes_into(void* buf, std::size_t cap) { return *recv_ms(buf, cap, MPK_FOREVER); }
    /// As recv_bytes_into, within `t`; std::nullopt if not in time.
    [[nodiscard]] std::optional<std::size_t> try_recv_bytes_into(void* buf, std::size_t cap,
                                                               std::chrono::milliseconds t) {
        return recv_ms(buf, cap, detail::to_ms(t));
    }

    /// Sends the bytes of a trivially copyable `v`.
    template <class T>
    void send(const T& v) {
        static_assert(std::is_trivially_copyable_v<T>, "mpk::Connection::send<T>: T must be trivially copyable");
        send_bytes(&v, sizeof(T));
    }
    template <class T>
    [[nodiscard]] bool try_send(const T& v, std::chrono::milliseconds t) {
        static_assert(std::is_trivially_copyable_v<T>, "mpk::Connection::try_send<T>: T must be trivially copyable");
        return try_send_bytes(&v, sizeof(T), t);
    }

    /// Receives a T sent with send<T>. Throws errc::message_size if the message is not
    /// sizeof(T) bytes (a longer one stays; a shorter one is consumed), errc::closed at EOF.
    template <class T>
    T recv() {
        return *recv_value<T>(MPK_FOREVER);
    }
    template <class T>
    [[nodiscard]] std::optional<T> try_recv(std::chrono::milliseconds t) {
        return recv_value<T>(detail::to_ms(t));
    }

    /// Whether a receive would not wait: a message is there (or has begun), or the other end
    /// is closed (then receiving throws errc::closed), as Python's poll. Waits at most `t`.
    bool poll(std::chrono::milliseconds t = nowait) {
        const mpk_status st = mpk_conn_poll(h_.get(), detail::to_ms(t));
        if (st == MPK_OK || st == MPK_ERR_CLOSED) return true;
        if (st == MPK_ERR_TIMEOUT) return false;
        detail::throw_status(st, "mpk_conn_poll");
    }

    /// Drops this process's hold on the end (idempotent); the destructor does it too.
    void close() { detail::check(mpk_conn_close(h_.get()), "mpk_conn_close"); }

    mpk_conn* native_handle() const noexcept { return h_.get(); }

private:
    using Handle = detail::unique_handle<mpk_conn, &mpk_conn_destroy>;

    bool send_ms(const void* data, std::size_t len, std::int64_t ms) {
        const mpk_status st = mpk_conn_send(h_.get(), data, len, ms);
        if (st == MPK_ERR_TIMEOUT) return false;
        detail::check(st, "mpk_conn_send");
        return true;
    }

    std::optional<std::size_t> recv_ms(void* buf, std::size_t cap, std::int64_t ms) {
        std::size_t len = 0;
        const mpk_status st = mpk_conn_recv(h_.get(), buf, cap, &len, ms);
        if (st == MPK_ERR_TIMEOUT) return std::nullopt;
        detail::check(st, "mpk_conn_recv");
        return len;
    }

    std::optional<std::string> recv_string(std::int64_t ms) {
        const detail::countdown left(ms);
        std::string buf(256, '\0');
        for (;;) {
            std::size_t len = 0;
            const mpk_status st = mpk_conn_recv(h_.get(), buf.data(), buf.size(), &len, left.left());
            if (st == MPK_OK) {
                buf.resize(len);
                return buf;
            }
            if (st == MPK_ERR_TIMEOUT) return std::nullopt;
            if (st != MPK_ERR_MSGSIZE) detail::throw_status(st, "mpk_conn_recv");
            buf.resize(len); // the size needed; the message stays for the next call
        }
    }

    template <class T>
    std::optional<T> recv_value(std::int64_t ms) {
        static_assert(std::is_trivially_copyable_v<T>, "mpk::Connection::recv<T>: T must be trivially copyable");
        static_assert(std::is_default_constructible_v<T>, "mpk::Connection::recv<T>: T must be default-constructible");
        T v{};
        const std::optional<std::size_t> len = recv_ms(&v, sizeof(T), ms);
        if (!len) return std::nullopt;
        if (*len != sizeof(T))
            detail::throw_status(MPK_ERR_MSGSIZE, "mpk::Connection::recv<T>: message is not sizeof(T)");
        return v;
    }

    Handle h_;
};

/// A connected pair of ends (Python's Pipe): `auto [a, b] = mpk::Pipe();`. Duplex: both ends
/// send and receive; otherwise `first` only receives and `second` only sends. Each direction
/// has a ring of `capacity_bytes` (rounded up to a power of two, at least 64); messages of any
/// size stream through.
struct Pipe {
    explicit Pipe(std::size_t capacity_bytes = 64 * 1024, bool duplex = true) : Pipe(make(capacity_bytes, duplex)) {}

    Connection first;
    Connection second;

private:
    explicit Pipe(std::pair<mpk_conn*, mpk_conn*> ends) noexcept : first(ends.first), second(ends.second) {}
    static std::pair<mpk_conn*, mpk_conn*> make(std::size_t capacity_bytes, bool duplex) {
        mpk_conn* a = nullptr;
        mpk_conn* b = nullptr;
        detail::check(mpk_pipe_create(capacity_bytes, duplex, &a, &b), "mpk_pipe_create");
        return {a, b};
    }
};

// ---------------------------------------------------------------------------------------------
// SharedArray<T>, Value<T>
// ---------------------------------------------------------------------------------------------

namespace detail {

/// The MPK_TYPE_* of T, or 0 if mpkit has none.
template <class T>
constexpr mpk_type type_code() noexcept {
    if constexpr (std::is_same_v<T, float>) {
        return MPK_TYPE_F32;
    } else if constexpr (std::is_same_v<T, double>) {
        return MPK_TYPE_F64;
    } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        constexpr bool s = std::is_signed_v<T>;
        switch (sizeof(T)) {
        case 1: return s ? MPK_TYPE_I8 : MPK_TYPE_U8;
        case 2: return s ? MPK_TYPE_I16 : MPK_TYPE_U16;
        case 4: return s ? MPK_TYPE_I32 : MPK_TYPE_U32;
        case 8: return s ? MPK_TYPE_I64 : MPK_TYPE_U64;
        default: return 0;
        }
    } else {
        return 0;
    }
}

} // namespace detail

/// Whether T is an element type of SharedArray/Value: an integer of 8 to 64 bits (not bool),
/// float or double.
template <class T>
inline constexpr bool is_shared_element_v = detail::type_code<T>() != 0;

/// A fixed-size array of T in shared memory with its own lock (Python's Array), shared with
/// children forked afterwards. Elements are plain memory that other processes may write:
/// access them while holding mutex() when anyone may write concurrently.
template <class T>
class SharedArray {
    static_assert(is_shared_element_v<T>,
                  "mpk::SharedArray<T>: T must be an 8..64-bit integer (not bool), float or double");

public:
    using value_type = T;
    using size_type = std::size_t;
    using iterator = T*;
    using const_iterator = const T*;

    /// `n` zeroes (n >= 1).
    explicit SharedArray(std::size_t n) : SharedArray(detail::adopt, create(n, nullptr)) {}
    /// A copy of `n` elements at `init`.
    SharedArray(const T* init, std::size_t n) : SharedArray(detail::adopt, create(n, init)) {}
    SharedArray(std::initializer_list<T> init) : SharedArray(detail::adopt, create(init.size(), init.begin())) {}
    explicit SharedArray(const std::vector<T>& init) : SharedArray(detail::adopt, create(init.size(), init.data())) {}

    /// A named array (zeroes, or a copy of `init`) that unrelated processes open with
    /// open_named; the name stays until mpk::unlink. errc::exists if taken.
    static SharedArray create_named(const std::string& name, std::size_t n, const T* init = nullptr) {
        mpk_array* a = nullptr;
        detail::check(mpk_array_create_named(name.c_str(), detail::type_code<T>(), n, init, &a),
                      "mpk_array_create_named");
        return SharedArray(detail::adopt, a);
    }

    /// Opens a named array; errc::bad_object if its element type is not T's.
    static SharedArray open_named(const std::string& name) {
        mpk_array* a = nullptr;
        detail::check(mpk_array_open_named(name.c_str(), &a), "mpk_array_open_named");
        SharedArray r(detail::adopt, a);
        if (mpk_array_type(a) != detail::type_code<T>())
            detail::throw_status(MPK_ERR_BAD_OBJECT, "mpk::SharedArray<T>::open_named: element type is not T");
        return r;
    }

    SharedArray(SharedArray&&) noexcept = default;
    SharedArray& operator=(SharedArray&&) noexcept = default;
    ~SharedArray() = default;

    std::size_t size() const noexcept { return mpk_array_len(h_.get()); }
    T* data() noexcept { return static_cast<T*>(mpk_array_data(h_.get())); }
    const T* data() const noexcept { return static_cast<const T*>(mpk_array_data(h_.get())); }
    T* begin() noexcept { return data(); }
    T* end() noexcept { return data() + size(); }
    const T* begin() const noexcept { return data(); }
    const T* end() const noexcept { return data() + size(); }
    const T* cbegin() const noexcept { return begin(); }
    const T* cend() const noexcept { return end(); }

    T& operator[](std::size_t i) noexcept {
        assert(i < size());
        return data()[i];
    }
    const T& operator[](std::size_t i) const noexcept {
        assert(i < size());
        return data()[i];
    }
    /// Bounds-checked: std::out_of_range.
    T& at(std::size_t i) {
        if (i >= size()) throw std::out_of_range("mpk::SharedArray::at");
        return data()[i];
    }
    const T& at(std::size_t i) const {
        if (i >= size()) throw std::out_of_range("mpk::SharedArray::at");
        return data()[i];
    }

    /// The array's lock (Python's get_lock()), shared by every process using it:
    ///     auto m = arr.mutex(); std::lock_guard<mpk::MutexRef> g(m);
    MutexRef mutex() const noexcept { return MutexRef(mpk_array_lock(h_.get())); }

    mpk_array* native_handle() const noexcept { return h_.get(); }

private:
    SharedArray(detail::adopt_t, mpk_array* a) noexcept : h_(a) {}

    static mpk_array* create(std::size_t n, const T* init) {
        mpk_array* a = nullptr;
        detail::check(mpk_array_create(detail::type_code<T>(), n, init, &a), "mpk_array_create");
        return a;
    }

    using Handle = detail::unique_handle<mpk_array, &mpk_array_destroy>;
    Handle h_;
};

/// One shared T with its lock (Python's Value): get() and set() take the lock, as Python's
/// .value does (they throw owner_dead holding it, like lock()); data() is the raw element.
template <class T>
class Value {
    static_assert(is_shared_element_v<T>, "mpk::Value<T>: T must be an 8..64-bit integer (not bool), float or double");

public:
    explicit Value(T init = T{}) {
        mpk_array* a = nullptr;
        detail::check(mpk_value_create(detail::type_code<T>(), &init, &a), "mpk_value_create");
        h_ = Handle(a);
    }
    Value(Value&&) noexcept = default;
    Value& operator=(Value&&) noexcept = default;
    ~Value() = default;

    /// Reads the value under its lock.
    T get() const {
        MutexRef m = mutex();
        m.lock();
        std::lock_guard<MutexRef> g(m, std::adopt_lock);
        return *data();
    }
    /// Writes the value under its lock.
    void set(T v) {
        MutexRef m = mutex();
        m.lock();
        std::lock_guard<MutexRef> g(m, std::adopt_lock);
        *data() = v;
    }

    T* data() noexcept { return static_cast<T*>(mpk_array_data(h_.get())); }
    const T* data() const noexcept { return static_cast<const T*>(mpk_array_data(h_.get())); }
    MutexRef mutex() const noexcept { return MutexRef(mpk_array_lock(h_.get())); }
    mpk_array* native_handle() const noexcept { return h_.get(); }

private:
    using Handle = detail::unique_handle<mpk_array, &mpk_array_destroy>;
    Handle h_;
};

/// Removes a name made by any create_named; open objects stay valid. errc::not_found.
inline void unlink(const std::string& name) { detail::check(mpk_shm_unlink(name.c_str()), "mpk_shm_unlink"); }

// ---------------------------------------------------------------------------------------------
// Pool
// ---------------------------------------------------------------------------------------------

/// Options of a Pool; a field left 0 takes mpkit's default (see mpk_pool_opts).
struct PoolOptions {
    std::size_t workers = 0;          ///< worker processes (0: one per CPU)
    std::size_t max_arg = 0;          ///< largest task argument in bytes (default 1024)
    std::size_t max_result = 0;       ///< largest task result in bytes (default 1024)
    std::size_t maxtasksperchild = 0; ///< replace a worker after this many tasks (0: never)
    mpk_init_fn initializer = nullptr; ///< runs once in each worker; non-zero stops it
    void* initarg = nullptr;          ///< argument of initializer
    std::size_t max_tasks = 0;        ///< unfinished or uncollected tasks at once (default 4096)
    std::size_t arena_bytes = 0;      ///< virtual bytes of the map arena (default 256 MiB)
    std::chrono::milliseconds task_timeout{0}; ///< longest one call may run (0: no limit)
};

/// A task's result, from Pool::apply_async (Python's AsyncResult). One thread at a time.
/// The destructor frees the handle; a task still running goes on.
template <class Out>
class AsyncResult {
public:
    explicit AsyncResult(mpk_async* a) noexcept : h_(a) {}
    AsyncResult(AsyncResult&&) noexcept = default;
    AsyncResult& operator=(AsyncResult&&) noexcept = default;
    ~AsyncResult() = default;

    /// Waits for the result. Throws std::system_error: errc::task_failed (the function
    /// returned non-zero or threw), worker_died, task_timeout, cancelled, closed (terminated),
    /// state (the result was taken already).
    Out get() { return *get_ms(MPK_FOREVER); }
    /// As get(), waiting at most `t`; std::nullopt if not in time (the task goes on).
    [[nodiscard]] std::optional<Out> try_get(std::chrono::milliseconds t) { return get_ms(detail::to_ms(t)); }

    /// Waits at most `t` until the task has ended, without taking its result; false if not.
    bool wait(std::chrono::milliseconds t = forever) {
        const mpk_status st = mpk_async_wait(h_.get(), detail::to_ms(t));
        if (st == MPK_ERR_TIMEOUT) return false;
        detail::check(st, "mpk_async_wait");
        return true;
    }
    /// Whether the task has ended (false once its result was taken).
    bool ready() noexcept { return mpk_async_ready(h_.get()); }
    /// Whether it ended successfully; errc::state while it runs.
    bool successful() {
        bool ok = false;
        detail::check(mpk_async_successful(h_.get(), &ok), "mpk_async_successful");
        return ok;
    }
    /// Takes the task back (get() then throws errc::cancelled); errc::state if it had ended.
    void cancel() { detail::check(mpk_async_cancel(h_.get()), "mpk_async_cancel"); }

    mpk_async* native_handle() const noexcept { return h_.get(); }

private:
    using Handle = detail::unique_handle<mpk_async, &mpk_async_destroy>;

    std::optional<Out> get_ms(std::int64_t ms) {
        Out v{};
        std::size_t len = 0;
        const mpk_status st = mpk_async_get(h_.get(), &v, sizeof(Out), &len, ms);
        if (st == MPK_ERR_TIMEOUT) return std::nullopt;
        detail::check(st, "mpk_async_get");
        if (len != sizeof(Out))
            detail::throw_status(MPK_ERR_MSGSIZE, "mpk::AsyncResult::get: result is not sizeof(Out)");
        return v;
    }

    Handle h_;
};

/// Exit code of a task whose function threw (the task fails with errc::task_failed).
inline constexpr int task_threw = 1;
/// Exit code of a task whose argument or result buffer did not have the expected size.
inline constexpr int task_bad_size = 2;

/// A pool of worker processes (Python's Pool). Create it early, from a single-threaded point of
/// the program: the workers are forked now (and replacements later, from a copy of this
/// moment), so tasks are plain function pointers `Out(*)(In)` (code of this program) and may
/// use data that existed when the pool was created; arguments and results are trivially
/// copyable values, copied to and from the workers. The destructor terminates the workers
/// unless join() was called: close() and join() first to let submitted work finish.
class Pool {
public:
    /// One worker per CPU.
    Pool() : Pool(PoolOptions{}) {}
    explicit Pool(std::size_t workers) : Pool(with_workers(workers)) {}
    explicit Pool(const PoolOptions& o) {
        mpk_pool_opts c{};
        c.struct_size = sizeof c;
        c.workers = o.workers != 0 ? o.workers : static_cast<std::size_t>(mpk_cpu_count());
        c.max_arg = o.max_arg;
        c.max_result = o.max_result;
        c.maxtasksperchild = o.maxtasksperchild;
        c.initializer = o.initializer;
        c.initarg = o.initarg;
        c.max_tasks = o.max_tasks;
        c.arena_bytes = o.arena_bytes;
        c.task_timeout_ms = o.task_timeout.count() > 0 ? static_cast<std::uint64_t>(o.task_timeout.count()) : 0;
        mpk_pool* p = nullptr;
        detail::check(mpk_pool_create(&c, &p), "mpk_pool_create");
        h_ = Handle(p);
    }
    Pool(Pool&&) noexcept = default;
    Pool& operator=(Pool&&) noexcept = default;
    ~Pool() = default;

    /// `fn` on every item, in the workers; results in item order (Python's map). Throws
    /// task_error naming the item if a task failed or its worker died.
    template <class Out, class In>
    std::vector<Out> map(Out (*fn)(In), const std::vector<std::decay_t<In>>& items, std::size_t chunksize = 0) {
        using Arg = std::decay_t<In>;
        check_types<Out, Arg>();
        std::vector<Out> out(items.size());
        if (items.empty()) return out;
        fail_task(mpk_pool_map(h_.get(), &task<Out, In>, ctx(fn), items.data(), sizeof(Arg), items.size(), out.data(),
                               sizeof(Out), chunksize),
                  "mpk_pool_map");
        return out;
    }

    /// `fn(arg)` in a worker; waits for the result (Python's apply).
    template <class Out, class In>
    Out apply(Out (*fn)(In), const std::decay_t<In>& arg) {
        using Arg = std::decay_t<In>;
        check_types<Out, Arg>();
        Out out{};
        std::size_t len = 0;
        fail_task(mpk_pool_apply(h_.get(), &task<Out, In>, ctx(fn), &arg, sizeof(Arg), &out, sizeof out, &len),
                  "mpk_pool_apply");
        return out;
    }
    /// `fn()` in a worker.
    template <class Out>
    Out apply(Out (*fn)()) {
        check_types<Out, char>();
        Out out{};
        std::size_t len = 0;
        fail_task(mpk_pool_apply(h_.get(), &task0<Out>, ctx(fn), nullptr, 0, &out, sizeof out, &len), "mpk_pool_apply");
        return out;
    }

    /// Starts `fn(arg)` in a worker (Python's apply_async). errc::no_memory at once when
    /// PoolOptions::max_tasks tasks are unfinished or uncollected.
    template <class Out, class In>
    AsyncResult<Out> apply_async(Out (*fn)(In), const std::decay_t<In>& arg) {
        using Arg = std::decay_t<In>;
        check_types<Out, Arg>();
        mpk_async* a = nullptr;
        detail::check(mpk_pool_apply_async(h_.get(), &task<Out, In>, ctx(fn), &arg, sizeof(Arg), &a),
                      "mpk_pool_apply_async");
        return AsyncResult<Out>(a);
    }
    /// Starts `fn()` in a worker.
    template <class Out>
    AsyncResult<Out> apply_async(Out (*fn)()) {
        check_types<Out, char>();
        mpk_async* a = nullptr;
        detail::check(mpk_pool_apply_async(h_.get(), &task0<Out>, ctx(fn), nullptr, 0, &a), "mpk_pool_apply_async");
        return AsyncResult<Out>(a);
    }

    /// No more tasks: the workers finish what was submitted, then exit.
    void close() { detail::check(mpk_pool_close(h_.get()), "mpk_pool_close"); }
    /// Stops the workers now; unfinished tasks end with errc::closed.
    void terminate() { detail::check(mpk_pool_terminate(h_.get()), "mpk_pool_terminate"); }
    /// Waits for the workers to exit, after close() or terminate().
    void join() { detail::check(mpk_pool_join(h_.get(), MPK_FOREVER), "mpk_pool_join"); }
    /// As join(), at most `t`; false if not in time.
    [[nodiscard]] bool try_join(std::chrono::milliseconds t) {
        const mpk_status st = mpk_pool_join(h_.get(), detail::to_ms(t));
        if (st == MPK_ERR_TIMEOUT) return false;
        detail::check(st, "mpk_pool_join");
        return true;
    }

    std::size_t workers() const noexcept { return mpk_pool_workers(h_.get()); }
    mpk_pool* native_handle() const noexcept { return h_.get(); }

private:
    using Handle = detail::unique_handle<mpk_pool, &mpk_pool_destroy>;

    static PoolOptions with_workers(std::size_t n) {
        PoolOptions o;
        o.workers = n;
        return o;
    }

    template <class Out, class Arg>
    static constexpr void check_types() {
        static_assert(std::is_trivially_copyable_v<Out> && std::is_default_constructible_v<Out>,
                      "mpk::Pool: a task's result must be trivially copyable and default-constructible");
        static_assert(std::is_trivially_copyable_v<Arg> && std::is_default_constructible_v<Arg>,
                      "mpk::Pool: a task's argument must be trivially copyable and default-constructible");
    }

    // The function pointer travels in `ctx` as an integer-valued pointer: the workers run this
    // program's code at the same addresses (they are forks of this process), and ctx is passed
    // through as is. (A function pointer may be converted to and from an integer; a direct
    // conversion to void* is only conditionally supported.)
    template <class F>
    static void* ctx(F* fn) noexcept {
        return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(fn));
    }
    template <class F>
    static F* fn_of(void* ctx) noexcept {
        return reinterpret_cast<F*>(reinterpret_cast<std::uintptr_t>(ctx));
    }

    // mpk_task_fn trampolines: run in a worker; never let an exception reach the C caller.
    template <class Out, class In>
    static int task(void* c, const void* arg, std::size_t arg_len, void* out, std::size_t out_cap,
                    std::size_t* out_len) noexcept {
        using Arg = std::decay_t<In>;
        if (arg_len != sizeof(Arg) || out_cap < sizeof(Out)) return task_bad_size;
        try {
            Arg a{};
            std::memcpy(&a, arg, sizeof a); // the argument's bytes need not be aligned for Arg
            const Out r = fn_of<Out(In)>(c)(a);
            std::memcpy(out, &r, sizeof r);
            *out_len = sizeof r;
            return 0;
        } catch (...) {
            return task_threw;
        }
    }
    template <class Out>
    static int task0(void* c, const void*, std::size_t, void* out, std::size_t out_cap, std::size_t* out_len) noexcept {
        if (out_cap < sizeof(Out)) return task_bad_size;
        try {
            const Out r = fn_of<Out()>(c)();
            std::memcpy(out, &r, sizeof r);
            *out_len = sizeof r;
            return 0;
        } catch (...) {
            return task_threw;
        }
    }

    static void fail_task(mpk_status st, const char* what) {
        if (st == MPK_OK) return;
        if (st == MPK_ERR_TASK_FAILED || st == MPK_ERR_WORKER_DIED) {
            std::size_t index = 0;
            int code = 0;
            (void)mpk_pool_last_failure(&index, &code);
            throw task_error(st, index, code,
                             std::string(what) + " (item " + std::to_string(index) + ", code " + std::to_string(code) +
                                 ")");
        }
        detail::throw_status(st, what);
    }

    Handle h_;
};

// ---------------------------------------------------------------------------------------------
// Item, Dict, List (Python's Manager().dict() and Manager().list())
// ---------------------------------------------------------------------------------------------

namespace detail {

template <class I>
std::int64_t to_i64(I v) {
    if constexpr (std::is_same_v<I, std::int64_t>) {
        return v;
    } else {
        if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
            if (v > static_cast<I>(INT64_MAX)) throw_status(MPK_ERR_INVAL, "mpk::Item: integer above INT64_MAX");
        }
        return static_cast<std::int64_t>(v);
    }
}

} // namespace detail

/// A key or value of a Dict or List, owned: None, bool, a 64-bit int, a double, a str (UTF-8)
/// or a bytes. Converts implicitly from nullptr (None), bool, any integer (an unsigned one above
/// INT64_MAX throws errc::invalid_argument), float/double, and const char* / std::string /
/// std::string_view (str); Item::bytes() makes a bytes. The containers use Python's equality
/// (1, 1.0 and true are one key); Item's own == is exact (same kind and value).
class Item {
public:
    Item() noexcept = default;
    Item(std::nullptr_t) noexcept {}
    Item(bool b) noexcept : kind_(MPK_ITEM_BOOL), i_(b ? 1 : 0) {}
    template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
    Item(I v) : kind_(MPK_ITEM_INT), i_(detail::to_i64(v)) {}
    Item(double f) noexcept : kind_(MPK_ITEM_FLOAT), f_(f) {}
    /// A str (`s` must not be NULL: errc::null_pointer).
    Item(const char* s) : kind_(MPK_ITEM_STR), s_(s ? s : throw_null()) {}
    Item(std::string s) noexcept : kind_(MPK_ITEM_STR), s_(std::move(s)) {}
    Item(std::string_view s) : kind_(MPK_ITEM_STR), s_(s) {}

    /// A bytes item holding a copy of `b`.
    static Item bytes(std::string_view b) {
        Item r(b);
        r.kind_ = MPK_ITEM_BYTES;
        return r;
    }
    static Item bytes(const void* p, std::size_t n) { return bytes(std::string_view(static_cast<const char*>(p), n)); }

    /// MPK_ITEM_NONE, _BOOL, _INT, _FLOAT, _STR or _BYTES.
    mpk_item_kind kind() const noexcept { return kind_; }
    bool is_none() const noexcept { return kind_ == MPK_ITEM_NONE; }
    /// The value of a BOOL; errc::invalid_argument for another kind (as are the others).
    bool as_bool() const {
        want(MPK_ITEM_BOOL, "mpk::Item::as_bool");
        return i_ != 0;
    }
    std::int64_t as_int() const {
        want(MPK_ITEM_INT, "mpk::Item::as_int");
        return i_;
    }
    double as_float() const {
        want(MPK_ITEM_FLOAT, "mpk::Item::as_float");
        return f_;
    }
    /// The UTF-8 of a STR.
    const std::string& as_str() const {
        want(MPK_ITEM_STR, "mpk::Item::as_str");
        return s_;
    }
    /// The bytes of a BYTES.
    const std::string& as_bytes() const {
        want(MPK_ITEM_BYTES, "mpk::Item::as_bytes");
        return s_;
    }

    friend bool operator==(const Item& a, const Item& b) noexcept {
        return a.kind_ == b.kind_ && a.i_ == b.i_ && a.s_ == b.s_ &&
               (a.kind_ != MPK_ITEM_FLOAT || a.f_ == b.f_ || (a.f_ != a.f_ && b.f_ != b.f_));
    }
    friend bool operator!=(const Item& a, const Item& b) noexcept { return !(a == b); }

    /// The C view of this item (valid while it lives, unchanged).
    mpk_item view() const noexcept {
        mpk_item it{};
        it.kind = kind_;
        it.i = i_;
        it.f = f_;
        if (kind_ == MPK_ITEM_STR || kind_ == MPK_ITEM_BYTES) {
            it.ptr = s_.data();
            it.len = s_.size();
        }
        return it;
    }

    /// A copy of a C item that a read wrote, its bytes at `buf`.
    static Item from_c(const mpk_item& it, const char* buf) {
        Item r;
        r.kind_ = it.kind;
        if (it.kind == MPK_ITEM_BOOL || it.kind == MPK_ITEM_INT) r.i_ = it.i;
        if (it.kind == MPK_ITEM_FLOAT) r.f_ = it.f;
        if (it.kind == MPK_ITEM_STR || it.kind == MPK_ITEM_BYTES) r.s_.assign(buf, it.len);
        return r;
    }

private:
    [[noreturn]] static const char* throw_null() { detail::throw_status(MPK_ERR_NULL, "mpk::Item: NULL string"); }
    void want(mpk_item_kind k, const char* what) const {
        if (kind_ != k) detail::throw_status(MPK_ERR_INVAL, what);
    }

    mpk_item_kind kind_ = MPK_ITEM_NONE;
    std::int64_t i_ = 0;
    double f_ = 0.0;
    std::string s_;
};

namespace detail {

/// Runs a C read `read(out, buf, cap, &len)` with a buffer that grows until the item fits;
/// std::nullopt for MPK_ERR_NOT_FOUND when `absent_ok`.
template <class F>
std::optional<Item> read_item(F&& read, const char* what, bool absent_ok) {
    std::string buf(64, '\0');
    for (;;) {
        mpk_item out{};
        std::size_t len = 0;
        const mpk_status st = read(&out, static_cast<void*>(buf.data()), buf.size(), &len);
        if (st == MPK_ERR_MSGSIZE) {
            buf.resize(len);
            continue;
        }
        if (absent_ok && st == MPK_ERR_NOT_FOUND) return std::nullopt;
        check(st, what);
        return Item::from_c(out, buf.data());
    }
}

/// Runs a C repr `repr(buf, cap, &len)` with a buffer that grows until it fits.
template <class F>
std::string read_repr(F&& repr, const char* what) {
    std::string s(128, '\0');
    for (;;) {
        std::size_t len = 0;
        const mpk_status st = repr(s.data(), s.size(), &len);
        if (st == MPK_ERR_MSGSIZE) {
            s.resize(len);
            continue;
        }
        check(st, what);
        s.resize(len);
        return s;
    }
}

} // namespace detail

/// A dict in shared memory (Python's Manager().dict(), with no server process): shared with
/// children forked afterwards, or named. Insertion-ordered; any thread of any process may use
/// it at once, and a process dying mid-call leaves it consistent (mpk_dict_*).
class Dict {
public:
    /// An empty dict reserving `reserve` bytes of address space (0: 1 GiB; at least 64 KiB).
    explicit Dict(std::size_t reserve = 0) {
        const mpk_dict_opts o{sizeof(mpk_dict_opts), reserve};
        mpk_dict* d = nullptr;
        detail::check(mpk_dict_create(&o, &d), "mpk_dict_create");
        h_ = Handle(d);
    }

    /// A named dict that unrelated processes open with open_named (the name stays until
    /// mpk::unlink). errc::exists if taken.
    static Dict create_named(const std::string& name, std::size_t reserve = 0) {
        const mpk_dict_opts o{sizeof(mpk_dict_opts), reserve};
        mpk_dict* d = nullptr;
        detail::check(mpk_dict_create_named(name.c_str(), &o, &d), "mpk_dict_create_named");
        return Dict(detail::adopt, d);
    }

    /// Opens a named dict; errc::not_found, errc::bad_object if it is not a dict.
    static Dict open_named(const std::string& name) {
        mpk_dict* d = nullptr;
        detail::check(mpk_dict_open_named(name.c_str(), &d), "mpk_dict_open_named");
        return Dict(detail::adopt, d);
    }

    Dict(Dict&&) noexcept = default;
    Dict& operator=(Dict&&) noexcept = default;
    ~Dict() = default;

    /// d[key] = value.
    void set(const Item& key, const Item& value) {
        const mpk_item k = key.view(), v = value.view();
        detail::check(mpk_dict_set(h_.get(), &k, &v), "mpk_dict_set");
    }
    /// d.get(key): std::nullopt if absent.
    std::optional<Item> get(const Item& key) const {
        const mpk_item k = key.view();
        return detail::read_item(
            [&](mpk_item* out, void* buf, std::size_t cap, std::size_t* len) {
                return mpk_dict_get(h_.get(), &k, out, buf, cap, len);
            },
            "mpk_dict_get", true);
    }
    /// key in d.
    bool contains(const Item& key) const {
        const mpk_item k = key.view();
        bool found = false;
        detail::check(mpk_dict_contains(h_.get(), &k, &found), "mpk_dict_contains");
        return found;
    }
    /// del d[key]; false if it was absent.
    bool erase(const Item& key) {
        const mpk_item k = key.view();
        const mpk_status st = mpk_dict_del(h_.get(), &k);
        if (st == MPK_ERR_NOT_FOUND) return false;
        detail::check(st, "mpk_dict_del");
        return true;
    }
    /// d.pop(key): std::nullopt if absent.
    std::optional<Item> pop(const Item& key) {
        const mpk_item k = key.view();
        return detail::read_item(
            [&](mpk_item* out, void* buf, std::size_t cap, std::size_t* len) {
                return mpk_dict_pop(h_.get(), &k, out, buf, cap, len);
            },
            "mpk_dict_pop", true);
    }
    /// d.setdefault(key, dflt).
    Item setdefault(const Item& key, const Item& dflt) {
        const mpk_item k = key.view(), v = dflt.view();
        return *detail::read_item(
            [&](mpk_item* out, void* buf, std::size_t cap, std::size_t* len) {
                return mpk_dict_setdefault(h_.get(), &k, &v, out, buf, cap, len);
            },
            "mpk_dict_setdefault", false);
    }
    /// d.items(), in insertion order (a cursor's walk: see mpk_dict_iter).
    std::vector<std::pair<Item, Item>> items() const {
        std::vector<std::pair<Item, Item>> r;
        mpk_dict_iter it{};
        detail::check(mpk_dict_iter_begin(h_.get(), &it), "mpk_dict_iter_begin");
        std::string kb(64, '\0'), vb(64, '\0');
        for (;;) {
            mpk_item k{}, v{};
            std::size_t kl = 0, vl = 0;
            const mpk_status st = mpk_dict_iter_next(h_.get(), &it, &k, static_cast<void*>(kb.data()), kb.size(), &kl,
                                                     &v, static_cast<void*>(vb.data()), vb.size(), &vl);
            if (st == MPK_ERR_CLOSED) return r;
            if (st == MPK_ERR_MSGSIZE) {
                kb.resize(std::max(kl, kb.size()));
                vb.resize(std::max(vl, vb.size()));
                continue;
            }
            detail::check(st, "mpk_dict_iter_next");
            r.emplace_back(Item::from_c(k, kb.data()), Item::from_c(v, vb.data()));
        }
    }
    /// len(d).
    std::size_t size() const noexcept { return mpk_dict_len(h_.get()); }
    bool empty() const noexcept { return size() == 0; }
    /// d.clear().
    void clear() { detail::check(mpk_dict_clear(h_.get()), "mpk_dict_clear"); }
    /// Python's repr(d): {1: '1', '2': 2}.
    std::string repr() const {
        return detail::read_repr([&](char* b, std::size_t cap, std::size_t* len) { return mpk_dict_repr(h_.get(), b, cap, len); },
                                 "mpk_dict_repr");
    }
    /// Operations of writers that died after committing them, finished by others.
    std::uint64_t repairs() const noexcept { return mpk_dict_repairs(h_.get()); }

    mpk_dict* native_handle() const noexcept { return h_.get(); }

private:
    using Handle = detail::unique_handle<mpk_dict, &mpk_dict_destroy>;
    Dict(detail::adopt_t, mpk_dict* d) noexcept : h_(d) {}
    Handle h_;
};

/// A list in shared memory (Python's Manager().list(), with no server process): shared with
/// children forked afterwards, or named. Indexes count from the end when negative; one out of
/// range throws errc::invalid_argument (Python's IndexError) (mpk_list_*).
class List {
public:
    /// An empty list reserving `reserve` bytes of address space (0: 1 GiB; at least 64 KiB).
    explicit List(std::size_t reserve = 0) {
        const mpk_list_opts o{sizeof(mpk_list_opts), reserve};
        mpk_list* l = nullptr;
        detail::check(mpk_list_create(&o, &l), "mpk_list_create");
        h_ = Handle(l);
    }
    /// A list holding `items`.
    List(std::initializer_list<Item> items) : List() { extend(items); }

    /// A named list that unrelated processes open with open_named (the name stays until
    /// mpk::unlink). errc::exists if taken.
    static List create_named(const std::string& name, std::size_t reserve = 0) {
        const mpk_list_opts o{sizeof(mpk_list_opts), reserve};
        mpk_list* l = nullptr;
        detail::check(mpk_list_create_named(name.c_str(), &o, &l), "mpk_list_create_named");
        return List(detail::adopt, l);
    }

    /// Opens a named list; errc::not_found, errc::bad_object if it is not a list.
    static List open_named(const std::string& name) {
        mpk_list* l = nullptr;
        detail::check(mpk_list_open_named(name.c_str(), &l), "mpk_list_open_named");
        return List(detail::adopt, l);
    }

    List(List&&) noexcept = default;
    List& operator=(List&&) noexcept = default;
    ~List() = default;

    /// l.append(v).
    void append(const Item& v) {
        const mpk_item c = v.view();
        detail::check(mpk_list_append(h_.get(), &c), "mpk_list_append");
    }
    /// l.extend(items): all of them or none.
    template <class Range>
    void extend(const Range& items) {
        std::vector<mpk_item> c;
        for (const Item& v : items) c.push_back(v.view());
        detail::check(mpk_list_extend(h_.get(), c.data(), c.size()), "mpk_list_extend");
    }
    void extend(std::initializer_list<Item> items) { extend<std::initializer_list<Item>>(items); }
    /// l.insert(index, v).
    void insert(std::int64_t index, const Item& v) {
        const mpk_item c = v.view();
        detail::check(mpk_list_insert(h_.get(), index, &c), "mpk_list_insert");
    }
    /// l[index].
    Item get(std::int64_t index) const {
        return *detail::read_item(
            [&](mpk_item* out, void* buf, std::size_t cap, std::size_t* len) {
                return mpk_list_get(h_.get(), index, out, buf, cap, len);
            },
            "mpk_list_get", false);
    }
    /// l[index] = v.
    void set(std::int64_t index, const Item& v) {
        const mpk_item c = v.view();
        detail::check(mpk_list_set(h_.get(), index, &c), "mpk_list_set");
    }
    /// l.pop(index).
    Item pop(std::int64_t index = -1) {
        return *detail::read_item(
            [&](mpk_item* out, void* buf, std::size_t cap, std::size_t* len) {
                return mpk_list_pop(h_.get(), index, out, buf, cap, len);
            },
            "mpk_list_pop", false);
    }
    /// l.index(v): errc::not_found (Python's ValueError) if absent.
    std::size_t index(const Item& v) const {
        const mpk_item c = v.view();
        std::size_t i = 0;
        detail::check(mpk_list_index(h_.get(), &c, &i), "mpk_list_index");
        return i;
    }
    /// l.remove(v): errc::not_found if absent.
    void remove(const Item& v) {
        const mpk_item c = v.view();
        detail::check(mpk_list_remove(h_.get(), &c), "mpk_list_remove");
    }
    /// len(l).
    std::size_t size() const noexcept { return mpk_list_len(h_.get()); }
    bool empty() const noexcept { return size() == 0; }
    /// l.reverse().
    void reverse() { detail::check(mpk_list_reverse(h_.get()), "mpk_list_reverse"); }
    /// l.sort(): errc::invalid_argument (and unchanged) if two items cannot be compared.
    void sort() { detail::check(mpk_list_sort(h_.get()), "mpk_list_sort"); }
    /// l.clear().
    void clear() { detail::check(mpk_list_clear(h_.get()), "mpk_list_clear"); }
    /// Python's repr(l): [9, 8, 'a', None].
    std::string repr() const {
        return detail::read_repr([&](char* b, std::size_t cap, std::size_t* len) { return mpk_list_repr(h_.get(), b, cap, len); },
                                 "mpk_list_repr");
    }
    /// Operations of writers that died after committing them, finished by others.
    std::uint64_t repairs() const noexcept { return mpk_list_repairs(h_.get()); }

    mpk_list* native_handle() const noexcept { return h_.get(); }

private:
    using Handle = detail::unique_handle<mpk_list, &mpk_list_destroy>;
    List(detail::adopt_t, mpk_list* l) noexcept : h_(l) {}
    Handle h_;
};

// ---------------------------------------------------------------------------------------------
// Miscellany
// ---------------------------------------------------------------------------------------------

/// Number of CPUs this process may run on (at least 1).
inline int cpu_count() noexcept { return mpk_cpu_count(); }

/// Whether the linked library has the shared-memory layouts this header was compiled for.
inline bool abi_compatible() noexcept { return mpk_abi_version() == MPK_ABI_VERSION; }

} // namespace mpk

#endif /* MPKIT_HPP */

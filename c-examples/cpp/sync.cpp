// Event, Condition and Barrier in C++ (c-examples/{event,condition,barrier}.c in C), printing
// what those print: a start signal for four workers, a producer/consumer box, barrier rounds.
#include <cstdint>
#include <iostream>
#include <mutex>
#include <vector>

#include "mpkit.hpp"

using namespace std::chrono_literals;

static int worker(mpk::Event& go, int i) {
    if (!go.wait(10s)) return 1;
    std::cout << "worker " << i << " started" << std::endl;
    return 0;
}

// box = [full, item], guarded by the array's own lock.
static int producer(mpk::Condition& changed, mpk::SharedArray<std::int32_t>& box) {
    mpk::MutexRef m = box.mutex();
    for (int i = 1; i <= 5; i++) {
        std::lock_guard<mpk::MutexRef> held(m);
        if (!changed.wait_for(m, [&] { return box[0] == 0; }, 10s)) return 1;
        box[1] = i * i;
        box[0] = 1;
        changed.notify_all();
    }
    return 0;
}

static int party(mpk::Barrier& b) {
    for (int round = 0; round < 3; round++)
        if (b.wait(10s) == 0) std::cout << "round " << round << ": all 4 parties arrived" << std::endl;
    return 0;
}

int main() {
    try {
        int failed = 0;
        mpk::Event go;
        std::vector<mpk::Process> procs;
        for (int i = 0; i < 4; i++) procs.emplace_back(worker, go, i);
        go.set();
        for (mpk::Process& p : procs) failed |= p.join() != 0;
        std::cout << "all 4 workers started, event set: " << (go.is_set() ? "true" : "false") << std::endl;

        mpk::Condition changed;
        mpk::SharedArray<std::int32_t> box(2);
        mpk::MutexRef m = box.mutex();
        mpk::Process prod(producer, changed, box);
        int sum = 0;
        for (int i = 0; i < 5; i++) {
            std::lock_guard<mpk::MutexRef> held(m);
            if (!changed.wait_for(m, [&] { return box[0] == 1; }, 10s)) return 1;
            std::cout << "consumed " << box[1] << std::endl;
            sum += box[1];
            box[0] = 0;
            changed.notify_all();
        }
        failed |= prod.join() != 0;
        std::cout << "sum " << sum << std::endl;

        mpk::Barrier b(4);
        std::vector<mpk::Process> parties;
        for (int i = 0; i < 3; i++) parties.emplace_back(party, b);
        failed |= party(b);
        for (mpk::Process& p : parties) failed |= p.join() != 0;
        std::cout << "broken: " << (b.broken() ? "true" : "false") << std::endl;
        return failed;
    } catch (const std::exception& e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
}

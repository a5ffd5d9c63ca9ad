// The Lock example with an RLock, in C++ (c-examples/rlock.c in C): ten processes print under
// one lock, each taking it twice, recursively.
#include <iostream>
#include <mutex>
#include <vector>

#include "mpkit.hpp"

static int greet(mpk::RMutex& lock, int i) {
    std::lock_guard<mpk::RMutex> again(lock); // already ours: depth 2
    std::cout << "rlock: hello world " << i << " at depth " << lock.depth() << std::endl;
    return 0;
}

static int f(mpk::RMutex& lock, int i) {
    std::lock_guard<mpk::RMutex> guard(lock);
    return greet(lock, i);
}

int main() {
    try {
        mpk::RMutex lock;
        std::vector<mpk::Process> procs;
        for (int num = 0; num < 10; num++) procs.emplace_back(f, lock, num);
        int failed = 0;
        for (mpk::Process& p : procs)
            if (p.join() != 0) failed = 1;
        return failed;
    } catch (const std::exception& e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
}

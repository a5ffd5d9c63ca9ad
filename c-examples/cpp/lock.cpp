// The tutorial's Lock example, in C++ (c-examples/lock.c in C): ten processes print under one lock.
//     lock = Lock(); for num in range(10): Process(target=f, args=(lock, num)).start()
#include <iostream>
#include <mutex>
#include <vector>

#include "mpkit.hpp"

static int f(mpk::Mutex& lock, int i) {
    std::lock_guard<mpk::Mutex> guard(lock); // a robust lock: see mpkit.hpp on owner death
    std::cout << "hello world " << i << std::endl;
    return 0;
}

int main() {
    try {
        mpk::Mutex lock;
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

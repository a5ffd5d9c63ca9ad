// A Semaphore limiting how many processes are inside at once, in C++ (c-examples/semaphore.c
// in C): eight processes, three permits.
#include <chrono>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "mpkit.hpp"

static int f(mpk::Semaphore& sem, int num) {
    std::lock_guard<mpk::Semaphore> permit(sem);
    std::cout << "process " << num << " enters" << std::endl;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::cout << "process " << num << " leaves" << std::endl;
    return 0;
}

int main() {
    try {
        mpk::Semaphore sem(3);
        std::vector<mpk::Process> procs;
        for (int num = 0; num < 8; num++) procs.emplace_back(f, sem, num);
        int failed = 0;
        for (mpk::Process& p : procs)
            if (p.join() != 0) failed = 1;
        return failed || sem.value() != 3;
    } catch (const std::exception& e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
}

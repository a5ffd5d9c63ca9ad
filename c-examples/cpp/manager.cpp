// The tutorial's Manager example: a child sets three keys of a shared dict and reverses a
// shared list, the parent prints both. No server process: they live in shared memory.
#include "mpkit.hpp"

#include <iostream>

int main() {
    mpk::Dict d;
    mpk::List l{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    mpk::Process p([&] {
        d.set(1, "1");
        d.set("2", 2);
        d.set(0.25, nullptr);
        l.reverse();
        return 0;
    });
    if (p.join() != 0) return 1;
    std::cout << d.repr() << '\n' << l.repr() << std::endl;
    return 0;
}

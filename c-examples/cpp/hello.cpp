// The tutorial's first Process example, in C++ (c-examples/hello.c in C):
//     p = Process(target=f, args=('john',)); p.start(); p.join()      -> hello john
#include <iostream>

#include "mpkit.hpp"

static int f(const char* name) {
    std::cout << "hello " << name << std::endl; // endl flushes: the child ends with _exit()
    return 0;
}

int main() {
    try {
        mpk::Process p(f, "john"); // forks now; the child runs f("john")
        const int code = p.join();
        if (code != 0) {
            std::cerr << "child failed: exit code " << code << '\n';
            return 1;
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
}

// The tutorial's first example, in C++ (c-examples/pool_map.c in C):
//     def f(x): return x*x
//     p = Pool(5); print(p.map(f, [1, 2, 3]))          -> [1, 4, 9]
#include <cstdint>
#include <iostream>
#include <vector>

#include "mpkit.hpp"

// A task: runs in a worker process, so a plain function (code of this program).
static std::int64_t f(std::int64_t x) { return x * x; }

int main() {
    try {
        mpk::Pool p(5);
        const std::vector<std::int64_t> results = p.map(f, {1, 2, 3});
        std::cout << '[';
        for (std::size_t i = 0; i < results.size(); i++) std::cout << (i ? ", " : "") << results[i];
        std::cout << "]\n";
        p.close();
        p.join();
        return 0;
    } catch (const std::exception& e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
}

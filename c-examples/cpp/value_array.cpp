// The tutorial's shared-memory example, in C++ (c-examples/value_array.c in C):
//     num = Value('d', 0.0); arr = Array('i', range(10))
//     child: num.value = 3.1415927; a[i] = -a[i]          parent prints num.value and arr[:]
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <numeric>

#include "mpkit.hpp"

static int f(mpk::Value<double>& num, mpk::SharedArray<std::int32_t>& arr) {
    num.set(3.1415927); // under the value's own lock, as Python's .value
    mpk::MutexRef lock = arr.mutex(); // like Python's Array, the array carries its own lock
    std::lock_guard<mpk::MutexRef> guard(lock);
    for (std::int32_t& x : arr) x = -x;
    return 0;
}

int main() {
    try {
        mpk::Value<double> num(0.0);
        mpk::SharedArray<std::int32_t> arr(10);
        std::iota(arr.begin(), arr.end(), 0);

        mpk::Process p(f, num, arr);
        if (p.join() != 0) {
            std::cerr << "child failed\n";
            return 1;
        }

        std::cout << std::setprecision(8) << num.get() << '\n';
        std::cout << '[';
        for (std::size_t k = 0; k < arr.size(); k++) std::cout << (k ? ", " : "") << arr[k];
        std::cout << "]\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
}

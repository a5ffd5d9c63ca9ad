// The tutorial's Queue example, in C++ (c-examples/queue.c in C):
//     q = Queue(); p = Process(target=f, args=(q,)); p.start(); print q.get(); p.join()
// where f puts [42, None, 'hello']. A Queue<T> carries trivially copyable T; here, a text.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>

#include "mpkit.hpp"

using namespace std::chrono_literals;

struct Message {
    char text[64];
};

static int f(mpk::Queue<Message>& q) {
    Message m{};
    std::snprintf(m.text, sizeof m.text, "%s", "[42, None, 'hello']");
    q.put(m);
    return 0;
}

int main() {
    try {
        mpk::Queue<Message> q(16); // 16 messages
        mpk::Process p(f, q);      // the child sees the same shared queue
        const std::optional<Message> m = q.try_get(10s);
        if (!m) {
            std::cerr << "no message within 10 s\n";
            return 1;
        }
        std::cout << m->text << '\n';
        return p.join() == 0 ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
}

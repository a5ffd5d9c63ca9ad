// The tutorial's Pipe example, in C++ (c-examples/pipe.c in C):
//     parent_conn, child_conn = Pipe(); p = Process(target=f, args=(child_conn,)); p.start()
//     print parent_conn.recv(); p.join()
// where f sends [42, None, 'hello'] and closes its end. As with Python's Pipe (and with file
// descriptors), after the fork both processes hold both ends: each closes the one it does not use.
#include <chrono>
#include <iostream>
#include <optional>
#include <string>

#include "mpkit.hpp"

using namespace std::chrono_literals;

static int f(mpk::Connection& parent_conn, mpk::Connection& child_conn) {
    parent_conn.close(); // the child's copy of the parent's end
    child_conn.send_bytes("[42, None, 'hello']");
    child_conn.close();
    return 0;
}

int main() {
    try {
        auto [parent_conn, child_conn] = mpk::Pipe(64 * 1024);
        mpk::Process p(f, parent_conn, child_conn);
        child_conn.close(); // the parent's copy of the child's end
        const std::optional<std::string> msg = parent_conn.try_recv_bytes(10s);
        if (!msg) {
            std::cerr << "no message within 10 s\n";
            return 1;
        }
        std::cout << *msg << '\n';
        // The child closed its end and exits: the next receive is end-of-file.
        try {
            (void)parent_conn.try_recv_bytes(10s);
            std::cerr << "expected end-of-file\n";
            return 1;
        } catch (const std::system_error& e) {
            if (e.code() != mpk::errc::closed) throw;
        }
        return p.join() == 0 ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
}

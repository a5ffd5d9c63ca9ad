/* The tutorial's Pipe example:
 *     parent_conn, child_conn = Pipe(); p = Process(target=f, args=(child_conn,)); p.start()
 *     print parent_conn.recv(); p.join()
 * where f sends [42, None, 'hello'] and closes its end. As with Python's Pipe (and with file
 * descriptors), after the fork both processes hold both ends: each closes the one it does not use.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "mpkit.h"

static mpk_conn *parent_conn, *child_conn;

static int f(void *arg) {
    (void)arg;
    mpk_conn_close(parent_conn); /* the child's copy of the parent's end */
    const char *msg = "[42, None, 'hello']";
    mpk_status st = mpk_conn_send(child_conn, msg, strlen(msg), MPK_FOREVER);
    mpk_conn_close(child_conn);
    return st == MPK_OK ? 0 : 1;
}

int main(void) {
    mpk_status st = mpk_pipe_create(64 * 1024, true, &parent_conn, &child_conn);
    if (st != MPK_OK) {
        fprintf(stderr, "mpk_pipe_create: %s\n", mpk_strerror(st));
        return 1;
    }
    mpk_process *p;
    st = mpk_process_start(f, NULL, NULL, &p);
    if (st != MPK_OK) {
        fprintf(stderr, "mpk_process_start: %s\n", mpk_strerror(st));
        return 1;
    }
    mpk_conn_close(child_conn); /* the parent's copy of the child's end */
    char buf[256];
    size_t len = 0;
    st = mpk_conn_recv(parent_conn, buf, sizeof buf, &len, 10000);
    if (st != MPK_OK) {
        fprintf(stderr, "mpk_conn_recv: %s\n", mpk_strerror(st));
        return 1;
    }
    printf("%.*s\n", (int)len, buf);
    /* The child closed its end and exits: the next receive is end-of-file. */
    if (mpk_conn_recv(parent_conn, buf, sizeof buf, &len, 10000) != MPK_ERR_CLOSED) {
        fprintf(stderr, "expected end-of-file\n");
        return 1;
    }
    st = mpk_process_join(p, MPK_FOREVER);
    mpk_process_destroy(p);
    mpk_conn_destroy(parent_conn);
    mpk_conn_destroy(child_conn);
    return st == MPK_OK ? 0 : 1;
}

/* The tutorial's Queue example:
 *     q = Queue(); p = Process(target=f, args=(q,)); p.start(); print q.get(); p.join()
 * where f puts [42, None, 'hello']. Messages are bytes; here, that text.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "mpkit.h"

static mpk_queue *q;

static int f(void *arg) {
    (void)arg;
    const char *msg = "[42, None, 'hello']";
    return mpk_queue_put(q, msg, strlen(msg), MPK_FOREVER) == MPK_OK ? 0 : 1;
}

int main(void) {
    mpk_status st = mpk_queue_create(16, 256, &q); /* 16 messages of up to 256 bytes */
    if (st != MPK_OK) {
        fprintf(stderr, "mpk_queue_create: %s\n", mpk_strerror(st));
        return 1;
    }
    mpk_process *p;
    st = mpk_process_start(f, NULL, NULL, &p);
    if (st != MPK_OK) {
        fprintf(stderr, "mpk_process_start: %s\n", mpk_strerror(st));
        return 1;
    }
    char buf[256];
    size_t len = 0;
    st = mpk_queue_get(q, buf, sizeof buf, &len, 10000);
    if (st != MPK_OK) {
        fprintf(stderr, "mpk_queue_get: %s\n", mpk_strerror(st));
        return 1;
    }
    printf("%.*s\n", (int)len, buf);
    st = mpk_process_join(p, MPK_FOREVER);
    mpk_process_destroy(p);
    mpk_queue_destroy(q);
    return st == MPK_OK ? 0 : 1;
}

/* The tutorial's first Process example:
 *     p = Process(target=f, args=('john',)); p.start(); p.join()      -> hello john
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>

#include "mpkit.h"

static int f(void *arg) {
    printf("hello %s\n", (const char *)arg);
    fflush(stdout); /* the child ends with _exit(), which does not flush stdio */
    return 0;
}

int main(void) {
    mpk_process *p;
    mpk_status st = mpk_process_start(f, "john", NULL, &p);
    if (st != MPK_OK) {
        fprintf(stderr, "mpk_process_start: %s\n", mpk_strerror(st));
        return 1;
    }
    st = mpk_process_join(p, MPK_FOREVER);
    int code = -1;
    if (st == MPK_OK) st = mpk_process_exitcode(p, &code);
    mpk_process_destroy(p);
    if (st != MPK_OK || code != 0) {
        fprintf(stderr, "child failed: %s (exit code %d)\n", mpk_strerror(st), code);
        return 1;
    }
    return 0;
}

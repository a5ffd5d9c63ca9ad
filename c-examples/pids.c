/* The tutorial's process-id example: info('main line') in the parent, then f('john') in a child,
 * each printing its title, the parent's pid and its own pid. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <unistd.h>

#include "mpkit.h"

static void info(const char *title) {
    printf("%s\n", title);
    printf("module name: %s\n", "__main__");
    printf("parent process: %d\n", (int)getppid());
    printf("process id: %d\n", (int)getpid());
    fflush(stdout);
}

static int f(void *arg) {
    info("function f");
    printf("hello %s\n", (const char *)arg);
    fflush(stdout);
    return 0;
}

int main(void) {
    info("main line"); /* flushed before the fork, so the child does not print it again */
    mpk_process *p;
    mpk_status st = mpk_process_start(f, "john", NULL, &p);
    if (st != MPK_OK) {
        fprintf(stderr, "mpk_process_start: %s\n", mpk_strerror(st));
        return 1;
    }
    st = mpk_process_join(p, MPK_FOREVER);
    mpk_process_destroy(p);
    return st == MPK_OK ? 0 : 1;
}

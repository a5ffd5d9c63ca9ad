/* The tutorial's Lock example: ten processes print under one lock.
 *     lock = Lock(); for num in range(10): Process(target=f, args=(lock, num)).start()
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>

#include "mpkit.h"

static mpk_mutex *lock;

static int f(void *arg) {
    int i = (int)(intptr_t)arg;
    if (mpk_mutex_lock(lock, MPK_FOREVER) != MPK_OK) return 1;
    printf("hello world %d\n", i);
    fflush(stdout);
    return mpk_mutex_unlock(lock) == MPK_OK ? 0 : 1;
}

int main(void) {
    mpk_status st = mpk_mutex_create(&lock);
    if (st != MPK_OK) {
        fprintf(stderr, "mpk_mutex_create: %s\n", mpk_strerror(st));
        return 1;
    }
    mpk_process *procs[10];
    for (int num = 0; num < 10; num++) {
        st = mpk_process_start(f, (void *)(intptr_t)num, NULL, &procs[num]);
        if (st != MPK_OK) {
            fprintf(stderr, "mpk_process_start: %s\n", mpk_strerror(st));
            return 1;
        }
    }
    int failed = 0;
    for (int num = 0; num < 10; num++) {
        int code = -1;
        if (mpk_process_join(procs[num], MPK_FOREVER) != MPK_OK ||
            mpk_process_exitcode(procs[num], &code) != MPK_OK || code != 0)
            failed = 1;
        mpk_process_destroy(procs[num]);
    }
    mpk_mutex_destroy(lock);
    return failed;
}

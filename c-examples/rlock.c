/* The tutorial's Lock example with an RLock: ten processes print under one lock, each taking
 * it twice, recursively (as a function that locks calling another that locks again).
 *     lock = RLock(); for num in range(10): Process(target=f, args=(lock, num)).start()
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>

#include "mpkit.h"

static mpk_rmutex *lock;

static int greet(int i) {
    if (mpk_rmutex_lock(lock, MPK_FOREVER) != MPK_OK) return 1; /* already ours: depth 2 */
    printf("rlock: hello world %d at depth %u\n", i, (unsigned)mpk_rmutex_depth(lock));
    fflush(stdout);
    return mpk_rmutex_unlock(lock) == MPK_OK ? 0 : 1;
}

static int f(void *arg) {
    int i = (int)(intptr_t)arg;
    if (mpk_rmutex_lock(lock, MPK_FOREVER) != MPK_OK) return 1;
    int failed = greet(i);
    if (mpk_rmutex_unlock(lock) != MPK_OK) failed = 1;
    return failed;
}

int main(void) {
    mpk_status st = mpk_rmutex_create(&lock);
    if (st != MPK_OK) {
        fprintf(stderr, "mpk_rmutex_create: %s\n", mpk_strerror(st));
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
    mpk_rmutex_destroy(lock);
    return failed;
}

/* A Semaphore limiting how many processes are inside at once: eight processes, three permits.
 *     sem = Semaphore(3)
 *     def f(sem, num):
 *         with sem: print('process', num, 'enters'); time.sleep(0.05); print('process', num, 'leaves')
 * Each prints "enters" after taking a permit and "leaves" before giving it back, so the output
 * never shows more than three processes inside.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "mpkit.h"

#define PROCS 8
#define PERMITS 3

static mpk_sem *sem;

static int f(void *arg) {
    int num = (int)(intptr_t)arg;
    if (mpk_sem_acquire(sem, 30000) != MPK_OK) return 1;
    printf("process %d enters\n", num);
    fflush(stdout);
    struct timespec t = {0, 50 * 1000 * 1000};
    while (nanosleep(&t, &t) != 0) {
    }
    printf("process %d leaves\n", num);
    fflush(stdout);
    return mpk_sem_release(sem) == MPK_OK ? 0 : 1;
}

int main(void) {
    mpk_status st = mpk_sem_create(PERMITS, 0, &sem);
    if (st != MPK_OK) {
        fprintf(stderr, "mpk_sem_create: %s\n", mpk_strerror(st));
        return 1;
    }
    mpk_process *procs[PROCS];
    for (int num = 0; num < PROCS; num++) {
        st = mpk_process_start(f, (void *)(intptr_t)num, NULL, &procs[num]);
        if (st != MPK_OK) {
            fprintf(stderr, "mpk_process_start: %s\n", mpk_strerror(st));
            return 1;
        }
    }
    int failed = 0;
    for (int num = 0; num < PROCS; num++) {
        int code = -1;
        if (mpk_process_join(procs[num], MPK_FOREVER) != MPK_OK ||
            mpk_process_exitcode(procs[num], &code) != MPK_OK || code != 0)
            failed = 1;
        mpk_process_destroy(procs[num]);
    }
    if (mpk_sem_value(sem) != PERMITS) failed = 1;
    mpk_sem_destroy(sem);
    return failed;
}

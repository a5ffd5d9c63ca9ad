/* An Event as a start signal: four processes wait on it, the parent sets it, all go.
 *     go = Event(); for i in range(4): Process(target=worker, args=(go, i)).start(); go.set()
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>

#include "mpkit.h"

#define WORKERS 4

static mpk_event *go;

static int worker(void *arg) {
    int i = (int)(intptr_t)arg;
    if (mpk_event_wait(go, 10000) != MPK_OK) return 1; /* at most 10 s */
    printf("worker %d started\n", i);
    fflush(stdout);
    return 0;
}

int main(void) {
    mpk_status st = mpk_event_create(&go);
    if (st != MPK_OK) {
        fprintf(stderr, "mpk_event_create: %s\n", mpk_strerror(st));
        return 1;
    }
    mpk_process *procs[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        st = mpk_process_start(worker, (void *)(intptr_t)i, NULL, &procs[i]);
        if (st != MPK_OK) {
            fprintf(stderr, "mpk_process_start: %s\n", mpk_strerror(st));
            return 1;
        }
    }
    mpk_event_set(go); /* wakes every waiter at once */
    int failed = 0;
    for (int i = 0; i < WORKERS; i++) {
        int code = -1;
        if (mpk_process_join(procs[i], MPK_FOREVER) != MPK_OK || mpk_process_exitcode(procs[i], &code) != MPK_OK ||
            code != 0)
            failed = 1;
        mpk_process_destroy(procs[i]);
    }
    printf("all %d workers started, event set: %s\n", WORKERS, mpk_event_is_set(go) ? "true" : "false");
    mpk_event_destroy(go);
    return failed;
}

/* A Barrier of four processes for three rounds; the party that gets index 0 reports each round.
 *     b = Barrier(4); for r in range(3): if b.wait() == 0: print(...)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>

#include "mpkit.h"

#define PARTIES 4
#define ROUNDS 3

static mpk_barrier *barrier;

static int party(void *arg) {
    (void)arg;
    for (int round = 0; round < ROUNDS; round++) {
        uint32_t index;
        if (mpk_barrier_wait(barrier, 10000, &index) != MPK_OK) return 1;
        if (index == 0) { /* exactly one party per round */
            printf("round %d: all %d parties arrived\n", round, PARTIES);
            fflush(stdout);
        }
    }
    return 0;
}

int main(void) {
    mpk_status st = mpk_barrier_create(PARTIES, &barrier);
    if (st != MPK_OK) {
        fprintf(stderr, "mpk_barrier_create: %s\n", mpk_strerror(st));
        return 1;
    }
    mpk_process *procs[PARTIES - 1];
    for (int i = 0; i < PARTIES - 1; i++) {
        st = mpk_process_start(party, NULL, NULL, &procs[i]);
        if (st != MPK_OK) {
            fprintf(stderr, "mpk_process_start: %s\n", mpk_strerror(st));
            return 1;
        }
    }
    int failed = party(NULL); /* the parent is the fourth party */
    for (int i = 0; i < PARTIES - 1; i++) {
        int code = -1;
        if (mpk_process_join(procs[i], MPK_FOREVER) != MPK_OK || mpk_process_exitcode(procs[i], &code) != MPK_OK ||
            code != 0)
            failed = 1;
        mpk_process_destroy(procs[i]);
    }
    printf("broken: %s\n", mpk_barrier_broken(barrier) ? "true" : "false");
    mpk_barrier_destroy(barrier);
    return failed;
}

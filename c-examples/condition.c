/* A Condition: a producer process puts five items into a one-slot box, the parent consumes them.
 *     with cond: cond.wait_for(lambda: box.full); take(); cond.notify()
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>

#include "mpkit.h"

#define ITEMS 5

struct box {
    mpk_mutex lock; /* in place, in shared memory */
    mpk_cond changed;
    int32_t full; /* 0 or 1, under `lock` */
    int32_t item;
};

static struct box *box;

static int producer(void *arg) {
    (void)arg;
    for (int i = 1; i <= ITEMS; i++) {
        if (mpk_mutex_lock(&box->lock, MPK_FOREVER) != MPK_OK) return 1;
        while (box->full) /* a predicate loop: wake-ups may be spurious */
            if (mpk_cond_wait(&box->changed, &box->lock, 10000) != MPK_OK) return 1;
        box->item = i * i;
        box->full = 1;
        mpk_cond_notify_all(&box->changed);
        mpk_mutex_unlock(&box->lock);
    }
    return 0;
}

int main(void) {
    mpk_shm *shm;
    mpk_status st = mpk_shm_create(sizeof *box, &shm);
    if (st != MPK_OK) {
        fprintf(stderr, "mpk_shm_create: %s\n", mpk_strerror(st));
        return 1;
    }
    box = mpk_shm_data(shm); /* zeroed, 64-byte aligned */
    if (mpk_mutex_init(&box->lock) != MPK_OK || mpk_cond_init(&box->changed) != MPK_OK) return 1;
    mpk_process *p;
    st = mpk_process_start(producer, NULL, NULL, &p);
    if (st != MPK_OK) {
        fprintf(stderr, "mpk_process_start: %s\n", mpk_strerror(st));
        return 1;
    }
    int failed = 0, sum = 0;
    for (int i = 0; i < ITEMS && !failed; i++) {
        if (mpk_mutex_lock(&box->lock, MPK_FOREVER) != MPK_OK) return 1;
        while (!box->full && !failed)
            failed = mpk_cond_wait(&box->changed, &box->lock, 10000) != MPK_OK;
        if (!failed) {
            printf("consumed %d\n", box->item);
            sum += box->item;
            box->full = 0;
            mpk_cond_notify_all(&box->changed);
        }
        mpk_mutex_unlock(&box->lock);
    }
    int code = -1;
    if (mpk_process_join(p, MPK_FOREVER) != MPK_OK || mpk_process_exitcode(p, &code) != MPK_OK || code != 0) failed = 1;
    mpk_process_destroy(p);
    printf("sum %d\n", sum);
    mpk_shm_destroy(shm);
    return failed;
}

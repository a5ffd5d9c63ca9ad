/* The tutorial's Pool(processes=4) walk-through: map over range(10), imap_unordered,
 * apply_async(f, 20) -> 400, the pid of a worker, four pids, and a 10-second sleep whose
 * get(timeout=1) gives up with the TimeoutError line.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "mpkit.h"

static int f(void *ctx, const void *arg, size_t arg_len, void *out, size_t out_cap, size_t *out_len) {
    (void)ctx;
    if (arg_len != sizeof(int64_t) || out_cap < sizeof(int64_t)) return 1;
    int64_t x = *(const int64_t *)arg;
    *(int64_t *)out = x * x;
    *out_len = sizeof(int64_t);
    return 0;
}

/* os.getpid, as a task */
static int getpid_task(void *ctx, const void *arg, size_t arg_len, void *out, size_t out_cap, size_t *out_len) {
    (void)ctx, (void)arg, (void)arg_len;
    if (out_cap < sizeof(int32_t)) return 1;
    *(int32_t *)out = (int32_t)getpid();
    *out_len = sizeof(int32_t);
    return 0;
}

/* time.sleep, as a task: sleeps `*arg` seconds */
static int sleep_task(void *ctx, const void *arg, size_t arg_len, void *out, size_t out_cap, size_t *out_len) {
    (void)ctx, (void)out, (void)out_cap;
    if (arg_len != sizeof(int32_t)) return 1;
    struct timespec ts = {*(const int32_t *)arg, 0};
    while (nanosleep(&ts, &ts) != 0) {
    }
    *out_len = 0;
    return 0;
}

static int check(mpk_status st, const char *what) {
    if (st != MPK_OK) fprintf(stderr, "%s: %s\n", what, mpk_strerror(st));
    return st == MPK_OK;
}

int main(void) {
    mpk_pool_opts opts = {0}; /* every field 0: its default */
    opts.struct_size = sizeof opts;
    opts.workers = 4; /* start 4 worker processes */
    mpk_pool *pool;
    if (!check(mpk_pool_create(&opts, &pool), "mpk_pool_create")) return 1;

    /* print "[0, 1, 4,..., 81]" */
    int64_t items[10], squares[10];
    for (int i = 0; i < 10; i++) items[i] = i;
    if (!check(mpk_pool_map(pool, f, NULL, items, sizeof(int64_t), 10, squares, sizeof(int64_t), 0), "map")) return 1;
    printf("[");
    for (int i = 0; i < 10; i++) printf("%s%lld", i ? ", " : "", (long long)squares[i]);
    printf("]\n");

    /* print same numbers in arbitrary order */
    mpk_iter *it;
    if (!check(mpk_pool_imap_unordered(pool, f, NULL, items, sizeof(int64_t), 10, 1, &it), "imap_unordered")) return 1;
    size_t index, len;
    int64_t value;
    mpk_status st;
    while ((st = mpk_iter_next(it, &index, &value, sizeof value, &len, MPK_FOREVER)) == MPK_OK)
        printf("%lld\n", (long long)value);
    mpk_iter_destroy(it);
    if (st != MPK_ERR_CLOSED) return check(st, "mpk_iter_next"), 1;

    /* evaluate "f(20)" asynchronously */
    mpk_async *res;
    int64_t twenty = 20, four_hundred;
    if (!check(mpk_pool_apply_async(pool, f, NULL, &twenty, sizeof twenty, &res), "apply_async")) return 1;
    if (!check(mpk_async_get(res, &four_hundred, sizeof four_hundred, &len, 1000), "get")) return 1;
    printf("%lld\n", (long long)four_hundred); /* prints "400" */
    mpk_async_destroy(res);

    /* evaluate "os.getpid()" asynchronously */
    int32_t pid;
    if (!check(mpk_pool_apply_async(pool, getpid_task, NULL, NULL, 0, &res), "apply_async")) return 1;
    if (!check(mpk_async_get(res, &pid, sizeof pid, &len, 1000), "get")) return 1;
    printf("%d\n", (int)pid); /* prints the PID of that process */
    mpk_async_destroy(res);

    /* launching multiple evaluations asynchronously *may* use more processes */
    mpk_async *many[4];
    for (int i = 0; i < 4; i++)
        if (!check(mpk_pool_apply_async(pool, getpid_task, NULL, NULL, 0, &many[i]), "apply_async")) return 1;
    printf("[");
    for (int i = 0; i < 4; i++) {
        if (!check(mpk_async_get(many[i], &pid, sizeof pid, &len, 1000), "get")) return 1;
        printf("%s%d", i ? ", " : "", (int)pid);
        mpk_async_destroy(many[i]);
    }
    printf("]\n");

    /* make a single worker sleep for 10 secs */
    int32_t ten = 10;
    if (!check(mpk_pool_apply_async(pool, sleep_task, NULL, &ten, sizeof ten, &res), "apply_async")) return 1;
    st = mpk_async_get(res, NULL, 0, &len, 1000);
    if (st == MPK_ERR_TIMEOUT)
        printf("We lacked patience and got a multiprocessing.TimeoutError\n");
    else
        printf("unexpected: %s\n", mpk_strerror(st));
    mpk_async_destroy(res);

    mpk_pool_terminate(pool); /* do not wait for the sleeper */
    st = mpk_pool_join(pool, MPK_FOREVER);
    mpk_pool_destroy(pool);
    return st == MPK_OK ? 0 : 1;
}

/* Beyond the tutorial (Python's Pool has no time limit; pebble's schedule(timeout=) is the
 * model): a task that would sleep 10 s is stopped after 1 s, its worker replaced, and the pool
 * then serves a map, a map_async, and a task cancelled while it runs.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "mpkit.h"

/* A task: sleeps `*arg` milliseconds, returns them. Runs in a worker process. */
static int nap(void *ctx, const void *arg, size_t arg_len, void *out, size_t out_cap, size_t *out_len) {
    (void)ctx;
    if (arg_len != sizeof(int64_t) || out_cap < sizeof(int64_t)) return 1;
    int64_t ms = *(const int64_t *)arg;
    struct timespec t = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0) {
    }
    *(int64_t *)out = ms;
    *out_len = sizeof(int64_t);
    return 0;
}

static int square(void *ctx, const void *arg, size_t arg_len, void *out, size_t out_cap, size_t *out_len) {
    (void)ctx;
    if (arg_len != sizeof(int64_t) || out_cap < sizeof(int64_t)) return 1;
    int64_t x = *(const int64_t *)arg;
    *(int64_t *)out = x * x;
    *out_len = sizeof(int64_t);
    return 0;
}

static int fail(const char *what, mpk_status st) {
    fprintf(stderr, "%s: %s\n", what, mpk_strerror(st));
    return 1;
}

int main(void) {
    mpk_pool_opts opts = {0};
    opts.struct_size = sizeof opts;
    opts.workers = 2;
    mpk_pool *p;
    mpk_status st = mpk_pool_create(&opts, &p);
    if (st != MPK_OK) return fail("mpk_pool_create", st);

    int64_t ten_s = 10000, got;
    size_t len;
    mpk_async *a;
    st = mpk_pool_apply_async_timeout(p, nap, NULL, &ten_s, sizeof ten_s, 1000, &a);
    if (st != MPK_OK) return fail("mpk_pool_apply_async_timeout", st);
    st = mpk_async_get(a, &got, sizeof got, &len, MPK_FOREVER);
    mpk_async_destroy(a);
    printf("sleep 10 s with a 1000 ms limit -> %s\n", mpk_strerror(st));
    if (st != MPK_ERR_TASK_TIMEOUT) return 1;

    int64_t items[4] = {1, 2, 3, 4}, results[4];
    st = mpk_pool_map(p, square, NULL, items, sizeof items[0], 4, results, sizeof results[0], 0);
    if (st != MPK_OK) return fail("mpk_pool_map", st);
    printf("then map -> [%lld, %lld, %lld, %lld]\n", (long long)results[0], (long long)results[1],
           (long long)results[2], (long long)results[3]);

    int64_t later[4] = {0};
    st = mpk_pool_map_async(p, square, NULL, items, sizeof items[0], 4, later, sizeof later[0], 0, &a);
    if (st != MPK_OK) return fail("mpk_pool_map_async", st);
    st = mpk_async_get(a, NULL, 0, &len, MPK_FOREVER);
    mpk_async_destroy(a);
    if (st != MPK_OK) return fail("mpk_async_get (map)", st);
    printf("map_async -> %zu results [%lld, %lld, %lld, %lld]\n", len, (long long)later[0], (long long)later[1],
           (long long)later[2], (long long)later[3]);

    st = mpk_pool_apply_async(p, nap, NULL, &ten_s, sizeof ten_s, &a);
    if (st != MPK_OK) return fail("mpk_pool_apply_async", st);
    st = mpk_async_cancel(a);
    if (st != MPK_OK) return fail("mpk_async_cancel", st);
    st = mpk_async_get(a, &got, sizeof got, &len, MPK_FOREVER);
    printf("cancelled task -> %s\n", mpk_strerror(st));
    printf("cancel again -> %s\n", mpk_strerror(mpk_async_cancel(a)));
    mpk_async_destroy(a);

    mpk_pool_close(p);
    st = mpk_pool_join(p, MPK_FOREVER);
    mpk_pool_destroy(p);
    return st == MPK_OK ? 0 : 1;
}

/* The tutorial's first example:
 *     def f(x): return x*x
 *     p = Pool(5); print(p.map(f, [1, 2, 3]))          -> [1, 4, 9]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>

#include "mpkit.h"

/* A task: one int64_t in, its square out. Runs in a worker process. */
static int f(void *ctx, const void *arg, size_t arg_len, void *out, size_t out_cap, size_t *out_len) {
    (void)ctx;
    if (arg_len != sizeof(int64_t) || out_cap < sizeof(int64_t)) return 1;
    int64_t x = *(const int64_t *)arg;
    *(int64_t *)out = x * x;
    *out_len = sizeof(int64_t);
    return 0;
}

int main(void) {
    mpk_pool_opts opts = {0};
    opts.struct_size = sizeof opts;
    opts.workers = 5;
    mpk_pool *p;
    mpk_status st = mpk_pool_create(&opts, &p);
    if (st != MPK_OK) {
        fprintf(stderr, "mpk_pool_create: %s\n", mpk_strerror(st));
        return 1;
    }
    int64_t items[3] = {1, 2, 3}, results[3];
    st = mpk_pool_map(p, f, NULL, items, sizeof items[0], 3, results, sizeof results[0], 0);
    if (st != MPK_OK) {
        fprintf(stderr, "mpk_pool_map: %s\n", mpk_strerror(st));
        return 1;
    }
    printf("[%lld, %lld, %lld]\n", (long long)results[0], (long long)results[1], (long long)results[2]);
    mpk_pool_close(p);
    st = mpk_pool_join(p, MPK_FOREVER);
    mpk_pool_destroy(p);
    return st == MPK_OK ? 0 : 1;
}

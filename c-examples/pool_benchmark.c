/* The tutorial's closing comparison: a CPU-heavy function run serially, on threads and on the
 * pool, with the speed-ups. (In Python the threads do not help, because of the GIL; in C they
 * do; the pool's processes do in both.)
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mpkit.h"

#define TASKS 8

/* CPU-heavy work: `rounds` dependent multiply/xor steps. */
static uint64_t burn(uint64_t rounds) {
    uint64_t h = rounds;
    for (uint64_t i = 0; i < rounds; i++) {
        h = h * 6364136223846793005ull + 1442695040888963407ull;
        h ^= h >> 33;
    }
    return h;
}

static int burn_task(void *ctx, const void *arg, size_t arg_len, void *out, size_t out_cap, size_t *out_len) {
    (void)ctx;
    if (arg_len != sizeof(uint64_t) || out_cap < sizeof(uint64_t)) return 1;
    *(uint64_t *)out = burn(*(const uint64_t *)arg);
    *out_len = sizeof(uint64_t);
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct job {
    uint64_t rounds, result;
};

static void *burn_thread(void *arg) {
    struct job *jobs = arg;
    jobs->result = burn(jobs->rounds);
    return NULL;
}

int main(int argc, char **argv) {
    uint64_t rounds = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000000ull;
    int workers = mpk_cpu_count();
    uint64_t args[TASKS], serial[TASKS], pooled[TASKS];
    for (int i = 0; i < TASKS; i++) args[i] = rounds + (uint64_t)i;

    mpk_pool_opts opts = {0};
    opts.struct_size = sizeof opts;
    opts.workers = (size_t)workers;
    mpk_pool *pool;
    if (mpk_pool_create(&opts, &pool) != MPK_OK) return 1;

    double t0 = now();
    for (int i = 0; i < TASKS; i++) serial[i] = burn(args[i]);
    double t_serial = now() - t0;

    /* threads: one per job, `workers` at a time */
    struct job jobs[TASKS];
    t0 = now();
    for (int first = 0; first < TASKS; first += workers) {
        pthread_t th[TASKS];
        int n = 0;
        for (int i = first; i < TASKS && i < first + workers; i++, n++) {
            jobs[i].rounds = args[i];
            pthread_create(&th[n], NULL, burn_thread, &jobs[i]);
        }
        for (int k = 0; k < n; k++) pthread_join(th[k], NULL);
    }
    double t_threads = now() - t0;

    t0 = now();
    mpk_status st = mpk_pool_map(pool, burn_task, NULL, args, sizeof args[0], TASKS, pooled, sizeof pooled[0], 1);
    double t_pool = now() - t0;
    mpk_pool_destroy(pool);
    if (st != MPK_OK) {
        fprintf(stderr, "map: %s\n", mpk_strerror(st));
        return 1;
    }
    for (int i = 0; i < TASKS; i++)
        if (serial[i] != pooled[i] || serial[i] != jobs[i].result) return fprintf(stderr, "results differ\n"), 1;

    printf("%d tasks of burn(%llu) on %d CPUs\n", TASKS, (unsigned long long)rounds, workers);
    printf("serial:  %.3f s\n", t_serial);
    printf("threads: %.3f s (speed-up %.2fx)\n", t_threads, t_serial / t_threads);
    printf("pool:    %.3f s (speed-up %.2fx)\n", t_pool, t_serial / t_pool);
    return 0;
}

/* The tutorial's CPU-heavy benchmark (pool_benchmark.c's `burn`), distributed over MPI ranks with
 * mpk_mpi_map: rank 0 holds the arguments and gets the results; every rank maps the chunks it
 * asks for on a local pool of `workers` processes. Build with mpicc, run under mpirun:
 *   mpicc -std=c99 -O2 -Iinclude c-examples/mpi_map.c target/release/libmpkit_mpi.a -lpthread -ldl -lm -o mpi_map
 *   mpirun -n 3 ./mpi_map [tasks] [rounds] [workers]
 * Rank 0 prints the item count and the sum of the results (checked against a serial run), then
 * the timings (not checked by mpi/run-tests.sh).
 */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mpkit.h"
#include "mpkit_mpi.h"

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

int main(int argc, char **argv) {
    size_t tasks = argc > 1 ? strtoull(argv[1], NULL, 10) : 200;
    uint64_t rounds = argc > 2 ? strtoull(argv[2], NULL, 10) : 2000000ull;
    size_t workers = argc > 3 ? strtoull(argv[3], NULL, 10) : 2;
    int rank, ranks;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);

    uint64_t *args = NULL, *results = NULL;
    if (rank == 0) {
        args = malloc(tasks * sizeof *args);
        results = calloc(tasks, sizeof *results);
        if (!args || !results) MPI_Abort(MPI_COMM_WORLD, 1);
        for (size_t i = 0; i < tasks; i++) args[i] = rounds + i;
    }
    mpk_pool_opts opts = {0};
    opts.struct_size = sizeof opts;
    opts.workers = workers;

    double t0 = now();
    mpk_status st = mpk_mpi_map(NULL, burn_task, NULL, args, sizeof(uint64_t), tasks, results, sizeof(uint64_t), 0,
                                &opts);
    double t_mpi = now() - t0;
    if (st != MPK_OK) {
        size_t index = 0;
        int code = 0, at = 0;
        mpk_mpi_last_failure(&index, &code, &at);
        fprintf(stderr, "rank %d: mpk_mpi_map: %s (item %zu, code %d, rank %d)\n", rank, mpk_strerror(st), index, code,
                at);
        MPI_Finalize();
        return 1;
    }
    if (rank == 0) {
        uint64_t sum = 0, serial_sum = 0;
        for (size_t i = 0; i < tasks; i++) sum += results[i];
        t0 = now();
        int same = 1;
        for (size_t i = 0; i < tasks; i++) {
            uint64_t r = burn(args[i]);
            serial_sum += r;
            same &= r == results[i];
        }
        double t_serial = now() - t0;
        printf("items: %zu\n", tasks);
        printf("sum: %llu\n", (unsigned long long)sum);
        printf("identical to serial: %s\n", same && sum == serial_sum ? "yes" : "no");
        printf("time: %d ranks x %zu workers %.3f s, serial %.3f s (speed-up %.2fx)\n", ranks, workers, t_mpi, t_serial,
               t_serial / t_mpi);
        free(args);
        free(results);
    }
    MPI_Finalize();
    return 0;
}

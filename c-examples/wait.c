/* multiprocessing.connection.wait in C: one parent waits on three pipes and a process at once,
 * and handles whichever is ready first:
 *     readers = [r0, r1, r2, worker.sentinel]
 *     while readers:
 *         for r in wait(readers): ...
 * Each sender writes one message and exits (its end closes: the pipe reads as end-of-file); the
 * worker exits with code 7. Lines come out in the order things happen, which varies.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mpkit.h"

#define SENDERS 3

static mpk_conn *rx[SENDERS], *tx[SENDERS];

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int sender(void *arg) {
    int i = *(const int *)arg;
    for (int k = 0; k < SENDERS; k++) {
        mpk_conn_close(rx[k]);
        if (k != i) {
            mpk_conn_close(tx[k]);
        }
    }
    nap_ms(10L * i);
    char msg[32];
    int len = snprintf(msg, sizeof msg, "hello from sender %d", i);
    return mpk_conn_send(tx[i], msg, (size_t)len, MPK_FOREVER) == MPK_OK ? 0 : 1;
}

static int worker(void *arg) {
    (void)arg;
    nap_ms(20);
    return 7;
}

int main(void) {
    static const int ids[SENDERS] = {0, 1, 2};
    mpk_process *senders[SENDERS], *work;
    for (int i = 0; i < SENDERS; i++) {
        if (mpk_pipe_create(4096, false, &rx[i], &tx[i]) != MPK_OK) {
            return 1;
        }
    }
    for (int i = 0; i < SENDERS; i++) {
        if (mpk_process_start(sender, (void *)&ids[i], NULL, &senders[i]) != MPK_OK) {
            return 1;
        }
    }
    if (mpk_process_start(worker, NULL, NULL, &work) != MPK_OK) {
        return 1;
    }
    for (int i = 0; i < SENDERS; i++) {
        mpk_conn_close(tx[i]); /* only the senders write */
    }
    bool open[SENDERS] = {true, true, true}, working = true;
    for (;;) {
        mpk_waitable items[SENDERS + 1];
        int owner[SENDERS + 1]; /* pipe index, or -1 for the worker */
        size_t n = 0;
        for (int i = 0; i < SENDERS; i++) {
            if (open[i]) {
                items[n] = (mpk_waitable){MPK_WAIT_CONN, rx[i], false};
                owner[n++] = i;
            }
        }
        if (working) {
            items[n] = (mpk_waitable){MPK_WAIT_PROCESS, work, false};
            owner[n++] = -1;
        }
        if (n == 0) {
            break;
        }
        mpk_status st = mpk_wait(items, n, 10000, NULL);
        if (st != MPK_OK) {
            fprintf(stderr, "mpk_wait: %s\n", mpk_strerror(st));
            return 1;
        }
        for (size_t k = 0; k < n; k++) {
            if (!items[k].ready) {
                continue;
            }
            int i = owner[k];
            if (i < 0) {
                int code = -1;
                mpk_process_join(work, MPK_FOREVER);
                mpk_process_exitcode(work, &code);
                printf("worker exited with %d\n", code);
                working = false;
                continue;
            }
            char buf[64];
            size_t len = 0;
            st = mpk_conn_recv(rx[i], buf, sizeof buf, &len, MPK_NOWAIT);
            if (st == MPK_OK) {
                printf("pipe %d: %.*s\n", i, (int)len, buf);
            } else if (st == MPK_ERR_CLOSED) {
                printf("pipe %d: end of file\n", i);
                open[i] = false;
            } else {
                fprintf(stderr, "mpk_conn_recv: %s\n", mpk_strerror(st));
                return 1;
            }
        }
    }
    int failed = 0;
    for (int i = 0; i < SENDERS; i++) {
        int code = -1;
        failed |= mpk_process_join(senders[i], 10000) != MPK_OK || mpk_process_exitcode(senders[i], &code) != MPK_OK || code != 0;
        mpk_process_destroy(senders[i]);
        mpk_conn_destroy(rx[i]);
        mpk_conn_destroy(tx[i]);
    }
    mpk_process_destroy(work);
    return failed;
}

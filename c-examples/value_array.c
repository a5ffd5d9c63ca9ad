/* The tutorial's shared-memory example:
 *     num = Value('d', 0.0); arr = Array('i', range(10))
 *     child: num.value = 3.1415927; a[i] = -a[i]          parent prints num.value and arr[:]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>

#include "mpkit.h"

struct shared {
    mpk_array *num;
    mpk_array *arr;
};

static int f(void *arg) {
    struct shared *s = arg;
    double *n = mpk_array_data(s->num);
    int32_t *a = mpk_array_data(s->arr);
    /* Like Python's Value/Array, each object carries its own lock. */
    if (mpk_mutex_lock(mpk_array_lock(s->num), MPK_FOREVER) != MPK_OK) return 1;
    *n = 3.1415927;
    mpk_mutex_unlock(mpk_array_lock(s->num));
    if (mpk_mutex_lock(mpk_array_lock(s->arr), MPK_FOREVER) != MPK_OK) return 1;
    for (size_t i = 0; i < mpk_array_len(s->arr); i++) a[i] = -a[i];
    mpk_mutex_unlock(mpk_array_lock(s->arr));
    return 0;
}

int main(void) {
    mpk_type d, i;
    if (mpk_type_from_code("d", &d) != MPK_OK || mpk_type_from_code("i", &i) != MPK_OK) return 1;

    struct shared s;
    double zero = 0.0;
    int32_t range[10];
    for (int k = 0; k < 10; k++) range[k] = k;
    mpk_status st = mpk_value_create(d, &zero, &s.num);
    if (st == MPK_OK) st = mpk_array_create(i, 10, range, &s.arr);
    if (st != MPK_OK) {
        fprintf(stderr, "create: %s\n", mpk_strerror(st));
        return 1;
    }

    mpk_process *p;
    st = mpk_process_start(f, &s, NULL, &p);
    if (st == MPK_OK) st = mpk_process_join(p, MPK_FOREVER);
    if (st != MPK_OK) {
        fprintf(stderr, "process: %s\n", mpk_strerror(st));
        return 1;
    }
    mpk_process_destroy(p);

    printf("%.8g\n", *(double *)mpk_array_data(s.num));
    const int32_t *a = mpk_array_data(s.arr);
    printf("[");
    for (size_t k = 0; k < mpk_array_len(s.arr); k++) printf("%s%d", k ? ", " : "", (int)a[k]);
    printf("]\n");

    mpk_array_destroy(s.num);
    mpk_array_destroy(s.arr);
    return 0;
}

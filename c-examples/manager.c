/* The tutorial's Manager example:
 *     d = manager.dict(); l = manager.list(range(10))
 *     child: d[1] = '1'; d['2'] = 2; d[0.25] = None; l.reverse()      parent prints d and l
 * No server process: the dict and the list live in shared memory that the child inherits.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>

#include "mpkit.h"

struct shared {
    mpk_dict *d;
    mpk_list *l;
};

static int f(void *arg) {
    struct shared *s = arg;
    mpk_item k1 = mpk_item_int(1), v1 = mpk_item_str("1");
    mpk_item k2 = mpk_item_str("2"), v2 = mpk_item_int(2);
    mpk_item k3 = mpk_item_float(0.25), v3 = mpk_item_none();
    mpk_status st = mpk_dict_set(s->d, &k1, &v1);
    if (st == MPK_OK) st = mpk_dict_set(s->d, &k2, &v2);
    if (st == MPK_OK) st = mpk_dict_set(s->d, &k3, &v3);
    if (st == MPK_OK) st = mpk_list_reverse(s->l);
    return st == MPK_OK ? 0 : 1;
}

int main(void) {
    struct shared s;
    mpk_item range[10];
    for (int k = 0; k < 10; k++) range[k] = mpk_item_int(k);
    mpk_status st = mpk_dict_create(NULL, &s.d);
    if (st == MPK_OK) st = mpk_list_create(NULL, &s.l);
    if (st == MPK_OK) st = mpk_list_extend(s.l, range, 10);
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
    int code;
    st = mpk_process_exitcode(p, &code);
    mpk_process_destroy(p);
    if (st != MPK_OK || code != 0) {
        fprintf(stderr, "the child failed\n");
        return 1;
    }

    char buf[256];
    size_t len;
    st = mpk_dict_repr(s.d, buf, sizeof buf, &len); /* Python's repr, NUL-terminated */
    if (st == MPK_OK) printf("%s\n", buf);
    if (st == MPK_OK) st = mpk_list_repr(s.l, buf, sizeof buf, &len);
    if (st == MPK_OK) printf("%s\n", buf);
    if (st != MPK_OK) fprintf(stderr, "repr: %s\n", mpk_strerror(st));

    mpk_dict_destroy(s.d);
    mpk_list_destroy(s.l);
    return st == MPK_OK ? 0 : 1;
}

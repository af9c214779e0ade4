/* SPDX-License-Identifier: MIT */
/* Dicts: insertion-ordered entries plus an open-addressing index, as CPython's compact dict.
 * Deleted entries leave a hole (key T_UNDEF) until the next resize. */
#include <stdlib.h>
#include <string.h>

#include "vm/core/state.h"

value vm_dict_new(vm_thread *t)
{
    vm_dict *d = (vm_dict *)vm_alloc(t, T_DICT, sizeof(vm_dict));
    return V_OBJ(T_DICT, d);
}

/* vm_equal for keys whose hashes match, the common cases first: the same int or the same
 * object (identity implies equality for every type a dict holds), then strings by content. */
#if defined(__GNUC__)
__attribute__((noinline))   /* keeps probe() a leaf, with no registers to save, on a hit */
#endif
static bool key_equal_slow(value a, value b)
{
    if (a.tag == T_STR && b.tag == T_STR) {
        vm_str *x = AS_STR(a), *y = AS_STR(b);
        return x->len == y->len && memcmp(x->data, y->data, x->len) == 0;
    }
    return vm_equal(a, b);
}

static inline bool key_equal(value a, value b)
{
    return vm_dict_same_key(a, b) || key_equal_slow(a, b);
}

/* Index slot holding `key`, or the slot where it would go (index value -1).  Inlined: as a
 * call of its own, its register saves cost as much as a short probe. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline size_t probe(vm_dict *d, value key, uint64_t h)
{
    size_t i = h & d->mask, tomb = SIZE_MAX;
    for (size_t perturb = h;; perturb >>= 5) {
        int32_t ix = d->index[i];
        if (ix == -1)
            return tomb != SIZE_MAX ? tomb : i;
        if (ix == -2) {
            if (tomb == SIZE_MAX)
                tomb = i;
        } else if (d->entries[ix].hash == h && key_equal(d->entries[ix].key, key))
            return i;
        i = (i * 5 + perturb + 1) & d->mask;
    }
}

/* Rebuilds d's table for `need` entries; 0, or -1 with MemoryError. */
static int resize(vm_thread *t, vm_dict *d, size_t need)
{
    size_t cap = 8;
    while (cap < need * 2)
        cap *= 2;
    size_t grow = cap > d->cap ? (cap - d->cap) * (sizeof(vm_dict_entry) + 2 * sizeof(int32_t)) : 0;
    if (vm_heap_reserve(t, grow))
        return -1;
    vm_dict_entry *ents = vm_malloc(cap * sizeof *ents);
    int32_t *index = vm_malloc(cap * 2 * sizeof *index);
    if (!ents || !index) {
        vm_free(ents);
        vm_free(index);
        return vm_raise(t, VM_INTERP(t)->exc.memory_error, "cannot grow a dict to %zu entries",
                        need);
    }
    size_t n = 0;
    for (size_t i = 0; i < d->used; i++)
        if (d->entries[i].key.tag != T_UNDEF)
            ents[n++] = d->entries[i];
    vm_heap_charge(t, grow);
    vm_free(d->entries);
    vm_free(d->index);
    d->entries = ents;
    d->index = index;
    d->cap = cap;
    d->mask = cap * 2 - 1;
    d->used = d->len = n;
    d->hint = 0;
    memset(index, 0xff, cap * 2 * sizeof *index);
    for (size_t i = 0; i < n; i++) {
        size_t j = ents[i].hash & d->mask;
        for (size_t perturb = ents[i].hash; index[j] != -1; perturb >>= 5)
            j = (j * 5 + perturb + 1) & d->mask;
        index[j] = (int32_t)i;
    }
    return 0;
}

/* The index slot holding `key` in *slot: 1 found, 0 absent, -1 an unhashable key
 * (TypeError set).  Compares by value (probe). */
static int find_slot(vm_thread *t, vm_dict *d, value key, size_t *slot)
{
    uint64_t h;
    if (vm_hash(t, key, &h))
        return -1;
    if (!d->len)
        return 0;
    *slot = probe(d, key, h);
    return d->index[*slot] >= 0;
}

/* vm_dict_get where vm_dict_find cannot tell: another key type, or an equal key that is
 * another object. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int get_slow(vm_thread *t, vm_dict *d, value key, value *out)
{
    size_t i;
    int r = find_slot(t, d, key, &i);
    if (r <= 0)
        return r;
    d->hint = (size_t)d->index[i];
    *out = d->entries[d->hint].val;
    return 1;
}

/* vm_dict_find, and past it vm_dict_get's slow path. */
int vm_dict_get(vm_thread *t, vm_dict *d, value key, value *out)
{
    int r = vm_dict_find(d, key, out);
    return r >= 0 ? r : get_slow(t, d, key, out);
}

/* vm_dict_set past the hint. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int set_slow(vm_thread *t, vm_dict *d, value key, value val);

int vm_dict_set(vm_thread *t, vm_dict *d, value key, value val)
{
    return vm_dict_set_hinted(d, key, val) ? 0 : set_slow(t, d, key, val);
}

static int set_slow(vm_thread *t, vm_dict *d, value key, value val)
{
    uint64_t h;
    if (vm_hash(t, key, &h))
        return -1;
    if (d->used + 1 > d->cap && resize(t, d, d->len + 1))
        return -1;
    size_t i = probe(d, key, h);
    int32_t ix = d->index[i];
    if (ix >= 0) {
        d->hint = (size_t)ix;
        d->entries[ix].val = val;
        return 0;
    }
    d->hint = d->used;
    d->entries[d->used] = (vm_dict_entry){key, val, h};
    d->index[i] = (int32_t)d->used++;
    d->len++;
    return 0;
}

int vm_dict_del(vm_thread *t, vm_dict *d, value key)
{
    size_t i;
    int r = find_slot(t, d, key, &i);
    if (r <= 0)
        return r;
    int32_t ix = d->index[i];
    d->entries[ix].key = V_UNDEF;
    d->entries[ix].val = V_NONE;
    d->index[i] = -2;
    d->len--;
    return 1;
}

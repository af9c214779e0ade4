/* SPDX-License-Identifier: MIT */
/* The interpreter's global variables: a name -> slot table of value cells that never move.
 * Code objects are linked to cells when loaded, so LOAD_GLOBAL and STORE_GLOBAL are one load
 * through the code's cell pointer. */
#include <stdlib.h>
#include <string.h>

#include "vm/core/state.h"

static uint32_t find(vm_globals *g, const char *s, size_t len, uint64_t h)
{
    if (!g->index)
        return UINT32_MAX;
    for (uint32_t i = (uint32_t)h & g->mask;; i = (i + 1) & g->mask) {
        uint32_t ix = g->index[i];
        if (!ix)
            return UINT32_MAX;
        vm_str *n = g->names[ix - 1];
        if (n->len == len && memcmp(n->data, s, len) == 0)
            return ix - 1;
    }
}

static void reindex(vm_globals *g)
{
    uint32_t size = 16;
    while (size < g->cap * 2)
        size *= 2;
    vm_free(g->index);
    g->index = vm_xrealloc(NULL, size * sizeof *g->index);
    memset(g->index, 0, size * sizeof *g->index);
    g->mask = size - 1;
    for (uint32_t k = 0; k < g->n; k++) {
        vm_str *n = g->names[k];
        uint32_t i = (uint32_t)(n->hash ? n->hash : vm_hash_bytes(n->data, n->len)) & g->mask;
        while (g->index[i])
            i = (i + 1) & g->mask;
        g->index[i] = k + 1;
    }
}

/* The cell of `name`, whose hash is h; added after the last slot if absent. */
static value *cell_of(vm_interp *in, vm_str *name, uint64_t h)
{
    vm_globals *g = &in->globals;
    uint32_t k = find(g, name->data, name->len, h);
    if (k != UINT32_MAX)
        return g->cells[k];
    name->hash = h;                 /* the str's own hash (vm_hash): reindex needs no rehash */
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : VM_GLOBAL_BLOCK;
        g->names = vm_xrealloc(g->names, g->cap * sizeof *g->names);
        g->cells = vm_xrealloc(g->cells, g->cap * sizeof *g->cells);
    }
    k = g->n++;
    if (k % VM_GLOBAL_BLOCK == 0) {
        g->cells[k] = vm_xrealloc(NULL, VM_GLOBAL_BLOCK * sizeof(value));
    } else
        g->cells[k] = g->cells[k - 1] + 1;
    g->names[k] = name;
    *g->cells[k] = V_UNDEF;
    if (!g->index || g->n * 2 > g->mask + 1)
        reindex(g);
    else {
        uint32_t i = (uint32_t)h & g->mask;
        while (g->index[i])
            i = (i + 1) & g->mask;
        g->index[i] = k + 1;
    }
    return g->cells[k];
}

value *vm_global_cell(vm_interp *in, vm_str *name)
{
    return cell_of(in, name, name->hash ? name->hash : vm_hash_bytes(name->data, name->len));
}

void vm_global_set(vm_thread *t, const char *name, value v)
{
    vm_interp *in = VM_INTERP(t);
    size_t len = strlen(name);
    uint64_t h = vm_hash_bytes(name, len);
    uint32_t k = find(&in->globals, name, len, h);
    *(k == UINT32_MAX ? cell_of(in, AS_STR(vm_str_new(t, name, len)), h) : in->globals.cells[k]) = v;
}

value vm_global_get(vm_interp *in, const char *name)
{
    uint32_t k = find(&in->globals, name, strlen(name), vm_hash_bytes(name, strlen(name)));
    return k == UINT32_MAX ? V_UNDEF : *in->globals.cells[k];
}

void vm_globals_free(vm_globals *g)
{
    for (uint32_t k = 0; k < g->n; k += VM_GLOBAL_BLOCK)
        vm_free(g->cells[k]);
    vm_free(g->names);
    vm_free(g->cells);
    vm_free(g->index);
    memset(g, 0, sizeof *g);
}

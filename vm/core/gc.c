/* SPDX-License-Identifier: MIT */
/* The interpreter's precise mark-and-sweep collector.  Allocation only counts bytes and, past
 * the threshold, sets RT_GC_SCHEDULED on the allocating thread; the collection itself runs
 * at an eval-loop poll, holding the GIL, when every thread of the interpreter is at a safe
 * point (at a poll, or detached in a native call whose values sit on its value stack).  So C
 * code between polls never sees an object move or vanish.  Roots: every thread's frames
 * (locals and live stack), raised, handled and queued exceptions, globals, the exception
 * classes, argv, atexit functions, signal handlers, and whatever the vm_gc_root hooks add. */
#include <stdlib.h>
#include <string.h>

#include "vm/core/state.h"

#define GC_MIN_THRESHOLD (4u << 20)

/* The largest single allocation a program may ask for, limit or not. */
#define VM_MAX_ALLOC ((size_t)1 << 40)

void vm_heap_charge(vm_thread *t, size_t bytes)
{
    vm_interp *in = VM_INTERP(t);
    in->allocated += bytes;
    size_t max = in->limits.max_memory;
    if (in->allocated > in->threshold || (max && in->allocated > max))
        rt_breaker_set(&t->base.eval_breaker, RT_GC_SCHEDULED);
}

/* How far a heap limit `max` may be overrun by allocations that cannot fail, between a poll
 * and the next, or while MemoryError is being raised. */
static size_t headroom(size_t max)
{
    return max / 8 + VM_MEM_RESERVE_SIZE;
}

int vm_heap_reserve(vm_thread *t, size_t bytes)
{
    vm_interp *in = VM_INTERP(t);
    size_t max = in->limits.max_memory;
    if (bytes > VM_MAX_ALLOC)
        return vm_raise(t, in->exc.memory_error, "cannot allocate %zu bytes", bytes);
    if (max && in->allocated + bytes > max + headroom(max))
        return vm_raise(t, in->exc.memory_error, "heap limit of %zu bytes exceeded", max);
    return 0;
}

vm_obj *vm_alloc(vm_thread *t, vm_tag tag, size_t size)
{
    vm_interp *in = VM_INTERP(t);
    vm_obj *o = vm_malloc(size);
    if (!o)
        o = vm_mem_rescue(NULL, size);  /* the reserve; MemoryError at the next poll */
    memset(o, 0, size);
    o->tag = (uint8_t)tag;
    o->size = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
    o->next = in->heap;
    in->heap = o;
    vm_heap_charge(t, size);
    if (vm_mem_reserve_pending())
        rt_breaker_set(&t->base.eval_breaker, RT_GC_SCHEDULED);
    return o;
}

int vm_heap_check(vm_thread *t)
{
    vm_interp *in = VM_INTERP(t);
    vm_mem_reserve_take();
    if (vm_mem_reserve_spent())
        return vm_raise(t, in->exc.memory_error, "out of memory");
    size_t max = in->limits.max_memory;
    if (max && in->allocated > max)
        return vm_raise(t, in->exc.memory_error, "heap limit of %zu bytes exceeded", max);
    return 0;
}

typedef struct {
    vm_obj **items;
    size_t len, cap;
    int overflow;               /* an object was marked but could not be pushed */
} gray_stack;

static void gray(gray_stack *g, vm_obj *o)
{
    if (!o || o->marked)
        return;
    o->marked = 1;
    if (g->len == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 256;
        vm_obj **items = vm_realloc(g->items, cap * sizeof *items);
        if (!items) {
            g->overflow = 1;        /* marked, not blackened: the collector rescans the heap */
            return;
        }
        g->items = items;
        g->cap = cap;
    }
    g->items[g->len++] = o;
}

static void mark_value(gray_stack *g, value v)
{
    if (IS_OBJ(v))
        gray(g, v.u.o);
}

static void mark_values(gray_stack *g, const value *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mark_value(g, v[i]);
}

static void mark_cb(void *g, value v) { mark_value(g, v); }

static size_t payload_size(vm_obj *o)
{
    switch (o->tag) {
    case T_LIST: return ((vm_list *)o)->cap * sizeof(value);
    case T_DICT: return ((vm_dict *)o)->cap * (sizeof(vm_dict_entry) + 2 * sizeof(int32_t));
    case T_CODE: {
        vm_code *c = (vm_code *)o;
        return c->ncode * 8 + c->nconsts * sizeof(value) + (c->nnames + c->nlocals) * 12;
    }
    case T_EXC: {
        vm_exc *e = (vm_exc *)o;
        return e->tb == e->tb_small ? 0 : e->captb * sizeof(vm_tb_entry);
    }
    case T_FFI_BUFFER: return ((vm_ffi_buffer *)o)->data ? ((vm_ffi_buffer *)o)->size : 0;
    default: return 0;
    }
}

static void blacken(gray_stack *g, vm_obj *o)
{
    switch (o->tag) {
    case T_LIST: mark_values(g, ((vm_list *)o)->items, ((vm_list *)o)->len); break;
    case T_TUPLE: mark_values(g, ((vm_tuple *)o)->items, ((vm_tuple *)o)->len); break;
    case T_DICT: {
        vm_dict *d = (vm_dict *)o;
        for (size_t i = 0; i < d->used; i++) {
            mark_value(g, d->entries[i].key);
            mark_value(g, d->entries[i].val);
        }
        break;
    }
    case T_FUNC: gray(g, &((vm_func *)o)->code->h); break;
    case T_CODE: {
        vm_code *c = (vm_code *)o;
        gray(g, c->name ? &c->name->h : NULL);
        gray(g, c->file ? &c->file->h : NULL);
        mark_values(g, c->consts, c->nconsts);
        for (uint32_t i = 0; i < c->nnames; i++)
            gray(g, c->names ? &c->names[i]->h : NULL);
        for (uint32_t i = 0; c->localnames && i < c->nlocals; i++)
            gray(g, c->localnames[i] ? &c->localnames[i]->h : NULL);
        break;
    }
    case T_CLASS: {
        vm_class *k = (vm_class *)o;
        gray(g, &k->name->h);
        gray(g, k->base ? &k->base->h : NULL);
        break;
    }
    case T_EXC: {
        vm_exc *e = (vm_exc *)o;
        gray(g, &e->cls->h);
        mark_value(g, e->arg);
        mark_value(g, e->context);
        for (uint32_t i = 0; i < e->ntb; i++)
            gray(g, &e->tb[i].code->h);
        break;
    }
    case T_ITER: mark_value(g, ((vm_iter *)o)->seq); break;
    default:
        if (o->tag < T__COUNT && vm_gc_blacken_hooks[o->tag])
            vm_gc_blacken_hooks[o->tag](o, mark_cb, g);
        break;
    }
}

vm_gc_blacken_fn vm_gc_blacken_hooks[T__COUNT];
vm_gc_free_fn vm_gc_free_hooks[T__COUNT];
static vm_gc_root_fn root_hooks[VM_GC_MAX_ROOT_HOOKS];

void vm_gc_add_root_hook(vm_gc_root_fn fn)
{
    for (int i = 0; i < VM_GC_MAX_ROOT_HOOKS; i++)
        if (root_hooks[i] == fn)
            return;
    for (int i = 0; i < VM_GC_MAX_ROOT_HOOKS; i++)
        if (root_hooks[i] == NULL) {
            root_hooks[i] = fn;
            return;
        }
    RT_FATAL("no free GC root hook");
}

void vm_gc_remove_root_hook(vm_gc_root_fn fn)
{
    for (int i = 0; i < VM_GC_MAX_ROOT_HOOKS; i++)
        if (root_hooks[i] == fn)
            root_hooks[i] = NULL;
}

void vm_obj_free(vm_interp *in, vm_obj *o)
{
    switch (o->tag) {
    case T_LIST:
        if (((vm_list *)o)->cap)
            vm_free(((vm_list *)o)->items);
        break;
    case T_DICT: vm_free(((vm_dict *)o)->entries); vm_free(((vm_dict *)o)->index); break;
    case T_CODE: {
        vm_code *c = (vm_code *)o;
        vm_free(c->code);
        vm_free(c->exec);
        vm_free(c->lines);
        vm_free(c->consts);
        vm_free(c->names);
        vm_free(c->localnames);
        vm_free(c->exc);
        break;
    }
    case T_EXC:
        if (((vm_exc *)o)->tb != ((vm_exc *)o)->tb_small)
            vm_free(((vm_exc *)o)->tb);
        break;
    default:
        if (o->tag < T__COUNT && vm_gc_free_hooks[o->tag])
            vm_gc_free_hooks[o->tag](o);
        break;
    }
    vm_free(o);
}

static void mark_thread(gray_stack *g, vm_thread *t)
{
    mark_value(g, t->exc);
    mark_value(g, t->handled);
    mark_value(g, t->self);
    void *async_exc = atomic_load(&t->base.async_exc);     /* queued, not yet raised */
    if (async_exc)
        gray(g, async_exc);
    mark_values(g, t->roots, (size_t)t->nroots);
    for (vm_frame *f = t->frame; f; f = f->prev) {
        gray(g, &f->code->h);
        if (f->flags & FR_EXC_INFO)
            mark_value(g, f->saved_exc);
        mark_values(g, f->locals, f->code->nlocals);
        mark_values(g, FRAME_STACK(f), (size_t)(f->sp - FRAME_STACK(f)));
    }
}

void vm_gc_collect(vm_thread *t)
{
    vm_interp *in = VM_INTERP(t);
    gray_stack g = {0};
    for (rt_thread *rt = in->base.threads; rt; rt = rt->next)
        mark_thread(&g, (vm_thread *)rt);
    for (uint32_t i = 0; i < in->globals.n; i++) {
        gray(&g, &in->globals.names[i]->h);
        mark_value(&g, *in->globals.cells[i]);
    }
#define X(field, name, base) gray(&g, &in->exc.field->h);
    VM_EXC_CLASSES(X)
#undef X
    mark_value(&g, in->argv);
    mark_value(&g, in->atexit);
    mark_values(&g, in->signal_handlers, RT_NSIG);
    for (int i = 0; i < VM_GC_MAX_ROOT_HOOKS; i++)
        if (root_hooks[i])
            root_hooks[i](in, mark_cb, &g);
    while (g.len)
        blacken(&g, g.items[--g.len]);
    /* Out of memory for the gray stack (gray): blacken every marked object again, which
     * grays what it reaches and was left out, until nothing was left out. */
    while (g.overflow) {
        g.overflow = 0;
        for (vm_obj *o = in->heap; o; o = o->next)
            if (o->marked) {
                blacken(&g, o);
                while (g.len)
                    blacken(&g, g.items[--g.len]);
            }
    }
    vm_free(g.items);

    size_t live = 0;
    vm_obj **link = &in->heap;
    while (*link) {
        vm_obj *o = *link;
        if (o->marked) {
            o->marked = 0;
            live += o->size + payload_size(o);
            link = &o->next;
        } else {
            *link = o->next;
            vm_obj_free(in, o);
        }
    }
    in->allocated = live;
    in->threshold = in->allocated * 2 > GC_MIN_THRESHOLD ? in->allocated * 2 : GC_MIN_THRESHOLD;
    in->ncollections++;
    t->base.stats.gc_runs++;
    if (rt_main_runtime.hooks.async_event)
        rt_main_runtime.hooks.async_event(&t->base, RT_EV_GC, 0);
}

void vm_heap_free(vm_interp *in)
{
    vm_obj *o = in->heap;
    while (o) {
        vm_obj *next = o->next;
        vm_obj_free(in, o);
        o = next;
    }
    in->heap = NULL;
    in->allocated = 0;
}

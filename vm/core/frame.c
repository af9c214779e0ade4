/* SPDX-License-Identifier: MIT */
/* Frame records and value-stack chunks: everything about frames that is not on the eval
 * loop's fast path (entries from C, new records, stack overflow into a new chunk, freeing a
 * thread's frames).  Called by eval.c, call.c and interp.c. */
#include <stdlib.h>
#include <string.h>

#include "vm/core/frame.h"

#define CHUNK_VALUES 16384u          /* 256 KiB: thousands of ordinary frames */

vm_frame *vm_frame_record_new(vm_thread *t, vm_frame *caller)
{
    vm_frame *f = vm_xrealloc(NULL, sizeof *f);     /* the reserve, then MemoryError at a poll */
    memset(f, 0, sizeof *f);
    f->prev = caller;
    f->depth = caller ? caller->depth + 1 : 1;
    if (caller)
        caller->next = f;
    else
        t->frames = f;
    return f;
}

value *vm_stack_grow(vm_thread *t, size_t need)
{
    vm_chunk *c = t->spare_chunk;
    if (c && (size_t)(c->limit - c->data) >= need)
        t->spare_chunk = NULL;
    else {
        size_t n = need > CHUNK_VALUES ? need : CHUNK_VALUES, bytes = n * sizeof(value);
        /* A verified frame may hold 2^20 values (16 MiB), so a recursion of big frames could
         * take the recursion limit times that: the heap's limit bounds the value stack too,
         * and VM_MAX_STACK does without one (issue 11: fuzz_load's timeout). */
        size_t max = VM_INTERP(t)->limits.max_memory ? VM_INTERP(t)->limits.max_memory
                                                     : VM_MAX_STACK;
        if (t->stack_bytes + bytes > max) {
            vm_raise(t, VM_INTERP(t)->exc.memory_error,
                     "value stack limit of %zu bytes exceeded", max);
            return NULL;
        }
        c = vm_malloc(sizeof *c + bytes);
        if (!c) {
            vm_raise(t, VM_INTERP(t)->exc.memory_error, "cannot grow the value stack");
            return NULL;
        }
        c->limit = c->data + n;
        t->stack_bytes += bytes;
    }
    c->prev = t->chunk;
    t->chunk = c;
    t->stack_limit = c->limit;
    return c->data;
}

/* Frees a chunk (NULL: nothing) and stops counting it. */
static void drop_chunk(vm_thread *t, vm_chunk *c)
{
    if (c) {
        t->stack_bytes -= (size_t)(c->limit - c->data) * sizeof(value);
        vm_free(c);
    }
}

void vm_stack_shrink(vm_thread *t)
{
    vm_chunk *c = t->chunk;
    t->chunk = c->prev;
    t->stack_limit = t->chunk ? t->chunk->limit : NULL;
    drop_chunk(t, t->spare_chunk);  /* keep one: a call depth that swings across a chunk */
    t->spare_chunk = c;             /* boundary would otherwise allocate on every call */
}

vm_frame *vm_frame_push(vm_thread *t, vm_code *code, const value *args, uint32_t argc)
{
    vm_frame *caller = t->frame;
    if (caller && caller->depth >= (uint32_t)t->base.recursion_limit) {
        vm_raise(t, VM_INTERP(t)->exc.recursion_error, "maximum recursion depth exceeded");
        return NULL;
    }
    /* Above everything the innermost frame may use: its sp may not be saved (a native
     * called from it is running). */
    value *base = caller ? caller->locals + caller->code->framesize : NULL;
    uint32_t flags = FR_FROM_C;
    if (!base || (size_t)(t->stack_limit - base) < code->framesize) {
        base = vm_stack_grow(t, code->framesize);
        if (!base)
            return NULL;
        flags |= FR_NEW_CHUNK;
    }
    if (argc)
        memcpy(base, args, argc * sizeof(value));
    vm_frame *f = vm_frame_next(t, caller);
    vm_frame_init(f, code, base, argc, code->nlocals, flags);
    t->frame = f;
    f->ip = code->exec;
    f->sp = FRAME_STACK(f);
    return f;
}

void vm_frame_pop(vm_thread *t)
{
    vm_frame_unlink(t, t->frame);
}

void vm_frames_free(vm_thread *t)
{
    while (t->chunk)
        vm_stack_shrink(t);
    drop_chunk(t, t->spare_chunk);
    t->spare_chunk = NULL;
    for (vm_frame *f = t->frames, *next; f; f = next) {
        next = f->next;
        vm_free(f);
    }
    t->frames = t->frame = NULL;
}

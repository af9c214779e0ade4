/* SPDX-License-Identifier: MIT */
/* Frames and the value stack: the inline halves of pushing and popping a frame, shared by
 * the eval loop (CALL, RETURN, unwinding) and frame.c (entries from C, stack chunks). */
#ifndef VM_FRAME_H
#define VM_FRAME_H

#include "vm/core/state.h"

#if defined(__GNUC__)
#define VM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define VM_UNLIKELY(x) (x)
#endif

/* A new frame record after `caller` (NULL: the thread's first); links it into the list. */
vm_frame *vm_frame_record_new(vm_thread *t, vm_frame *caller);

/* Makes `need` values available in a new stack chunk and returns their start; NULL with
 * MemoryError when the thread's value stack would grow past the heap's limit (or
 * VM_MAX_STACK without one), or malloc fails. */
value *vm_stack_grow(vm_thread *t, size_t need);

/* The most a thread's value stack may take when the heap has no limit. */
#define VM_MAX_STACK ((size_t)1 << 30)

/* Returns to the stack chunk before the current one (popping a FR_NEW_CHUNK frame). */
void vm_stack_shrink(vm_thread *t);

/* The record after `caller` (NULL: the thread's first), made when there is none yet. */
static inline vm_frame *vm_frame_next(vm_thread *t, vm_frame *caller)
{
    vm_frame *f = caller ? caller->next : t->frames;
    if (VM_UNLIKELY(!f))
        f = vm_frame_record_new(t, caller);
    return f;
}

/* Starts record `f` running `code` with its `nlocals` locals at `locals`, whose first `argc`
 * values (the arguments) are in place; the other locals start unbound.  The caller has
 * checked the recursion limit and that the frame fits below t->stack_limit, and makes `f`
 * the innermost frame (t->frame, or the eval loop's register).  Its ip and sp are set when
 * first saved. */
static inline void vm_frame_init(vm_frame *f, vm_code *code, value *locals, uint32_t argc,
                                 uint32_t nlocals, uint32_t flags)
{
    f->code = code;
    f->locals = locals;
    f->flags = flags;
    for (uint32_t i = argc; i < nlocals; i++)
        locals[i] = V_UNDEF;
}

/* Pops the innermost frame: restores what its flags say (handled exception, stack chunk)
 * and makes the caller innermost. */
static inline void vm_frame_unlink(vm_thread *t, vm_frame *f)
{
    if (VM_UNLIKELY(f->flags)) {
        if (f->flags & FR_EXC_INFO)
            t->handled = f->saved_exc;
        if (f->flags & FR_NEW_CHUNK)
            vm_stack_shrink(t);
    }
    t->frame = f->prev;
}

#endif

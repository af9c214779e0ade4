/* SPDX-License-Identifier: MIT */
/* Limits on a program, for running code one does not trust (gilvm_set_limits, and the CLI's
 * --max-instructions, --timeout and --max-memory): setting them, and the timer that ends the
 * time.  The poll handler (vm/core/poll.c) enforces the instruction count and the time: a
 * program that exceeds one gets LimitExceeded at its next poll, which no handler catches.
 * The heap limit is the collector's (vm/core/gc.c): MemoryError, which a program may catch. */
#include "vm/lib/lib.h"
#include "vm/lib/process.h"

/* The timer of a timeout (on the timer thread, without the GIL): marks the limit exceeded
 * and makes every thread of `in` poll for it, unless the limits were set again since. */
static void timeout_fired(vm_interp *in, uint64_t generation)
{
    if (atomic_load(&in->limits.generation) != generation)
        return;
    int none = VM_LIMIT_NONE;
    atomic_compare_exchange_strong(&in->limits.exceeded, &none, VM_LIMIT_TIME);
    rt_interp_set_breaker(&in->base, RT_LIMITS);
}

int vm_limits_set(vm_thread *t, uint64_t max_instructions, uint64_t timeout_ms,
                  size_t max_memory)
{
    vm_interp *in = VM_INTERP(t);
    uint64_t generation = atomic_fetch_add(&in->limits.generation, 1) + 1;
    rt_interp_clear_breaker(&in->base, RT_LIMITS);
    in->limits.max_instructions = max_instructions;
    in->limits.timeout_ms = timeout_ms;
    in->limits.max_memory = max_memory;
    if (max_memory && in->allocated > max_memory)       /* collect, then check, at a poll */
        rt_breaker_set(&t->base.eval_breaker, RT_GC_SCHEDULED);
    in->limits.executed = 0;
    atomic_store(&in->limits.exceeded, VM_LIMIT_NONE);
    for (rt_thread *r = in->base.threads; r; r = r->next)   /* counting starts now */
        ((vm_thread *)r)->limits_counted = r->stats.bytecodes;
    if (max_instructions)
        rt_interp_set_breaker(&in->base, RT_LIMITS);
    if (timeout_ms) {
        uint64_t due = rt_now_ns() + (timeout_ms > UINT64_MAX / 2000000 ? UINT64_MAX / 2
                                                                         : timeout_ms * 1000000);
        if (vm_timer_add(in, due, timeout_fired, generation))
            return vm_raise(t, in->exc.runtime_error, "can't start the timer thread");
    }
    return 0;
}

void vm_limits_interrupt(vm_interp *in)
{
    int none = VM_LIMIT_NONE;
    atomic_compare_exchange_strong(&in->limits.exceeded, &none, VM_LIMIT_INTERRUPT);
    rt_interp_set_breaker(&in->base, RT_LIMITS);
}

void vm_limits_interrupt_spent(vm_interp *in)
{
    int was = VM_LIMIT_INTERRUPT;
    if (atomic_compare_exchange_strong(&in->limits.exceeded, &was, VM_LIMIT_NONE) &&
        !in->limits.max_instructions)
        rt_interp_clear_breaker(&in->base, RT_LIMITS);
}

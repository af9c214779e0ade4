/* SPDX-License-Identifier: MIT */
/* Eval-breaker bits: the one mailbox between producers in runtime/ (GIL, pending calls,
 * signals, async exceptions) and the consumer, the VM's eval loop, which polls it at RESUME
 * and JUMP_BACKWARD.  Bit values are CPython 3.14's (Include/internal/pycore_ceval.h). */
#ifndef RT_BREAKER_H
#define RT_BREAKER_H

#include <stdatomic.h>
#include <stdint.h>

enum {
    RT_GIL_DROP_REQUEST   = 1u << 0,
    RT_SIGNALS_PENDING    = 1u << 1,
    RT_CALLS_TO_DO        = 1u << 2,
    RT_ASYNC_EXCEPTION    = 1u << 3,
    RT_GC_SCHEDULED       = 1u << 4,
    RT_EVAL_PLEASE_STOP   = 1u << 5,
    /* Beyond CPython (whose bits 6 and 7 are its explicit-merge and JIT bits): the holder
     * has wake-ups deferred to its release of the GIL (rt_gil_defer), to run at a poll once
     * due if it keeps the GIL that long (runtime/gil.c, "Beyond CPython 4"). */
    RT_GIL_DEFERRED       = 1u << 8,
    /* Beyond CPython: the embedder's limits on the interpreter's program apply (for the VM,
     * an instruction count, a deadline, a heap size).  A sticky bit (rt_interp_set_breaker):
     * every thread of the interpreter carries it, and its handler leaves it set. */
    RT_LIMITS             = 1u << 9,
    /* Beyond CPython: the poll is a scheduling point of the controlled scheduler
     * (runtime/sched.c); set on every controlled thread while two or more are live. */
    RT_SCHED              = 1u << 10,
};

/* The word itself; lives in rt_thread.eval_breaker.  Any thread may set or clear bits. */
typedef _Atomic uint32_t rt_breaker;

/* Sets `bits` in the word (atomic or); safe from any thread and from a signal handler. */
static inline void rt_breaker_set(rt_breaker *b, uint32_t bits)
{
    atomic_fetch_or_explicit(b, bits, memory_order_relaxed);
}

/* Clears `bits` (atomic and); the consumer clears a bit before running its handler. */
static inline void rt_breaker_clear(rt_breaker *b, uint32_t bits)
{
    atomic_fetch_and_explicit(b, ~bits, memory_order_relaxed);
}

/* One relaxed load: the poll the eval loop does at every RESUME and backward jump. */
static inline uint32_t rt_breaker_load(rt_breaker *b)
{
    return atomic_load_explicit(b, memory_order_relaxed);
}

#endif

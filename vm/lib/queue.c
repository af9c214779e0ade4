/* SPDX-License-Identifier: MIT */
/* Queue objects [queue.SimpleQueue]: unbounded FIFO, put never blocks, get blocks (with an
 * optional timeout).
 *
 * The ring buffer's indices are guarded by the object's wait-queue mutex; its values are
 * touched only holding the GIL, so the collector never races with a waiter.  queue_put does
 * not wake a waiting consumer itself: it defers the wake-up to its own release of the GIL
 * (rt_gil_defer; runtime/gil.c, "Beyond CPython 4"), so that the consumer does not wake to a
 * GIL the producer is about to release.  queue_free therefore calls rt_gil_defer_barrier
 * before it destroys the condvar. */
#include <inttypes.h>
#include <stdlib.h>

#include "runtime/sched.h"
#include "vm/lib/lib.h"
#include "vm/lib/native.h"
#include "vm/lib/wait.h"

typedef struct {
    vm_waitable base;
    size_t len, cap, head;      /* ring buffer; under base.wq.mu */
    value *items;
    uint64_t serial;            /* 1, 2, ... in creation order: its name in deadlock reports */
} vm_queue;

static _Atomic uint64_t nqueues;

static void queue_describe(void *p, char *buf, size_t n)
{
    snprintf(buf, n, "queue %" PRIu64 " (empty)", ((vm_queue *)p)->serial);
}

static void queue_blacken(vm_obj *o, vm_gc_mark_fn mark, void *g)
{
    vm_queue *q = (vm_queue *)o;
    for (size_t i = 0; i < q->len; i++)
        mark(g, q->items[(q->head + i) % q->cap]);
}

static void queue_free(vm_obj *o)
{
    vm_queue *q = (vm_queue *)o;
    rt_gil_defer_barrier();             /* queue_put's deferred wake-ups may signal the cv */
    vm_free(q->items);
    vm_waitable_free(o);
}

static int queue_nonempty(void *p) { return ((vm_queue *)p)->len > 0; }

static void queue_wake(void *p) { pthread_cond_signal(&((vm_queue *)p)->base.wq.cv); }

BUILTIN(Queue)
{
    vm_queue *q = (vm_queue *)vm_alloc(t, T_QUEUE, sizeof(vm_queue));
    vm_waitq_init(&q->base.wq);
    q->serial = atomic_fetch_add(&nqueues, 1) + 1;
    *out = V_OBJ(T_QUEUE, q);
    return 0;
}

static int want_queue(vm_thread *t, value v, const char *fn)
{
    return v.tag == T_QUEUE ? 0 : vm_type_err(t, fn, "a queue", v);
}

BUILTIN(queue_put)
{
    if (want_queue(t, argv[0], "queue_put"))
        return -1;
    vm_queue *q = (vm_queue *)argv[0].u.o;
    pthread_mutex_lock(&q->base.wq.mu);
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        value *items = vm_malloc(cap * sizeof(value));
        if (!items) {
            pthread_mutex_unlock(&q->base.wq.mu);
            return vm_raise(t, EXC(t)->memory_error, "cannot grow a queue to %zu items", cap);
        }
        for (size_t i = 0; i < q->len; i++)
            items[i] = q->items[(q->head + i) % q->cap];
        vm_free(q->items);
        q->items = items;
        q->cap = cap;
        q->head = 0;
    }
    q->items[(q->head + q->len) % q->cap] = argv[1];
    q->len++;
    int waiters = q->base.wq.nwaiters;
    pthread_mutex_unlock(&q->base.wq.mu);
    /* A waiter woken now would find the GIL held by us, and we are often about to release
     * it (a handoff: bench/pingpong.gasm): wake it when we do (rt_gil_defer). */
    if (waiters)
        rt_gil_defer(&t->base, queue_wake, q);
    rt_sched_yield(&t->base, "queue_put");
    *out = V_NONE;
    return 0;
}

BUILTIN(queue_get)
{
    if (argc < 1 || argc > 2)
        return vm_raise(t, EXC(t)->type_error, "queue_get expected 1 or 2 arguments, got %d", argc);
    if (want_queue(t, argv[0], "queue_get"))
        return -1;
    vm_queue *q = (vm_queue *)argv[0].u.o;
    int err = 0;
    uint64_t deadline = vm_deadline_from(t, argc == 2 ? argv[1] : V_NONE, "queue_get", &err);
    if (err)
        return -1;
    rt_sched_yield(&t->base, "queue_get");
    for (;;) {
        /* Pop only while holding the GIL, so the value is never unrooted. */
        pthread_mutex_lock(&q->base.wq.mu);
        int got = q->len > 0;
        if (got) {
            *out = q->items[q->head];
            q->head = (q->head + 1) % q->cap;
            q->len--;
        }
        pthread_mutex_unlock(&q->base.wq.mu);
        if (got)
            return 0;
        int r = vm_wait(t, &q->base.wq, queue_nonempty, q, deadline);
        if (r < 0)
            return -1;
        if (r == 0)
            return vm_raise(t, EXC(t)->timeout_error, "queue_get() timed out");
    }
}

BUILTIN(queue_size)
{
    if (want_queue(t, argv[0], "queue_size"))
        return -1;
    vm_queue *q = (vm_queue *)argv[0].u.o;
    pthread_mutex_lock(&q->base.wq.mu);
    *out = V_INT((int64_t)q->len);
    pthread_mutex_unlock(&q->base.wq.mu);
    return 0;
}

void vm_queue_install(vm_thread *t)
{
    VM_SET_HOOK(vm_gc_blacken_hooks[T_QUEUE], queue_blacken);
    VM_SET_HOOK(vm_gc_free_hooks[T_QUEUE], queue_free);
    vm_wait_register(queue_nonempty, "queue_get", queue_describe);
    static const vm_native_def natives[] = {
        {"Queue", 0, bi_Queue, "Queue()"},
        {"queue_put", 2, bi_queue_put, "queue_put(q, x)"},
        {"queue_get", -1, bi_queue_get, "queue_get(q, timeout=None)"},
        {"queue_size", 1, bi_queue_size, "queue_size(q)"},
    };
    VM_DEF_NATIVES(t, natives);
}

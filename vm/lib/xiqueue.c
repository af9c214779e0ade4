/* SPDX-License-Identifier: MIT */
/* Cross-interpreter queues [Modules/_interpqueuesmodule.c] and the shareable data they carry
 * [Python/crossinterp.c]: called by bytecode (xiqueue_*) and by interp.c.
 *
 * Notes
 * -----
 * A queue (vm_xiq) is malloc'd, outside every heap, and reference-counted: each interpreter
 * that holds it has handle objects (T_XIQUEUE) in its own heap, one reference each, which
 * the collector drops; a queue in flight (an argument on its way into another interpreter,
 * an item in another queue) holds one more.  The last reference frees it, so a queue
 * outlives the interpreter that made it while another holds it.
 *
 * Queue ends [requires_idref]: an interpreter with at least one handle of a queue is one of
 * its ends (ends[], counting its handles: the creator's, and those made when the queue came
 * in as an argument, a result or an item).  While a queue has two ends or more, it holds one
 * id reference on each, so an interpreter created with "reqrefs" lives while it shares a
 * queue with another interpreter; when an end's last handle is freed (its collector, or its
 * destruction) and fewer than two ends are left, the queue drops those references, and an
 * interpreter left without any is destroyed at the main thread's next poll
 * (vm_interp_id_released: a free hook runs inside a collection, where it cannot be).  An
 * interpreter alone with a queue is not kept alive by it: nobody else can reach it through it.
 *
 * Items are vm_xidata: copies of shareable values, never objects, so no interpreter ever
 * sees another's heap.  Everything in the queue is guarded by its wait queue's mutex; the
 * GILs play no part (the two ends usually hold different ones).  Blocking put and get wait
 * in vm_wait (wait.c), which releases the GIL and wakes for signals (main thread),
 * finalization and exceeded limits. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sched.h"
#include "vm/lib/interp.h"
#include "vm/lib/lib.h"
#include "vm/lib/native.h"
#include "vm/lib/wait.h"

/* Nesting of tuples a shareable value may have. */
#define XI_MAX_DEPTH 64

/* An interpreter holding a queue: its handles of it. */
typedef struct {
    vm_interp *in;
    int64_t handles;
} xiq_end;

struct vm_xiq {
    vm_waitq wq;                /* mu guards everything below */
    int64_t id;                 /* for repr and messages: 1, 2, ... in creation order */
    int64_t refs;               /* handles and in-flight copies */
    xiq_end *ends;              /* the interpreters holding handles; id references on */
    size_t nends, ends_cap;     /* each while nends >= 2 */
    int closed;
    size_t maxsize;             /* 0: unbounded */
    size_t len, cap, head;      /* ring buffer of items */
    vm_xidata *items;
};

typedef struct {                /* T_XIQUEUE: one reference on q */
    vm_obj h;
    vm_xiq *q;
    vm_interp *in;              /* the interpreter whose heap holds it: an end of q */
} vm_xiq_handle;

static _Atomic int64_t next_queue_id = 1;

static void xiq_incref(vm_xiq *q)
{
    pthread_mutex_lock(&q->wq.mu);
    q->refs++;
    pthread_mutex_unlock(&q->wq.mu);
}

static void xiq_decref(vm_xiq *q)
{
    pthread_mutex_lock(&q->wq.mu);
    int64_t left = --q->refs;
    pthread_mutex_unlock(&q->wq.mu);
    if (left > 0)
        return;
    /* Nobody holds it, so nobody waits on it: a waiter's handle is on its stack. */
    for (size_t i = 0; i < q->len; i++)
        vm_xi_clear(&q->items[(q->head + i) % q->cap]);
    vm_free(q->items);
    vm_free(q->ends);
    vm_waitq_destroy(&q->wq);
    vm_free(q);
}

/* ---- shareable data ---- */

static int xi_get(vm_thread *t, value v, vm_xidata *out, int depth)
{
    out->tag = v.tag;
    out->len = 0;
    out->u.i = 0;
    switch (v.tag) {
    case T_NONE:
        return 0;
    case T_BOOL:
    case T_INT:
        out->u.i = v.u.i;
        return 0;
    case T_FLOAT:
        out->u.f = v.u.f;
        return 0;
    case T_STR:
    case T_BYTES: {
        vm_str *s = AS_STR(v);
        char *p = vm_malloc(s->len + 1);
        if (!p) {
            out->tag = T_NONE;
            return vm_raise(t, EXC(t)->memory_error, "out of memory sharing a %s of %zu bytes",
                            vm_type_name(v), s->len);
        }
        memcpy(p, s->data, s->len + 1);
        out->len = s->len;
        out->u.p = p;
        return 0;
    }
    case T_TUPLE: {
        vm_tuple *tu = AS_TUPLE(v);
        if (depth >= XI_MAX_DEPTH) {
            out->tag = T_NONE;
            return vm_raise(t, EXC(t)->not_shareable_error, "tuple nested too deeply to share");
        }
        vm_xidata *items = vm_calloc(tu->len ? tu->len : 1, sizeof *items);
        if (!items) {
            out->tag = T_NONE;
            return vm_raise(t, EXC(t)->memory_error, "out of memory sharing a tuple of %zu items",
                            tu->len);
        }
        for (size_t i = 0; i < tu->len; i++)
            if (xi_get(t, tu->items[i], &items[i], depth + 1)) {
                out->len = i;
                out->u.p = items;
                vm_xi_clear(out);
                return -1;
            }
        out->len = tu->len;
        out->u.p = items;
        return 0;
    }
    case T_XIQUEUE:
        out->u.q = ((vm_xiq_handle *)v.u.o)->q;
        xiq_incref(out->u.q);
        return 0;
    default:
        out->tag = T_NONE;
        return vm_raise(t, EXC(t)->not_shareable_error, "'%s' object is not shareable between "
                        "interpreters", vm_type_name(v));
    }
}

int vm_xi_get(vm_thread *t, value v, vm_xidata *out)
{
    return xi_get(t, v, out, 0);
}

/* Under q->wq.mu: adds a handle of `in` to q's ends, taking the ends' id references when
 * `in` is the second end. */
static void end_add(vm_xiq *q, vm_interp *in)
{
    for (size_t i = 0; i < q->nends; i++)
        if (q->ends[i].in == in) {
            q->ends[i].handles++;
            return;
        }
    if (q->nends == q->ends_cap) {
        size_t cap = q->ends_cap ? q->ends_cap * 2 : 4;
        xiq_end *ends = vm_xrealloc(q->ends, cap * sizeof *ends);  /* no error path */
        q->ends = ends;
        q->ends_cap = cap;
    }
    q->ends[q->nends++] = (xiq_end){in, 1};
    if (q->nends == 2)
        rt_interp_id_incref(&q->ends[0].in->base);
    if (q->nends >= 2)
        rt_interp_id_incref(&in->base);
}

/* Under q->wq.mu: drops a handle of `in`; when `in` stops being an end, drops the id
 * references that end (and, if one end is left, the other) held, writing into released[]
 * the ids of interpreters left without any (at most 2).  Returns how many. */
static int end_drop(vm_xiq *q, vm_interp *in, int64_t released[2])
{
    int n = 0;
    for (size_t i = 0; i < q->nends; i++) {
        if (q->ends[i].in != in)
            continue;
        if (--q->ends[i].handles > 0)
            return 0;
        int held = q->nends >= 2;
        q->ends[i] = q->ends[--q->nends];
        if (held && rt_interp_id_decref(&in->base) <= 0)
            released[n++] = in->base.id;
        if (held && q->nends == 1 && rt_interp_id_decref(&q->ends[0].in->base) <= 0)
            released[n++] = q->ends[0].in->base.id;
        return n;
    }
    return 0;                       /* a handle of an interpreter the fork child forgot */
}

static value handle_new(vm_thread *t, vm_xiq *q)
{
    vm_xiq_handle *h = (vm_xiq_handle *)vm_alloc(t, T_XIQUEUE, sizeof(vm_xiq_handle));
    h->q = q;
    h->in = VM_INTERP(t);
    pthread_mutex_lock(&q->wq.mu);
    end_add(q, h->in);
    pthread_mutex_unlock(&q->wq.mu);
    return V_OBJ(T_XIQUEUE, h);
}

value vm_xi_new(vm_thread *t, const vm_xidata *d)
{
    switch (d->tag) {
    case T_BOOL: return V_BOOL(d->u.i);
    case T_INT: return V_INT(d->u.i);
    case T_FLOAT: return V_FLOAT(d->u.f);
    case T_STR: return vm_str_new(t, d->u.p, d->len);
    case T_BYTES: return vm_bytes_new(t, d->u.p, d->len);
    case T_TUPLE: {
        /* vm_alloc never collects, so the items need no rooting while they are made. */
        const vm_xidata *items = d->u.p;
        vm_tuple *o = (vm_tuple *)vm_alloc(t, T_TUPLE, sizeof(vm_tuple) + d->len * sizeof(value));
        o->len = d->len;
        value tu = V_OBJ(T_TUPLE, o);
        for (size_t i = 0; i < d->len; i++)
            AS_TUPLE(tu)->items[i] = vm_xi_new(t, &items[i]);
        return tu;
    }
    case T_XIQUEUE:
        xiq_incref(d->u.q);
        return handle_new(t, d->u.q);
    default:
        return V_NONE;
    }
}

void vm_xi_clear(vm_xidata *d)
{
    switch (d->tag) {
    case T_STR:
    case T_BYTES:
        vm_free(d->u.p);
        break;
    case T_TUPLE: {
        vm_xidata *items = d->u.p;
        for (size_t i = 0; i < d->len; i++)
            vm_xi_clear(&items[i]);
        vm_free(items);
        break;
    }
    case T_XIQUEUE:
        xiq_decref(d->u.q);
        break;
    default:
        break;
    }
    d->tag = T_NONE;
    d->len = 0;
    d->u.i = 0;
}

/* ---- the queue ---- */

static void handle_free(vm_obj *o)
{
    vm_xiq_handle *h = (vm_xiq_handle *)o;
    int64_t released[2];
    pthread_mutex_lock(&h->q->wq.mu);
    int n = end_drop(h->q, h->in, released);
    pthread_mutex_unlock(&h->q->wq.mu);
    for (int i = 0; i < n; i++)
        vm_interp_id_released(released[i]);
    xiq_decref(h->q);
}

static int want_xiq(vm_thread *t, value v, const char *fn, vm_xiq **q)
{
    if (v.tag != T_XIQUEUE)
        return vm_type_err(t, fn, "an xiqueue", v);
    *q = ((vm_xiq_handle *)v.u.o)->q;
    return 0;
}

/* Under q->wq.mu: the waits' conditions. */
static int xiq_can_get(void *p)
{
    vm_xiq *q = p;
    return q->len > 0 || q->closed;
}

static int xiq_can_put(void *p)
{
    vm_xiq *q = p;
    return q->maxsize == 0 || q->len < q->maxsize || q->closed;
}

/* For the controlled scheduler's deadlock report (vm_wait_register). */
static void xiq_describe(void *p, char *buf, size_t n)
{
    vm_xiq *q = p;
    if (q->len == 0)
        snprintf(buf, n, "xiqueue %lld, empty", (long long)q->id);
    else
        snprintf(buf, n, "xiqueue %lld, full (%zu items)", (long long)q->id, q->len);
}

/* Wakes whoever waits on q, if anyone; called after unlocking. */
static void xiq_wake(vm_xiq *q, int waiters)
{
    if (waiters)
        pthread_cond_broadcast(&q->wq.cv);
}

/* The timeout argument argv[i] if given, else None; -1 with an error for a bad one. */
static uint64_t deadline_arg(vm_thread *t, int argc, value *argv, int i, const char *fn, int *err)
{
    return vm_deadline_from(t, argc > i ? argv[i] : V_NONE, fn, err);
}

BUILTIN(xiqueue)
{
    int64_t maxsize = 0;
    if (argc > 1)
        return vm_raise(t, EXC(t)->type_error, "xiqueue expected at most 1 argument, got %d", argc);
    if (argc == 1 && vm_want_int(t, "xiqueue", argv[0], &maxsize))
        return -1;
    if (maxsize < 0)
        return vm_raise(t, EXC(t)->value_error, "xiqueue() maxsize must be non-negative");
    vm_xiq *q = vm_calloc(1, sizeof *q);
    if (!q)
        return vm_raise(t, EXC(t)->memory_error, "out of memory making a queue");
    vm_waitq_init(&q->wq);
    q->id = atomic_fetch_add(&next_queue_id, 1);
    q->refs = 1;
    q->maxsize = (size_t)maxsize;
    *out = handle_new(t, q);
    return 0;
}

BUILTIN(xiqueue_put)
{
    vm_xiq *q = NULL;
    if (argc < 2 || argc > 3)
        return vm_raise(t, EXC(t)->type_error, "xiqueue_put expected 2 or 3 arguments, got %d", argc);
    if (want_xiq(t, argv[0], "xiqueue_put", &q))
        return -1;
    int err = 0;
    uint64_t deadline = deadline_arg(t, argc, argv, 2, "xiqueue_put", &err);
    vm_xidata d;
    if (err || vm_xi_get(t, argv[1], &d))
        return -1;
    for (;;) {
        pthread_mutex_lock(&q->wq.mu);
        int closed = q->closed, room = xiq_can_put(q);
        if (!closed && room) {
            if (q->len == q->cap) {
                size_t cap = q->cap ? q->cap * 2 : 16;
                vm_xidata *items = vm_malloc(cap * sizeof *items);
                if (!items) {
                    pthread_mutex_unlock(&q->wq.mu);
                    vm_xi_clear(&d);
                    return vm_raise(t, EXC(t)->memory_error, "out of memory growing queue %lld",
                                    (long long)q->id);
                }
                for (size_t i = 0; i < q->len; i++)
                    items[i] = q->items[(q->head + i) % q->cap];
                vm_free(q->items);
                q->items = items;
                q->cap = cap;
                q->head = 0;
            }
            q->items[(q->head + q->len) % q->cap] = d;
            q->len++;
        }
        int waiters = q->wq.nwaiters;
        pthread_mutex_unlock(&q->wq.mu);
        if (closed) {
            vm_xi_clear(&d);
            return vm_raise(t, EXC(t)->value_error, "xiqueue_put: queue %lld is closed",
                            (long long)q->id);
        }
        if (room) {
            xiq_wake(q, waiters);
            rt_sched_yield(&t->base, "xiqueue_put");
            *out = V_NONE;
            return 0;
        }
        int r = vm_wait(t, &q->wq, xiq_can_put, q, deadline);
        if (r <= 0) {
            vm_xi_clear(&d);
            if (r < 0)
                return -1;
            return vm_raise(t, EXC(t)->timeout_error, "xiqueue_put() timed out: queue %lld is full",
                            (long long)q->id);
        }
    }
}

BUILTIN(xiqueue_get)
{
    vm_xiq *q = NULL;
    if (argc < 1 || argc > 2)
        return vm_raise(t, EXC(t)->type_error, "xiqueue_get expected 1 or 2 arguments, got %d", argc);
    if (want_xiq(t, argv[0], "xiqueue_get", &q))
        return -1;
    int err = 0;
    uint64_t deadline = deadline_arg(t, argc, argv, 1, "xiqueue_get", &err);
    if (err)
        return -1;
    rt_sched_yield(&t->base, "xiqueue_get");
    for (;;) {
        pthread_mutex_lock(&q->wq.mu);
        int got = q->len > 0, closed = q->closed;
        vm_xidata d;
        if (got) {
            d = q->items[q->head];
            q->head = (q->head + 1) % q->cap;
            q->len--;
        }
        int waiters = q->wq.nwaiters;
        pthread_mutex_unlock(&q->wq.mu);
        if (got) {
            xiq_wake(q, waiters && q->maxsize);     /* a producer may wait for room */
            *out = vm_xi_new(t, &d);
            vm_xi_clear(&d);
            return 0;
        }
        if (closed)
            return vm_raise(t, EXC(t)->value_error, "xiqueue_get: queue %lld is closed and empty",
                            (long long)q->id);
        int r = vm_wait(t, &q->wq, xiq_can_get, q, deadline);
        if (r < 0)
            return -1;
        if (r == 0)
            return vm_raise(t, EXC(t)->timeout_error, "xiqueue_get() timed out: queue %lld is empty",
                            (long long)q->id);
    }
}

BUILTIN(xiqueue_size)
{
    vm_xiq *q = NULL;
    if (want_xiq(t, argv[0], "xiqueue_size", &q))
        return -1;
    pthread_mutex_lock(&q->wq.mu);
    *out = V_INT((int64_t)q->len);
    pthread_mutex_unlock(&q->wq.mu);
    return 0;
}

BUILTIN(xiqueue_id)
{
    vm_xiq *q = NULL;
    if (want_xiq(t, argv[0], "xiqueue_id", &q))
        return -1;
    *out = V_INT(q->id);
    return 0;
}

BUILTIN(xiqueue_close)
{
    vm_xiq *q = NULL;
    if (want_xiq(t, argv[0], "xiqueue_close", &q))
        return -1;
    pthread_mutex_lock(&q->wq.mu);
    q->closed = 1;
    int waiters = q->wq.nwaiters;
    pthread_mutex_unlock(&q->wq.mu);
    xiq_wake(q, waiters);
    *out = V_NONE;
    return 0;
}

void vm_xiq_after_fork(vm_obj *o)
{
    vm_xiq *q = ((vm_xiq_handle *)o)->q;
    vm_waitq_init(&q->wq);
    q->nends = 0;                   /* the other interpreters are gone; no references held */
}

void vm_xiq_after_fork_end(vm_obj *o, vm_interp *in)
{
    end_add(((vm_xiq_handle *)o)->q, in);   /* only the main interpreter is left: one end */
}

BUILTIN(is_shareable)
{
    vm_xidata d;
    if (vm_xi_get(t, argv[0], &d)) {
        t->exc = V_UNDEF;
        *out = V_BOOL(0);
        return 0;
    }
    vm_xi_clear(&d);
    *out = V_BOOL(1);
    return 0;
}

void vm_xiqueue_install(vm_thread *t)
{
    VM_SET_HOOK(vm_gc_free_hooks[T_XIQUEUE], handle_free);
    vm_wait_register(xiq_can_get, "xiqueue_get", xiq_describe);
    vm_wait_register(xiq_can_put, "xiqueue_put", xiq_describe);
    static const vm_native_def natives[] = {
        {"xiqueue", -1, bi_xiqueue, "xiqueue(maxsize=0)"},
        {"xiqueue_put", -1, bi_xiqueue_put, "xiqueue_put(q, x, timeout=None)"},
        {"xiqueue_get", -1, bi_xiqueue_get, "xiqueue_get(q, timeout=None)"},
        {"xiqueue_size", 1, bi_xiqueue_size, "xiqueue_size(q)"},
        {"xiqueue_id", 1, bi_xiqueue_id, "xiqueue_id(q)"},
        {"xiqueue_close", 1, bi_xiqueue_close, "xiqueue_close(q)"},
        {"is_shareable", 1, bi_is_shareable, "is_shareable(x)"},
    };
    VM_DEF_NATIVES(t, natives);
}

/* SPDX-License-Identifier: MIT */
/* Per-thread GIL statistics: counters, bounded sample reservoirs, percentiles, and the
 * interpreter's list of retired (deleted) threads' stats.  Written by gil.c and thread.c,
 * read by the VM's --stats and trace writers. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static uint64_t next_random(uint64_t *state)
{
    /* xorshift64*; the state is never 0. */
    uint64_t x = *state ? *state : 0x2545F4914F6CDD1Du;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Du;
}

/* Algorithm R: the first RT_STATS_SAMPLES values fill the buffer, then value number i
 * replaces a random slot with probability RT_STATS_SAMPLES / (i + 1). */
static void sample(uint64_t **buf, uint32_t *n, uint64_t count, uint64_t *rng, uint64_t v)
{
    if (*buf == NULL) {
        *buf = malloc(RT_STATS_SAMPLES * sizeof **buf);
        if (*buf == NULL)
            return;
    }
    if (count < RT_STATS_SAMPLES) {
        (*buf)[count] = v;
        *n = (uint32_t)count + 1;
        return;
    }
    uint64_t j = next_random(rng) % (count + 1);
    if (j < RT_STATS_SAMPLES)
        (*buf)[j] = v;
}

void rt_stats_record_hold(rt_thread_stats *s, uint64_t ns)
{
    sample(&s->hold_samples, &s->nhold, s->hold_count++, &s->rng, ns);
    s->hold_ns += ns;
    if (ns > s->hold_max_ns)
        s->hold_max_ns = ns;
}

void rt_stats_record_wait(rt_thread_stats *s, uint64_t ns)
{
    sample(&s->wait_samples, &s->nwait, s->wait_count++, &s->rng, ns);
    s->wait_ns += ns;
    if (ns > s->wait_max_ns)
        s->wait_max_ns = ns;
}

uint64_t rt_stats_close_hold(rt_thread *t, uint64_t now)
{
    uint64_t held = now - t->hold_start_ns;
    rt_stats_record_hold(&t->stats, held);
    if (rt_main_runtime.hooks.gil_event)
        rt_main_runtime.hooks.gil_event(t, RT_GIL_EV_HOLD, t->hold_start_ns, now);
    t->hold_start_ns = now;
    return held;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int rt_stats_percentile(const uint64_t *samples, uint32_t n, double p, uint64_t *out)
{
    if (n == 0 || !(p >= 0.0 && p <= 100.0))
        return -1;
    uint64_t *sorted = malloc(n * sizeof *sorted);
    if (sorted == NULL)
        return -1;
    memcpy(sorted, samples, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_u64);
    double x = p / 100.0 * n;                   /* nearest rank: ceil(x), 1-based */
    uint32_t rank = (uint32_t)x;
    rank += rank < x;
    *out = sorted[rank == 0 ? 0 : (rank > n ? n : rank) - 1];
    free(sorted);
    return 0;
}

/* Adds b's counters and samples (fed through a's reservoirs) into a; frees b's samples. */
static void merge(rt_thread_stats *a, rt_thread_stats *b)
{
    a->switches += b->switches;
    a->forced_switches += b->forced_switches;
    a->drop_requests += b->drop_requests;
    a->bytecodes += b->bytecodes;
    a->pending_calls += b->pending_calls;
    a->signals += b->signals;
    a->gc_runs += b->gc_runs;
    a->hold_ns += b->hold_ns;
    a->wait_ns += b->wait_ns;
    if (b->hold_max_ns > a->hold_max_ns)
        a->hold_max_ns = b->hold_max_ns;
    if (b->wait_max_ns > a->wait_max_ns)
        a->wait_max_ns = b->wait_max_ns;
    for (uint32_t i = 0; i < b->nhold; i++)
        sample(&a->hold_samples, &a->nhold, a->hold_count++, &a->rng, b->hold_samples[i]);
    for (uint32_t i = 0; i < b->nwait; i++)
        sample(&a->wait_samples, &a->nwait, a->wait_count++, &a->rng, b->wait_samples[i]);
    a->hold_count += b->hold_count - b->nhold;
    a->wait_count += b->wait_count - b->nwait;
    free(b->hold_samples);
    free(b->wait_samples);
    b->hold_samples = b->wait_samples = NULL;
}

void rt_stats_retire(rt_interp *in, rt_thread *t)
{
    /* States swapped in to run one call (interp_call...) are many and short: they share
     * one row, thread id 0, so that the list does not grow with every call. */
    if (t->whence == RT_WHENCE_EXEC) {
        for (size_t i = 0; i < in->nretired; i++)
            if (in->retired[i].thread_id == 0) {
                merge(&in->retired[i].stats, &t->stats);
                return;
            }
    }
    if (in->nretired == in->retired_cap) {
        size_t cap = in->retired_cap ? 2 * in->retired_cap : 16;
        rt_retired_stats *r = realloc(in->retired, cap * sizeof *r);
        if (r == NULL) {            /* lose these stats rather than fail a deletion */
            free(t->stats.hold_samples);
            free(t->stats.wait_samples);
            return;
        }
        in->retired = r;
        in->retired_cap = cap;
    }
    in->retired[in->nretired++] =
        (rt_retired_stats){t->whence == RT_WHENCE_EXEC ? 0 : t->id, t->stats};
    t->stats.hold_samples = t->stats.wait_samples = NULL;
}

void rt_stats_free_retired(rt_interp *in)
{
    for (size_t i = 0; i < in->nretired; i++) {
        free(in->retired[i].stats.hold_samples);
        free(in->retired[i].stats.wait_samples);
    }
    free(in->retired);
    in->retired = NULL;
    in->nretired = in->retired_cap = 0;
}

void rt_interp_stats_foreach(rt_interp *in,
                             void (*fn)(void *arg, uint64_t thread_id, int live,
                                        const rt_thread_stats *s),
                             void *arg)
{
    rt_head_lock();
    for (rt_thread *t = in->threads; t; t = t->next)
        fn(arg, t->id, 1, &t->stats);
    for (size_t i = 0; i < in->nretired; i++)
        fn(arg, in->retired[i].thread_id, 0, &in->retired[i].stats);
    rt_head_unlock();
}

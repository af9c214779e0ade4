/* SPDX-License-Identifier: MIT */
/* The instruments' start and finish, and --stats: per interpreter and per thread GIL and
 * execution counters, printed to stderr at exit as text or one JSON object (docs/cli.md).
 * The trace writer is trace.c. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vm/api/instruments.h"
#include "vm/api/schedule.h"

static vm_instruments_config config;
static pid_t started_pid;       /* the process that reports; 0: not started */

int vm_instruments_start(const vm_instruments_config *cfg)
{
    config = *cfg;
    started_pid = getpid();
    if (!cfg->trace_path)
        return 0;
    /* The trace starts with the starter's hold in progress (for the CLI, the main thread's,
     * since the runtime started), so its holds add up to what --stats counts. */
    rt_thread *cur = rt_thread_current();
    int holds = cur && atomic_load(&cur->state) == RT_ATTACHED;
    return vm_trace_open(cfg->trace_path, holds ? cur->hold_start_ns : rt_now_ns());
}

int vm_instruments_stats_mode(void)
{
    return started_pid == getpid() ? config.stats : VM_STATS_OFF;
}

typedef struct {
    FILE *out;
    int json;
    int first;
} report;

static uint64_t pct(const uint64_t *samples, uint32_t n, double p)
{
    uint64_t v = 0;
    if (rt_stats_percentile(samples, n, p, &v))
        return 0;
    return v;
}

static void thread_row(void *arg, uint64_t id, int live, const rt_thread_stats *s)
{
    report *r = arg;
    uint64_t hp50 = pct(s->hold_samples, s->nhold, 50), hp99 = pct(s->hold_samples, s->nhold, 99);
    uint64_t wp50 = pct(s->wait_samples, s->nwait, 50), wp99 = pct(s->wait_samples, s->nwait, 99);
    if (r->json) {
        fprintf(r->out,
                "%s{\"id\": %" PRIu64 ", \"live\": %s, \"switches\": %" PRIu64
                ", \"forced_switches\": %" PRIu64 ", \"drop_requests\": %" PRIu64
                ", \"bytecodes\": %" PRIu64 ", \"hold_ns\": {\"total\": %" PRIu64 ", \"max\": %" PRIu64
                ", \"p50\": %" PRIu64 ", \"p99\": %" PRIu64 "}, \"wait_ns\": {\"total\": %" PRIu64
                ", \"max\": %" PRIu64 ", \"p50\": %" PRIu64 ", \"p99\": %" PRIu64
                "}, \"pending_calls\": %" PRIu64 ", \"signals\": %" PRIu64 ", \"gc_runs\": %" PRIu64 "}",
                r->first ? "" : ", ", id, live ? "true" : "false", s->switches, s->forced_switches,
                s->drop_requests, s->bytecodes, s->hold_ns, s->hold_max_ns, hp50, hp99, s->wait_ns,
                s->wait_max_ns, wp50, wp99, s->pending_calls, s->signals, s->gc_runs);
    } else {
        fprintf(r->out,
                "  thread %" PRIu64 ": switches %" PRIu64 ", forced %" PRIu64 ", drop requests %" PRIu64
                ", bytecodes %" PRIu64 "\n"
                "    hold  total %.3f ms  max %.3f ms  p50 %.3f ms  p99 %.3f ms\n"
                "    wait  total %.3f ms  max %.3f ms  p50 %.3f ms  p99 %.3f ms\n"
                "    pending calls %" PRIu64 ", signals %" PRIu64 ", gc runs %" PRIu64 "\n",
                id, s->switches, s->forced_switches, s->drop_requests, s->bytecodes,
                s->hold_ns / 1e6, s->hold_max_ns / 1e6, hp50 / 1e6, hp99 / 1e6, s->wait_ns / 1e6,
                s->wait_max_ns / 1e6, wp50 / 1e6, wp99 / 1e6, s->pending_calls, s->signals,
                s->gc_runs);
    }
    r->first = 0;
}

void vm_instruments_finish(vm_thread *t)
{
    if (started_pid != getpid()) {      /* not started, or a forked child: not ours to report */
        vm_trace_close();
        return;
    }
    /* The hold in progress is closed into the stats and the trace (other threads of t's
     * interpreter wait, or are blocked without the GIL; a thread of another interpreter that
     * holds that interpreter's own GIL is not ours to touch, and its hold goes unreported). */
    if (rt_thread_current() == &t->base && atomic_load(&t->base.state) == RT_ATTACHED)
        rt_stats_close_hold(&t->base, rt_now_ns());
    vm_trace_close();
    started_pid = 0;
    if (!config.stats)
        return;
    report r = {stderr, config.stats == VM_STATS_JSON, 1};
    if (r.json)
        fprintf(stderr, "{\"interpreters\": [");
    int first_interp = 1;
    /* Oldest (main) first; the runtime's list is newest first.  Sub-interpreters are still
     * there: they are destroyed after this report (gilvm_runtime_finalize). */
    for (int64_t after = -1;;) {
        rt_interp *in = NULL;
        for (rt_interp *x = rt_main_runtime.interps; x; x = x->next)
            if (x->id > after && (!in || x->id < in->id))
                in = x;
        if (!in)
            break;
        after = in->id;
        vm_interp *vi = (vm_interp *)in;
        int own = in->gil == &in->own;
        if (r.json)
            fprintf(stderr, "%s{\"id\": %" PRId64 ", \"own_gil\": %s, \"switch_interval_us\": %" PRIu64
                    ", \"gc_collections\": %zu, \"threads\": [",
                    first_interp ? "" : ", ", in->id, own ? "true" : "false",
                    rt_interp_switch_interval(in), vi->ncollections);
        else
            fprintf(stderr, "interpreter %" PRId64 ": switch interval %" PRIu64 " us, %zu GC runs%s\n",
                    in->id, rt_interp_switch_interval(in), vi->ncollections,
                    in->id == 0 ? "" : own ? ", own GIL" : ", shared GIL");
        r.first = 1;
        rt_interp_stats_foreach(in, thread_row, &r);
        if (r.json)
            fprintf(stderr, "]}");
        first_interp = 0;
    }
    if (r.json)
        fprintf(stderr, "]");
    vm_schedule_report(stderr, r.json);
    if (r.json)
        fprintf(stderr, "}\n");
}

/* Instruments: --stats (per interpreter and per thread GIL and execution counters, printed
 * to stderr at exit as text or one JSON object) and --trace (a Chrome Trace Event file of GIL
 * holds and waits, drop requests, forced switches, signals, pending calls and collections;
 * opens in Perfetto and chrome://tracing).  docs/cli.md describes both. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "vm/api/instruments.h"

static vm_instruments_config config;

/* The trace file.  Events come from any thread (each interpreter's GIL serialises only its
 * own threads), so writes take trace_mu. */
static FILE *trace_fp;
static pthread_mutex_t trace_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t trace_t0;
static int trace_first;

/* Writes one event; `args`, if not NULL, is the text of a JSON object. */
static void trace_write(rt_thread *t, const char *name, char ph, uint64_t start, uint64_t end,
                        const char *args)
{
    pthread_mutex_lock(&trace_mu);
    if (trace_fp) {
        uint64_t ts = start > trace_t0 ? start - trace_t0 : 0;
        fprintf(trace_fp, "%s\n{\"name\": \"%s\", \"ph\": \"%c\", \"ts\": %.3f, \"pid\": %" PRId64
                ", \"tid\": %" PRIu64, trace_first ? "" : ",", name, ph, ts / 1e3, t->interp->id, t->id);
        if (ph == 'X')
            fprintf(trace_fp, ", \"dur\": %.3f", (end - start) / 1e3);
        else
            fputs(", \"s\": \"t\"", trace_fp);
        if (args)
            fprintf(trace_fp, ", \"args\": %s", args);
        fputc('}', trace_fp);
        trace_first = 0;
    }
    pthread_mutex_unlock(&trace_mu);
}

static void gil_event(rt_thread *t, int event, uint64_t start, uint64_t end)
{
    static const char *const names[] = {
        [RT_GIL_EV_WAIT] = "wait GIL", [RT_GIL_EV_HOLD] = "hold GIL",
        [RT_GIL_EV_DROP_REQUEST] = "drop request", [RT_GIL_EV_FORCED_SWITCH] = "forced switch",
    };
    trace_write(t, names[event], start == end ? 'i' : 'X', start, end, NULL);
}

static void async_event(rt_thread *t, int event, int arg)
{
    uint64_t now = rt_now_ns();
    if (event == RT_EV_SIGNAL) {
        char args[32];
        snprintf(args, sizeof args, "{\"signum\": %d}", arg);
        trace_write(t, "signal", 'i', now, now, args);
    } else
        trace_write(t, event == RT_EV_GC ? "gc" : "pending call", 'i', now, now, NULL);
}

int vm_instruments_start(const vm_instruments_config *cfg)
{
    config = *cfg;
    if (cfg->trace_path) {
        trace_fp = fopen(cfg->trace_path, "w");
        if (!trace_fp) {
            fprintf(stderr, "gilvm: can't open trace file '%s': %s\n", cfg->trace_path,
                    strerror(errno));
            return -1;
        }
        trace_t0 = rt_now_ns();
        trace_first = 1;
        fputs("{\"displayTimeUnit\": \"ms\", \"traceEvents\": [", trace_fp);
        rt_main_runtime.hooks.gil_event = gil_event;
        rt_main_runtime.hooks.async_event = async_event;
    }
    return 0;
}

/* Names the trace's processes (interpreters) and threads, then closes the file. */
static void trace_finish(void)
{
    if (!trace_fp)
        return;
    pthread_mutex_lock(&trace_mu);
    for (rt_interp *in = rt_main_runtime.interps; in; in = in->next) {
        fprintf(trace_fp, "%s\n{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %" PRId64
                ", \"args\": {\"name\": \"interpreter %" PRId64 "\"}}", trace_first ? "" : ",",
                in->id, in->id);
        trace_first = 0;
    }
    fputs("\n]}\n", trace_fp);
    if (fclose(trace_fp))
        fprintf(stderr, "gilvm: error writing the trace file: %s\n", strerror(errno));
    trace_fp = NULL;
    pthread_mutex_unlock(&trace_mu);
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
    trace_finish();
    if (!config.stats)
        return;
    report r = {stderr, config.stats == VM_STATS_JSON, 1};
    if (r.json)
        fprintf(stderr, "{\"interpreters\": [");
    int first_interp = 1;
    for (rt_interp *in = rt_main_runtime.interps; in; in = in->next) {
        vm_interp *vi = (vm_interp *)in;
        if (r.json)
            fprintf(stderr, "%s{\"id\": %" PRId64 ", \"switch_interval_us\": %" PRIu64
                    ", \"gc_collections\": %zu, \"threads\": [",
                    first_interp ? "" : ", ", in->id, rt_interp_switch_interval(in),
                    vi->ncollections);
        else
            fprintf(stderr, "interpreter %" PRId64 ": switch interval %" PRIu64 " us, %zu GC runs\n",
                    in->id, rt_interp_switch_interval(in), vi->ncollections);
        r.first = 1;
        rt_interp_stats_foreach(in, thread_row, &r);
        if (r.json)
            fprintf(stderr, "]}");
        first_interp = 0;
    }
    if (r.json)
        fprintf(stderr, "]}\n");
    (void)t;
}

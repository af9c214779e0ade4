/* --trace=FILE.json: a Chrome Trace Event file (opens in Perfetto and chrome://tracing) of GIL
 * holds and waits, drop requests, forced switches, signals, pending calls and collections,
 * written as the runtime reports them through rt_hooks.gil_event and async_event.
 * docs/cli.md describes the format. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "vm/api/instruments.h"

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

int vm_trace_open(const char *path)
{
    trace_fp = fopen(path, "w");
    if (!trace_fp) {
        fprintf(stderr, "gilvm: can't open trace file '%s': %s\n", path, strerror(errno));
        return -1;
    }
    trace_t0 = rt_now_ns();
    trace_first = 1;
    fputs("{\"displayTimeUnit\": \"ms\", \"traceEvents\": [", trace_fp);
    rt_main_runtime.hooks.gil_event = gil_event;
    rt_main_runtime.hooks.async_event = async_event;
    return 0;
}

/* Names the trace's processes (interpreters) and threads, then closes the file. */
void vm_trace_close(void)
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


/* SPDX-License-Identifier: MIT */
/* A complete host program embedding gilvm: it runs a script (.gasm or .gbc) that you do not
 * trust, with no unsafe builtins and a budget, gives it a C function to call, calls the
 * script's `on_event` function for each word of its own command line, and reports errors as
 * data.  docs/embedding.md walks through it.  Build it against an installed gilvm:
 *
 *     cc -o host host.c $(pkg-config --cflags --libs gilvm)
 *     ./host script.gasm one two three
 *
 * (examples/embed/script.gasm is such a script.) */
#include <gilvm.h>
#include <stdio.h>
#include <string.h>

/* log_event(text) for the script: counts the calls (in `data`) and prints through the host. */
static int log_event(void *data, int argc, const gilvm_value *argv, gilvm_value *result)
{
    if (argv[0].type != GILVM_STR)
        return gilvm_raise("TypeError", "log_event() wants a str");
    int *count = data;
    printf("[host] event %d: %.*s\n", ++*count, (int)argv[0].u.s.len, argv[0].u.s.data);
    *result = gilvm_int(*count);
    return 0;
}

/* Everything the script prints, prefixed, so the host's own output stays apart. */
static void output(void *data, int stream, const char *text, size_t len)
{
    fprintf(stream == 2 ? stderr : stdout, "%s%.*s", (const char *)data, (int)len, text);
}

static void report(const char *what)
{
    fprintf(stderr, "[host] %s failed: %s: %s\n%s", what, gilvm_error_type(), gilvm_error_message(),
            gilvm_error_traceback());
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SCRIPT [WORD...]\n", argv[0]);
        return 2;
    }
    gilvm_config cfg = {0};
    cfg.exclude = GILVM_LIB_UNSAFE;         /* no fork, kill, signal, fd or native calls */
    cfg.no_signal_handlers = 1;             /* SIGINT stays the host's */
    if (gilvm_runtime_init(&cfg))
        return 1;
    gilvm_set_output(output, "[script] ");

    int events = 0;
    gilvm_register("log_event", 1, log_event, &events);
    gilvm_limits lim = {0};
    lim.max_instructions = 10000000;        /* per run: set again before each */
    lim.timeout_ms = 2000;
    gilvm_set_limits(&lim);

    int status = gilvm_run_file(argv[1]);
    if (status != GILVM_EXIT_OK) {
        report("the script");
        return gilvm_runtime_finalize(status);
    }
    for (int i = 2; i < argc; i++) {
        gilvm_set_limits(&lim);
        gilvm_value arg = gilvm_str(argv[i]), result;
        if (gilvm_call("on_event", 1, &arg, &result)) {
            report("on_event");
            continue;
        }
        if (result.type == GILVM_STR)
            printf("[host] on_event(%s) returned '%s'\n", argv[i], result.u.s.data);
        else if (result.type == GILVM_INT)
            printf("[host] on_event(%s) returned %lld\n", argv[i], (long long)result.u.i);
        gilvm_value_clear(&result);
    }
    gilvm_error_clear();
    printf("[host] %d events logged\n", events);
    return gilvm_runtime_finalize(0);
}

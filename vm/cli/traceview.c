/* SPDX-License-Identifier: MIT */
/* `gilvm trace-view IN.json -o OUT.html` (docs/cli.md): writes a --trace file into a page
 * that draws it, so a trace can be looked at without Perfetto.  Called by the CLI (main.c).
 *
 * The C side does not parse the JSON: it copies the file's bytes into the page
 * (vm/cli/traceview.html, made C strings by the Makefile) inside a
 * <script type="application/json">, and the page's script parses and draws it; invalid JSON
 * is reported in the page.  Here only what the command line can tell cheaply is checked:
 * the file reads, and its first non-blank byte opens a JSON object or array.  Every '<' of
 * the trace is written as \u003c (in valid JSON it can only be inside a string, where the
 * escape means the same), so no "</script" or "<!--" in the trace can end the element. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/api/gilvm.h"
#include "vm/api/run.h"
#include "vm/cli/cmdline.h"
#include "vm/cli/traceview.h"

/* The page's lines (each a literal, so none is longer than C's translation limits ask). */
static const char *const page[] = {
#include "vm/cli/traceview.html.h"
};

/* Writes s with &, <, > and " as entities. */
static void put_html(FILE *fp, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", fp); break;
        case '<': fputs("&lt;", fp); break;
        case '>': fputs("&gt;", fp); break;
        case '"': fputs("&quot;", fp); break;
        default: fputc(*s, fp);
        }
    }
}

/* Writes the trace's bytes with every '<' as \u003c. */
static void put_trace(FILE *fp, const char *data, size_t len)
{
    const char *end = data + len;
    while (data < end) {
        const char *lt = memchr(data, '<', (size_t)(end - data));
        size_t run = (size_t)((lt ? lt : end) - data);
        fwrite(data, 1, run, fp);
        data += run;
        if (lt) {
            fputs("\\u003c", fp);
            data++;
        }
    }
}

/* Writes the page for the trace `data` read from `name` to `path`; 0, or -1 with errno set.
 * Every step is checked (a full disk shows only at the flush or the close: `-o /dev/full`
 * in tests/check-trace-view); a regular file left half-written is removed. */
static int write_page(const char *path, const char *name, const char *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    for (size_t i = 0; i < sizeof page / sizeof page[0]; i++) {
        for (const char *p = page[i]; *p;) {
            const char *at = strchr(p, '@');
            if (!at) {
                fputs(p, fp);
                break;
            }
            fwrite(p, 1, (size_t)(at - p), fp);
            if (!strncmp(at, "@NAME@", 6)) {
                put_html(fp, name);
                p = at + 6;
            } else if (!strncmp(at, "@TRACE@", 7)) {
                put_trace(fp, data, len);
                p = at + 7;
            } else {
                fputc('@', fp);
                p = at + 1;
            }
        }
    }
    return cli_output_close(fp, path);
}

int vm_trace_view_main(int argc, char **argv)
{
    const char *in, *out;
    int bad = cli_in_out(argc, argv, "trace-view", &in, &out);
    if (bad)
        return bad;
    if (!out)
        return cli_usage_error("%s", "trace-view: missing output file (-o OUT.html)");
    char *data;
    size_t len;
    if (vm_read_file(in, &data, &len)) {
        fprintf(stderr, "gilvm: can't open file '%s': %s\n", in, strerror(errno));
        return GILVM_EXIT_USAGE;
    }
    size_t i = strspn(data, " \t\r\n");
    if (i == len || (data[i] != '{' && data[i] != '[')) {
        fprintf(stderr, "gilvm: '%s' is not a trace file (a --trace file is JSON: it starts "
                "with '{')\n", in);
        vm_free(data);
        return GILVM_EXIT_DATAERR;
    }
    int rc = 0;
    if (write_page(out, in, data, len)) {
        fprintf(stderr, "gilvm: can't write '%s': %s\n", out, strerror(errno));
        rc = GILVM_EXIT_EXCEPTION;
    }
    vm_free(data);
    return rc;
}

/* SPDX-License-Identifier: MIT */
/* `gilvm trace-view`: a --trace file as a self-contained HTML timeline (traceview.c); called
 * by the CLI. */
#ifndef VM_TRACEVIEW_H
#define VM_TRACEVIEW_H

/* Runs `gilvm trace-view IN.json -o OUT.html` with the arguments after "trace-view"; returns
 * the exit status (0, 1 output not written, 2 usage error or unreadable input, 65 not a
 * trace), having printed one line on stderr for any failure. */
int vm_trace_view_main(int argc, char **argv);

#endif

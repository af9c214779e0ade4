/* SPDX-License-Identifier: MIT */
/* Where the program's output goes: print, tracebacks and "Exception ignored" reports go
 * through vm_write, to stdout and stderr or to the embedder's hook (gilvm_set_output).
 * Used by vm/core/exc.c, the library's natives and the embedding API. */
#ifndef VM_OUTPUT_H
#define VM_OUTPUT_H

#include <stddef.h>

enum { VM_STDOUT = 1, VM_STDERR = 2 };

/* The embedder's hook: fn(data, stream, text, len); NULL for stdout and stderr. */
typedef void (*vm_write_fn)(void *data, int stream, const char *text, size_t len);

/* Sets the hook (any thread; a writer sees the old or the new pair, never a mix). */
void vm_output_set(vm_write_fn fn, void *data);

/* Writes len bytes to `stream` (VM_STDOUT or VM_STDERR). */
void vm_write(int stream, const char *text, size_t len);

/* Writes a formatted line fragment to `stream`. */
void vm_printf(int stream, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Before writing to stderr: flushes stdout when it is the real one, so the two interleave
 * in order on a terminal. */
void vm_output_flush(void);

#endif

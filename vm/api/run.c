/* SPDX-License-Identifier: MIT */
/* Loading and running a program, shared by the embedding API, the CLI and the REPL:
 * reading a file, reading .gbc or assembling .gasm, verifying, linking and running a module
 * body, and turning an uncaught exception into an exit status. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/api/gilvm.h"
#include "vm/api/run.h"
#include "vm/core/output.h"

int vm_read_file(const char *path, char **data, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -1;
    size_t cap = 1 << 16, n = 0;
    char *buf = vm_malloc(cap + 1);
    for (;;) {
        if (!buf) {
            fclose(fp);
            errno = ENOMEM;
            return -1;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (n < cap) {
            if (ferror(fp)) {
                int e = errno;
                vm_free(buf);
                fclose(fp);
                errno = e ? e : EIO;
                return -1;
            }
            break;
        }
        cap *= 2;
        char *more = vm_realloc(buf, cap + 1);
        if (!more)
            vm_free(buf);
        buf = more;
    }
    fclose(fp);
    buf[n] = 0;
    *data = buf;
    *len = n;
    return 0;
}

int vm_load_source(vm_thread *t, const char *name, const char *data, size_t len, vm_module *m,
                   char *err, size_t errlen)
{
    if (len >= 8 && memcmp(data, "GILVMBC", 8) == 0)
        return vm_bc_read(t, name, (const uint8_t *)data, len, m, err, errlen) ? -1 : 0;
    if (asm_assemble(t, name, data, len, 0, m, err, errlen)) {
        char where[1024];               /* the line and a caret under the error, after it */
        asm_error_context(name, data, len, err, where, sizeof where);
        size_t n = strlen(err);
        if (where[0] && n + 1 + strlen(where) < errlen)
            snprintf(err + n, errlen - n, "\n%s", where);
        return -1;
    }
    return vm_module_verify(m, name, err, errlen);
}

int vm_module_verify(vm_module *m, const char *name, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < m->ncodes; i++) {
        char why[512];
        if (vm_verify_code(m->codes[i], why, sizeof why)) {
            snprintf(err, errlen, "%s: %s", name, why);
            vm_module_free(m);
            return -1;
        }
    }
    return 0;
}

int vm_load_file(vm_thread *t, const char *path, vm_module *m, char *err, size_t errlen)
{
    char *data;
    size_t len;
    if (vm_read_file(path, &data, &len)) {
        snprintf(err, errlen, "can't open file '%s': %s", path, strerror(errno));
        return GILVM_EXIT_USAGE;
    }
    int rc = vm_load_source(t, path, data, len, m, err, errlen);
    vm_free(data);
    return rc ? GILVM_EXIT_DATAERR : 0;
}

int vm_exit_status(vm_thread *t)
{
    value e = t->exc;
    t->exc = V_UNDEF;
    if (e.tag != T_EXC)
        return GILVM_EXIT_OK;
    vm_interp *in = VM_INTERP(t);
    vm_exc *x = AS_EXC(e);
    vm_output_flush();
    if (vm_class_is(x->cls, in->exc.system_exit)) {
        value code = x->arg;
        if (code.tag == T_NONE)
            return 0;
        if (code.tag == T_INT || code.tag == T_BOOL)
            return (int)(code.u.i & 0xff);
        value s = vm_to_str(t, code);
        vm_printf(VM_STDERR, "%s\n", AS_STR(s)->data);
        return 1;
    }
    vm_print_traceback(t, e);
    if (vm_class_is(x->cls, in->exc.keyboard_interrupt))
        return GILVM_EXIT_SIGINT;
    if (x->cls == in->exc.limit_exceeded)
        return GILVM_EXIT_LIMIT;
    return GILVM_EXIT_EXCEPTION;
}

int vm_run_module(vm_thread *t, vm_module *m)
{
    vm_module_link(t, m);
    vm_code *body = m->codes[0];
    vm_module_free(m);
    return vm_run_code(t, body, NULL, NULL, 0) ? vm_exit_status(t) : GILVM_EXIT_OK;
}

/* ---- public API ---- */

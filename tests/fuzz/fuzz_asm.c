/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the assembler (asm_assemble) and the identities between assembler,
 * .gbc writer and reader, and disassembler.  Built and run by `make fuzz` (docs/fuzzing.md);
 * reproduce a crash with `build/fuzz/fuzz_asm CRASHFILE`.  Nothing is run.
 *
 * For input text that assembles, with W = vm_bc_write, R = vm_bc_read, D = dis_module and
 * A = asm_assemble:
 *   - if the verifier accepts every code object: W(R(W(m))) == W(m) (R must accept it);
 *   - always: A(D(m)) assembles, W(A(D(m))) == W(m), and D(A(D(m))) == D(m).
 * (W refuses tuple constants nested deeper than the reader reads, which the assembler
 * accepts; for those only the text identity is checked.)  A mismatch aborts with a message,
 * so libFuzzer saves the input. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/api/gilvm.h"
#include "vm/core/state.h"
#include "vm/toolchain/module.h"

#define NAME "fuzz.gasm"

static vm_thread *T;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    gilvm_config cfg = {0};
    cfg.no_signal_handlers = 1;
    if (gilvm_runtime_init(&cfg))
        abort();
    T = vm_main_thread();
    return 0;
}

__attribute__((noreturn, format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz_asm: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static char *dis_text(const vm_module *m, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f)
        fail("open_memstream failed");
    if (dis_module(f, m))
        fail("dis_module failed");
    fclose(f);
    return text;
}

static int verified(const vm_module *m)
{
    char why[512];
    for (uint32_t i = 0; i < m->ncodes; i++)
        if (vm_verify_code(m->codes[i], why, sizeof why))
            return 0;
    return 1;
}

static void same_bytes(const char *what, const uint8_t *a, size_t na, const uint8_t *b,
                       size_t nb)
{
    if (na == nb && memcmp(a, b, na) == 0)
        return;
    size_t at = 0;
    while (at < na && at < nb && a[at] == b[at])
        at++;
    fail("%s: %zu vs %zu bytes, first difference at byte %zu", what, na, nb, at);
}

/* W(R(W(m))) == W(m) for a verified module m, whose image is `img`. */
static void check_write_read(vm_thread *t, const uint8_t *img, size_t len)
{
    vm_module r;
    char err[1024];
    if (vm_bc_read(t, "fuzz.gbc", img, len, &r, err, sizeof err))
        fail("vm_bc_read rejected the image of a verified module: %s", err);
    size_t len2 = 0;
    uint8_t *img2 = vm_bc_write(&r, &len2);
    if (!img2)
        fail("vm_bc_write refused a module vm_bc_read accepted");
    same_bytes("write -> read -> write", img, len, img2, len2);
    free(img2);
    vm_module_free(&r);
}

/* A(D(m)) assembles to m again: same image (when m has one) and same listing. */
static void check_dis_asm(vm_thread *t, const vm_module *m, const uint8_t *img, size_t len)
{
    size_t tlen = 0;
    char *text = dis_text(m, &tlen);
    vm_module m2;
    char err[1024];
    if (asm_assemble(t, NAME, text, tlen, 0, &m2, err, sizeof err)) {
        fprintf(stderr, "---- disassembly ----\n%s---- end ----\n", text);
        fail("the disassembly does not assemble: %s", err);
    }
    size_t len2 = 0;
    uint8_t *img2 = vm_bc_write(&m2, &len2);
    if (!img != !img2)
        fail("vm_bc_write %s the module but %s its disassembly's", img ? "wrote" : "refused",
             img2 ? "wrote" : "refused");
    if (img)
        same_bytes("dis -> asm", img, len, img2, len2);
    size_t tlen2 = 0;
    char *text2 = dis_text(&m2, &tlen2);
    if (tlen != tlen2 || memcmp(text, text2, tlen) != 0) {
        fprintf(stderr, "---- first ----\n%s---- second ----\n%s---- end ----\n", text, text2);
        fail("dis -> asm -> dis gives another listing");
    }
    free(img2);
    free(text);
    free(text2);
    vm_module_free(&m2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vm_thread *t = T;
    vm_module m;
    char err[1024];
    if (asm_assemble(t, NAME, (const char *)data, size, 0, &m, err, sizeof err) == 0) {
        size_t len = 0;
        uint8_t *img = vm_bc_write(&m, &len);
        if (img && verified(&m))
            check_write_read(t, img, len);
        check_dis_asm(t, &m, img, len);
        free(img);
        vm_module_free(&m);
    }
    vm_gc_collect(t);       /* nothing runs, so nothing else collects */
    return 0;
}

/* SPDX-License-Identifier: MIT */
/* Bytecode files (.gbc): vm_bc_write serialises a module, vm_bc_read parses one with every
 * count bounds-checked against the bytes left, then runs the verifier on each code object.
 * Called by the CLI (`gilvm asm`) and the loader (api.c).  Layout: docs/bytecode.md.
 *
 * Reading trusts nothing: a count is checked against the remaining bytes before anything is
 * allocated for it, so a corrupted count fails cleanly instead of asking for a huge block.
 * Objects are created on t's heap (vm_str_new, vm_tuple_new, vm_code_new); no collection runs
 * while loading (vm_alloc only schedules one), and after a failure the half-built objects
 * are garbage the collector frees later, so every code object keeps its counts consistent
 * with its arrays at all times. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "vm/toolchain/module.h"

#define BC_MAGIC       "GILVMBC"        /* 8 bytes with the NUL */
#define BC_MAJOR       1
#define BC_MINOR       0
#define BC_BOM         0x01020304u
#define BC_HEADER_SIZE 28
#define BC_MAX_NESTING 32               /* tuples inside tuples in the constant table */
#define BC_MIN_CODE    40               /* bytes of the smallest code object record */

enum { K_NONE, K_FALSE, K_TRUE, K_INT, K_FLOAT, K_STR, K_BYTES, K_TUPLE };

/* ---- writing ---- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
    int bad;                            /* out of memory or unserialisable */
} wbuf;

static void put(wbuf *b, const void *src, size_t n)
{
    if (b->bad)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = vm_realloc(b->p, cap);
        if (!p) {
            b->bad = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u8(wbuf *b, uint8_t v) { put(b, &v, 1); }
static void put_u32(wbuf *b, uint32_t v) { put(b, &v, 4); }

static void put_bytes(wbuf *b, const char *s, size_t n)
{
    if (n > UINT32_MAX) {
        b->bad = 1;
        return;
    }
    put_u32(b, (uint32_t)n);
    put(b, s, n);
}

static void put_str(wbuf *b, const vm_str *s)
{
    if (s)
        put_bytes(b, s->data, s->len);
    else
        put_u32(b, 0);
}

static void put_const(wbuf *b, value v, int nesting)
{
    switch ((vm_tag)v.tag) {
    case T_NONE: put_u8(b, K_NONE); break;
    case T_BOOL: put_u8(b, v.u.i ? K_TRUE : K_FALSE); break;
    case T_INT: put_u8(b, K_INT); put(b, &v.u.i, sizeof(int64_t)); break;
    case T_FLOAT: put_u8(b, K_FLOAT); put(b, &v.u.f, sizeof(double)); break;
    case T_STR: put_u8(b, K_STR); put_str(b, AS_STR(v)); break;
    case T_BYTES: put_u8(b, K_BYTES); put_str(b, AS_STR(v)); break;
    case T_TUPLE: {
        vm_tuple *tu = AS_TUPLE(v);
        if (nesting >= BC_MAX_NESTING || tu->len > UINT32_MAX) {
            b->bad = 1;
            return;
        }
        put_u8(b, K_TUPLE);
        put_u32(b, (uint32_t)tu->len);
        for (size_t i = 0; i < tu->len; i++)
            put_const(b, tu->items[i], nesting + 1);
        break;
    }
    default:
        b->bad = 1;                     /* no file form for this constant */
        break;
    }
}

static void put_code(wbuf *b, const vm_code *c)
{
    put_u32(b, c->flags);
    put_str(b, c->name);
    put_u32(b, c->nparams);
    put_u32(b, c->nlocals);
    put_u32(b, c->entry_depth);
    put_u32(b, c->maxstack);
    for (uint32_t i = 0; i < c->nlocals; i++)
        put_str(b, c->localnames[i]);
    put_u32(b, c->ncode);
    put(b, c->code, (size_t)c->ncode * sizeof(instr));
    put(b, c->lines, (size_t)c->ncode * sizeof(uint32_t));
    put_u32(b, c->nconsts);
    for (uint32_t i = 0; i < c->nconsts; i++)
        put_const(b, c->consts[i], 0);
    put_u32(b, c->nnames);
    for (uint32_t i = 0; i < c->nnames; i++)
        put_str(b, c->names[i]);
    put_u32(b, c->nexc);
    for (uint32_t i = 0; i < c->nexc; i++) {
        put_u32(b, c->exc[i].start);
        put_u32(b, c->exc[i].end);
        put_u32(b, c->exc[i].target);
        put_u32(b, c->exc[i].depth);
    }
}

static uint32_t body_crc(const uint8_t *p, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)crc;
}

uint8_t *vm_bc_write(const vm_module *m, size_t *len)
{
    wbuf b = {0};
    uint8_t header[BC_HEADER_SIZE] = {0};
    put(&b, header, sizeof header);     /* filled in below */
    put_str(&b, m->ncodes ? m->codes[0]->file : NULL);
    put_u32(&b, m->ncodes);
    for (uint32_t i = 0; i < m->ncodes; i++)
        put_code(&b, m->codes[i]);
    size_t body = b.len - BC_HEADER_SIZE;
    if (b.bad || body > UINT32_MAX) {
        vm_free(b.p);
        return NULL;
    }
    uint16_t major = BC_MAJOR, minor = BC_MINOR;
    uint32_t bom = BC_BOM, blen = (uint32_t)body, crc = body_crc(b.p + BC_HEADER_SIZE, body);
    memcpy(header, BC_MAGIC, 8);
    memcpy(header + 8, &major, 2);
    memcpy(header + 10, &minor, 2);
    memcpy(header + 12, &bom, 4);
    header[16] = sizeof(int64_t);
    header[17] = sizeof(double);
    header[18] = sizeof(instr);
    header[19] = 0;
    memcpy(header + 20, &blen, 4);
    memcpy(header + 24, &crc, 4);
    memcpy(b.p, header, sizeof header);
    *len = b.len;
    return b.p;
}

/* ---- reading ---- */

typedef struct {
    vm_thread *t;
    const uint8_t *base, *p, *end;
    const char *file;
    char *err;
    size_t errlen;
    int failed;
} reader;

/* Formats "FILE: reason" into the error buffer (first error wins) and returns -1. */
__attribute__((format(printf, 2, 3)))
static int rfail(reader *r, const char *fmt, ...)
{
    if (r->failed)
        return -1;
    r->failed = 1;
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (r->err && r->errlen)
        snprintf(r->err, r->errlen, "%s: %s", r->file, why);
    return -1;
}

static size_t left(const reader *r) { return (size_t)(r->end - r->p); }
static size_t offset(const reader *r) { return (size_t)(r->p - r->base); }

/* Takes n bytes, or fails naming what was being read. */
static const uint8_t *take(reader *r, size_t n, const char *what)
{
    if (r->failed)
        return NULL;
    if (n > left(r)) {
        rfail(r, "truncated body at byte %zu reading %s", offset(r), what);
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

static int get_u8(reader *r, uint8_t *v, const char *what)
{
    const uint8_t *p = take(r, 1, what);
    if (!p)
        return -1;
    *v = *p;
    return 0;
}

static int get_u32(reader *r, uint32_t *v, const char *what)
{
    const uint8_t *p = take(r, 4, what);
    if (!p)
        return -1;
    memcpy(v, p, 4);
    return 0;
}

/* Reads a count of records of at least `min` bytes each and checks it against the bytes
 * left, before the caller allocates for it. */
static int get_count(reader *r, uint32_t *n, size_t min, const char *what)
{
    size_t at = offset(r);
    if (get_u32(r, n, what))
        return -1;
    if (*n > left(r) / min)
        return rfail(r, "corrupt body at byte %zu: %s %u exceeds the %zu bytes left", at, what,
                     *n, left(r));
    return 0;
}

static vm_str *get_str(reader *r, int bytes, const char *what)
{
    uint32_t n;
    char label[64];
    snprintf(label, sizeof label, "%s length", what);
    if (get_count(r, &n, 1, label))
        return NULL;
    const uint8_t *p = take(r, n, what);
    if (!p)
        return NULL;
    value v = bytes ? vm_bytes_new(r->t, (const char *)p, n)
                    : vm_str_new(r->t, (const char *)p, n);
    return AS_STR(v);
}

static int get_const(reader *r, value *out, int nesting)
{
    size_t at = offset(r);
    uint8_t k;
    if (get_u8(r, &k, "constant tag"))
        return -1;
    switch (k) {
    case K_NONE: *out = V_NONE; return 0;
    case K_FALSE: *out = V_BOOL(0); return 0;
    case K_TRUE: *out = V_BOOL(1); return 0;
    case K_INT: {
        const uint8_t *p = take(r, sizeof(int64_t), "int constant");
        if (!p)
            return -1;
        int64_t i;
        memcpy(&i, p, sizeof i);
        *out = V_INT(i);
        return 0;
    }
    case K_FLOAT: {
        const uint8_t *p = take(r, sizeof(double), "float constant");
        if (!p)
            return -1;
        double x;
        memcpy(&x, p, sizeof x);
        *out = V_FLOAT(x);
        return 0;
    }
    case K_STR:
    case K_BYTES: {
        vm_str *s = get_str(r, k == K_BYTES, k == K_BYTES ? "bytes constant" : "str constant");
        if (!s)
            return -1;
        *out = V_OBJ(k == K_BYTES ? T_BYTES : T_STR, s);
        return 0;
    }
    case K_TUPLE: {
        if (nesting >= BC_MAX_NESTING)
            return rfail(r, "corrupt body at byte %zu: tuple constants nested deeper than %d",
                         at, BC_MAX_NESTING);
        uint32_t n;
        if (get_count(r, &n, 1, "tuple length"))
            return -1;
        value *items = vm_malloc((n ? n : 1) * sizeof *items);
        if (!items)
            return rfail(r, "out of memory");
        for (uint32_t i = 0; i < n; i++)
            if (get_const(r, &items[i], nesting + 1)) {
                vm_free(items);
                return -1;
            }
        *out = vm_tuple_new(r->t, n, items);
        vm_free(items);
        return 0;
    }
    default:
        return rfail(r, "corrupt body at byte %zu: unknown constant tag %u", at, k);
    }
}

static void *alloc_array(reader *r, size_t n, size_t size)
{
    void *p = vm_calloc(n ? n : 1, size);
    if (!p)
        rfail(r, "out of memory");
    return p;
}

/* Reads one code object record into a new code object; NULL on failure. */
static vm_code *get_code(reader *r, vm_str *file)
{
    size_t at = offset(r);
    uint32_t flags, nparams, nlocals, entry_depth, maxstack, n;
    if (get_u32(r, &flags, "code flags"))
        return NULL;
    if (flags & ~(uint32_t)CO_MODULE) {
        rfail(r, "corrupt body at byte %zu: unknown code flags 0x%x", at, (unsigned)flags);
        return NULL;
    }
    vm_str *name = get_str(r, 0, "function name");
    if (!name || get_u32(r, &nparams, "parameter count") ||
        get_u32(r, &nlocals, "local count") || get_u32(r, &entry_depth, "entry depth") ||
        get_u32(r, &maxstack, "stack size"))
        return NULL;

    vm_code *c = vm_code_new(r->t);
    c->flags = flags;
    c->name = name;
    c->file = file;
    c->nparams = nparams;
    c->entry_depth = entry_depth;
    c->maxstack = maxstack;

    if (nlocals > left(r) / 4) {
        rfail(r, "corrupt body at byte %zu: local count %u exceeds the %zu bytes left",
              offset(r) - 12, nlocals, left(r));
        return NULL;
    }
    if (!(c->localnames = alloc_array(r, nlocals, sizeof(vm_str *))))
        return NULL;
    c->nlocals = nlocals;               /* the collector skips NULL local names */
    for (uint32_t i = 0; i < nlocals; i++)
        if (!(c->localnames[i] = get_str(r, 0, "local name")))
            return NULL;

    if (get_count(r, &n, 2 * sizeof(uint32_t), "instruction count"))
        return NULL;
    if (!(c->code = alloc_array(r, n, sizeof(instr))) ||
        !(c->lines = alloc_array(r, n, sizeof(uint32_t))))
        return NULL;
    c->ncode = n;
    const uint8_t *ins = take(r, (size_t)n * sizeof(instr), "instructions");
    const uint8_t *lines = take(r, (size_t)n * sizeof(uint32_t), "line table");
    if (!ins || !lines)
        return NULL;
    memcpy(c->code, ins, (size_t)n * sizeof(instr));
    memcpy(c->lines, lines, (size_t)n * sizeof(uint32_t));

    if (get_count(r, &n, 1, "constant count"))
        return NULL;
    if (!(c->consts = alloc_array(r, n, sizeof(value))))
        return NULL;
    c->nconsts = n;                     /* calloc'd: T_UNDEF until read */
    for (uint32_t i = 0; i < n; i++)
        if (get_const(r, &c->consts[i], 0))
            return NULL;

    if (get_count(r, &n, 4, "name count"))
        return NULL;
    if (!(c->names = alloc_array(r, n, sizeof(vm_str *))))
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        if (!(c->names[i] = get_str(r, 0, "name")))
            return NULL;
        c->nnames = i + 1;              /* the collector reads names[0 .. nnames) */
    }

    if (get_count(r, &n, sizeof(vm_exc_entry), "exception entry count"))
        return NULL;
    if (!(c->exc = alloc_array(r, n, sizeof(vm_exc_entry))))
        return NULL;
    c->nexc = n;
    for (uint32_t i = 0; i < n; i++) {
        vm_exc_entry *e = &c->exc[i];
        if (get_u32(r, &e->start, "exception entry") || get_u32(r, &e->end, "exception entry") ||
            get_u32(r, &e->target, "exception entry") || get_u32(r, &e->depth, "exception entry"))
            return NULL;
    }
    return c;
}

static int check_header(reader *r, const uint8_t *d, size_t len)
{
    uint32_t bom, blen, crc;
    uint16_t major, minor;
    if (len == 0)
        return rfail(r, "not a gilvm bytecode file (empty)");
    if (len < 8)
        return memcmp(d, BC_MAGIC, len) == 0
                   ? rfail(r, "truncated header (%zu of %d bytes)", len, BC_HEADER_SIZE)
                   : rfail(r, "not a gilvm bytecode file (bad magic)");
    if (memcmp(d, BC_MAGIC, 8) != 0)
        return rfail(r, "not a gilvm bytecode file (bad magic)");
    if (len < 16)
        return rfail(r, "truncated header (%zu of %d bytes)", len, BC_HEADER_SIZE);
    memcpy(&major, d + 8, 2);
    memcpy(&minor, d + 10, 2);
    memcpy(&bom, d + 12, 4);
    if (bom == __builtin_bswap32(BC_BOM))
        return rfail(r, "written on a machine of other byte order");
    if (major != BC_MAJOR)
        return rfail(r, "bytecode format version %u.%u, this gilvm reads %d.x", major, minor,
                     BC_MAJOR);
    if (bom != BC_BOM)
        return rfail(r, "corrupt header: bad byte-order mark 0x%08x", (unsigned)bom);
    if (minor > BC_MINOR)
        return rfail(r, "bytecode format version %u.%u is newer than this gilvm's %d.%d",
                     major, minor, BC_MAJOR, BC_MINOR);
    if (len < BC_HEADER_SIZE)
        return rfail(r, "truncated header (%zu of %d bytes)", len, BC_HEADER_SIZE);
    if (d[16] != sizeof(int64_t) || d[17] != sizeof(double) || d[18] != sizeof(instr))
        return rfail(r, "written with int64/double/instruction sizes %u/%u/%u, this gilvm "
                     "uses %zu/%zu/%zu", d[16], d[17], d[18], sizeof(int64_t), sizeof(double),
                     sizeof(instr));
    if (d[19] != 0)
        return rfail(r, "corrupt header: reserved byte is %u", d[19]);
    memcpy(&blen, d + 20, 4);
    memcpy(&crc, d + 24, 4);
    size_t have = len - BC_HEADER_SIZE;
    if (have < blen)
        return rfail(r, "truncated: body is %u bytes, only %zu present", (unsigned)blen, have);
    if (have > blen)
        return rfail(r, "%zu bytes of trailing garbage after the body", have - blen);
    uint32_t actual = body_crc(d + BC_HEADER_SIZE, blen);
    if (actual != crc)
        return rfail(r, "checksum mismatch: body is corrupted (CRC-32 0x%08x, header says "
                     "0x%08x)", (unsigned)actual, (unsigned)crc);
    return 0;
}

int vm_bc_read(vm_thread *t, const char *filename, const uint8_t *data, size_t len,
               vm_module *out, char *err, size_t errlen)
{
    reader r = {t, data, data, data + len, filename, err, errlen, 0};
    out->ncodes = 0;
    out->codes = NULL;
    if (check_header(&r, data, len))
        return -1;
    r.p = data + BC_HEADER_SIZE;

    vm_str *file = get_str(&r, 0, "source file name");
    uint32_t ncodes;
    if (!file || get_count(&r, &ncodes, BC_MIN_CODE, "code object count"))
        return -1;
    if (ncodes == 0)
        return rfail(&r, "no code objects (a module body is required)");
    vm_code **codes = vm_calloc(ncodes, sizeof *codes);
    if (!codes)
        return rfail(&r, "out of memory");
    for (uint32_t i = 0; i < ncodes; i++) {
        size_t at = offset(&r);
        vm_code *c = get_code(&r, file);
        if (!c)
            goto fail;
        codes[i] = c;
        if (i == 0 && !(c->flags & CO_MODULE)) {
            rfail(&r, "corrupt body at byte %zu: the first code object is not a module body",
                  at);
            goto fail;
        }
        if (i > 0 && (c->flags & CO_MODULE)) {
            rfail(&r, "corrupt body at byte %zu: code object %u is a second module body", at, i);
            goto fail;
        }
        if (c->entry_depth) {           /* files run with an empty stack (vm_run_module) */
            rfail(&r, "corrupt body at byte %zu: entry stack depth %u (must be 0 in a file)",
                  at, c->entry_depth);
            goto fail;
        }
        char why[512];
        if (vm_verify_code(c, why, sizeof why)) {
            rfail(&r, "%s", why);
            goto fail;
        }
    }
    if (left(&r)) {
        rfail(&r, "corrupt body at byte %zu: %zu bytes of garbage after the last code object",
              offset(&r), left(&r));
        goto fail;
    }
    out->ncodes = ncodes;
    out->codes = codes;
    return 0;
fail:
    vm_free(codes);
    return -1;
}

/* SPDX-License-Identifier: MIT */
/* Host test: values in and out, calling bytecode functions by name, C functions, errors as
 * data, running .gasm and .gbc from memory, the output hook and the builtin groups.  Built
 * by tests/embed/run against the installed library (pkg-config, static and shared).
 * Usage: host_api PROG.gbc   (the same program as PROG below, assembled by `gilvm asm`)
 *        host_api --hash     (prints hash("gilvm"): the seed test) */
#include <gilvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char PROG[] =
    ".func add(a, b)\n LOAD_LOCAL a\n LOAD_LOCAL b\n ADD\n RETURN\n.end\n"
    ".func fail(msg)\n LOAD_GLOBAL ValueError\n LOAD_LOCAL msg\n CALL 1\n RAISE\n.end\n"
    ".func outer(msg)\n LOAD_GLOBAL fail\n LOAD_LOCAL msg\n CALL 1\n RETURN\n.end\n"
    ".func use_c(x)\n LOAD_GLOBAL c_twice\n LOAD_LOCAL x\n CALL 1\n LOAD_INT 1\n ADD\n RETURN\n.end\n"
    ".func catch_c()\n .local e\n .try h\n LOAD_GLOBAL c_fail\n CALL 0\n RETURN\n .end_try\n"
    "h:\n PUSH_EXC_INFO\n LOAD_GLOBAL ValueError\n CHECK_EXC_MATCH\n POP_JUMP_IF_FALSE re\n"
    " STORE_LOCAL e\n POP_EXCEPT\n LOAD_GLOBAL str\n LOAD_LOCAL e\n CALL 1\n RETURN\n"
    "re:\n SWAP\n POP_EXCEPT\n RERAISE\n.end\n"
    ".func items()\n LOAD_INT 1\n LOAD_CONST \"two\"\n BUILD_LIST 2\n RETURN\n.end\n"
    "LOAD_CONST 42\n STORE_GLOBAL answer\n";

/* C functions bytecode calls. */
static int c_twice(void *data, int argc, const gilvm_value *argv, gilvm_value *result)
{
    int *calls = data;
    ++*calls;
    if (argv[0].type != GILVM_INT)
        return gilvm_raise("TypeError", "c_twice() wants an int, got type %d", (int)argv[0].type);
    *result = gilvm_int(argv[0].u.i * 2);
    return 0;
}

static int c_fail(void *data, int argc, const gilvm_value *argv, gilvm_value *result)
{
    return gilvm_raise("ValueError", "raised in C (%d)", 7);
}

static int c_silent_fail(void *data, int argc, const gilvm_value *argv, gilvm_value *result)
{
    return -1;      /* no gilvm_raise: RuntimeError */
}

/* Concatenates its string arguments into a malloc'd result handed over with owned = 1. */
static int c_concat(void *data, int argc, const gilvm_value *argv, gilvm_value *result)
{
    size_t n = 0;
    for (int i = 0; i < argc; i++) {
        if (argv[i].type != GILVM_STR)
            return gilvm_raise("TypeError", "c_concat() wants str arguments");
        n += argv[i].u.s.len;
    }
    char *p = malloc(n + 1), *q = p;
    for (int i = 0; i < argc; i++) {
        memcpy(q, argv[i].u.s.data, argv[i].u.s.len);
        q += argv[i].u.s.len;
    }
    *q = 0;
    *result = gilvm_strn(p, n);
    result->owned = 1;
    return 0;
}

/* Re-enters bytecode: calls add(x, 100) through gilvm_call from inside a C function. */
static int c_reenter(void *data, int argc, const gilvm_value *argv, gilvm_value *result)
{
    gilvm_value args[2] = {argv[0], gilvm_int(100)};
    return gilvm_call("add", 2, args, result) ? gilvm_raise("RuntimeError", "nested call failed") : 0;
}

/* The output hook: everything the program writes, per stream. */
static char out_buf[2][8192];
static size_t out_len[2];
static void capture(void *data, int stream, const char *text, size_t len)
{
    int s = stream == 2;
    if (out_len[s] + len < sizeof out_buf[s]) {
        memcpy(out_buf[s] + out_len[s], text, len);
        out_len[s] += len;
        out_buf[s][out_len[s]] = 0;
    }
    ++*(int *)data;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "open the .gbc");
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    CHECK(strcmp(gilvm_version(), GILVM_VERSION_STRING) == 0, "gilvm_version matches the header");
    CHECK(GILVM_VERSION_NUM == GILVM_VERSION_MAJOR * 10000 + GILVM_VERSION_MINOR * 100 + GILVM_VERSION_PATCH,
          "GILVM_VERSION_NUM");
    gilvm_config cfg = {0};
    cfg.no_signal_handlers = 1;
    if (argc > 1 && strcmp(argv[1], "--hash") == 0) {
        CHECK(gilvm_runtime_init(&cfg) == 0, "init");
        gilvm_value s = gilvm_str("gilvm"), h;
        CHECK(gilvm_call("hash", 1, &s, &h) == 0 && h.type == GILVM_INT, "hash(\"gilvm\")");
        printf("%lld\n", (long long)h.u.i);
        return gilvm_runtime_finalize(0);
    }
    CHECK(argc == 2, "usage: host_api PROG.gbc");

    /* Untrusted-script groups: no fork, kill, signal, fd or native calls. */
    cfg.exclude = GILVM_LIB_UNSAFE;
    CHECK(gilvm_runtime_init(&cfg) == 0, "init");
    int calls = 0;
    CHECK(gilvm_register("c_twice", 1, c_twice, &calls) == 0, "register c_twice");
    CHECK(gilvm_register("c_fail", 0, c_fail, NULL) == 0, "register c_fail");
    CHECK(gilvm_register("c_silent_fail", 0, c_silent_fail, NULL) == 0, "register c_silent_fail");
    CHECK(gilvm_register("c_concat", -1, c_concat, NULL) == 0, "register c_concat");
    CHECK(gilvm_register("c_reenter", 1, c_reenter, NULL) == 0, "register c_reenter");
    CHECK(gilvm_run_string("<prog>", PROG) == GILVM_EXIT_OK, "run the program's text");

    /* Values in and out, a call by name. */
    gilvm_value args[2] = {gilvm_int(40), gilvm_int(2)}, r;
    CHECK(gilvm_call("add", 2, args, &r) == 0 && r.type == GILVM_INT && r.u.i == 42, "add(40, 2)");
    args[0] = gilvm_str("gil");
    args[1] = gilvm_str("vm");
    CHECK(gilvm_call("add", 2, args, &r) == 0 && r.type == GILVM_STR && r.owned &&
          strcmp(r.u.s.data, "gilvm") == 0 && r.u.s.len == 5, "add('gil', 'vm')");
    gilvm_value_clear(&r);
    CHECK(r.type == GILVM_NONE, "clear leaves None");
    args[0] = gilvm_float(1.5);
    args[1] = gilvm_float(2.25);
    CHECK(gilvm_call("add", 2, args, &r) == 0 && r.type == GILVM_FLOAT && r.u.f == 3.75, "floats");
    args[0] = gilvm_bytes("a\0b", 3);
    args[1] = gilvm_bytes("c", 1);
    CHECK(gilvm_call("add", 2, args, &r) == 0 && r.type == GILVM_BYTES && r.u.s.len == 4 &&
          memcmp(r.u.s.data, "a\0bc", 4) == 0, "bytes with a NUL");
    gilvm_value_clear(&r);
    CHECK(gilvm_call("items", 0, NULL, &r) == 0 && r.type == GILVM_LIST && r.owned &&
          r.u.seq.len == 2 && r.u.seq.items[0].type == GILVM_INT && r.u.seq.items[0].u.i == 1 &&
          r.u.seq.items[1].type == GILVM_STR && strcmp(r.u.seq.items[1].u.s.data, "two") == 0,
          "a list comes out as a list");
    gilvm_value_clear(&r);
    CHECK(r.type == GILVM_NONE, "clearing a list leaves None");

    /* Containers in and out: a dict of a list of a tuple, through a global and add(). */
    gilvm_value tup[2] = {gilvm_float(2.5), gilvm_none()};
    gilvm_value lst[3] = {gilvm_int(7), gilvm_bytes("b\0", 2), gilvm_tuple(tup, 2)};
    gilvm_value pairs[4] = {gilvm_str("k"), gilvm_list(lst, 3), gilvm_int(3), gilvm_bool(1)};
    gilvm_value dict = gilvm_dict(pairs, 2);
    CHECK(gilvm_set_global("cfg", &dict) == 0, "set a dict global");
    CHECK(gilvm_run_string("<cfg>", "LOAD_GLOBAL repr\n LOAD_GLOBAL cfg\n CALL 1\n STORE_GLOBAL cfg_repr\n") == 0,
          "bytecode reads it");
    CHECK(gilvm_get_global("cfg_repr", &r) == 0 && r.type == GILVM_STR &&
          strcmp(r.u.s.data, "{'k': [7, b'b\\x00', (2.5, None)], 3: True}") == 0, "as a dict");
    gilvm_value_clear(&r);
    CHECK(gilvm_get_global("cfg", &r) == 0 && r.type == GILVM_DICT && r.u.seq.len == 2 &&
          strcmp(r.u.seq.items[0].u.s.data, "k") == 0 && r.u.seq.items[1].type == GILVM_LIST &&
          r.u.seq.items[1].u.seq.len == 3 && r.u.seq.items[1].u.seq.items[1].u.s.len == 2 &&
          r.u.seq.items[1].u.seq.items[2].type == GILVM_TUPLE &&
          r.u.seq.items[1].u.seq.items[2].u.seq.items[0].u.f == 2.5 &&
          r.u.seq.items[2].type == GILVM_INT && r.u.seq.items[3].type == GILVM_BOOL,
          "and it comes back out, in order");
    gilvm_value_clear(&r);
    gilvm_value l1[1] = {gilvm_int(1)}, l2[2] = {gilvm_int(2), gilvm_str("x")};
    args[0] = gilvm_list(l1, 1);
    args[1] = gilvm_list(l2, 2);
    CHECK(gilvm_call("add", 2, args, &r) == 0 && r.type == GILVM_LIST && r.u.seq.len == 3 &&
          r.u.seq.items[2].type == GILVM_STR, "lists as arguments");
    gilvm_value_clear(&r);
    gilvm_value unhashable[2] = {gilvm_list(l1, 1), gilvm_int(0)};
    dict = gilvm_dict(unhashable, 1);
    CHECK(gilvm_set_global("bad", &dict) == -1 && strcmp(gilvm_error_type(), "TypeError") == 0,
          "an unhashable key: TypeError");
    static gilvm_value deep[GILVM_MAX_DEPTH + 2];
    for (int i = 0; i <= GILVM_MAX_DEPTH; i++)
        deep[i] = gilvm_list(&deep[i + 1], 1);
    CHECK(gilvm_set_global("deep", &deep[0]) == -1 && strcmp(gilvm_error_type(), "ValueError") == 0,
          "nested too deep: ValueError");
    CHECK(gilvm_set_global("deep", &deep[1]) == 0, "as deep as allowed");
    CHECK(gilvm_run_string("<cycle>", "BUILD_LIST 0\n DUP\n STORE_GLOBAL cyc\n LOAD_GLOBAL append\n SWAP\n"
                                      " LOAD_GLOBAL cyc\n CALL 2\n POP\n") == 0, "a list holding itself");
    CHECK(gilvm_get_global("cyc", &r) == -1 && strcmp(gilvm_error_type(), "ValueError") == 0 &&
          r.type == GILVM_NONE, "does not come out: ValueError");
    CHECK(gilvm_call("add", 2, args, NULL) == 0, "a result may be dropped");

    /* Globals. */
    CHECK(gilvm_get_global("answer", &r) == 0 && r.type == GILVM_INT && r.u.i == 42, "get answer");
    gilvm_value b = gilvm_bool(1);
    CHECK(gilvm_set_global("flag", &b) == 0, "set flag");
    CHECK(gilvm_get_global("flag", &r) == 0 && r.type == GILVM_BOOL && r.u.i == 1, "get flag");
    CHECK(gilvm_get_global("nope", &r) == -1 && strcmp(gilvm_error_type(), "NameError") == 0,
          "an unset global: NameError");

    /* Errors as data: type, message, traceback; nothing printed. */
    gilvm_error_clear();
    CHECK(gilvm_error_type() == NULL, "cleared");
    args[0] = gilvm_str("bad input");
    CHECK(gilvm_call("outer", 1, args, &r) == -1, "outer() raises");
    CHECK(strcmp(gilvm_error_type(), "ValueError") == 0, "its type");
    CHECK(strcmp(gilvm_error_message(), "bad input") == 0, "its message");
    CHECK(strstr(gilvm_error_traceback(), "Traceback (most recent call last):") &&
          strstr(gilvm_error_traceback(), "in outer") && strstr(gilvm_error_traceback(), "in fail") &&
          strstr(gilvm_error_traceback(), "ValueError: bad input"), "its traceback");
    CHECK(gilvm_call("missing", 0, NULL, &r) == -1 && strcmp(gilvm_error_type(), "NameError") == 0,
          "calling an unknown name");
    CHECK(gilvm_call("answer", 0, NULL, &r) == -1 && strcmp(gilvm_error_type(), "TypeError") == 0,
          "calling an int");
    CHECK(gilvm_call("add", 1, args, &r) == -1 && strcmp(gilvm_error_type(), "TypeError") == 0,
          "wrong argument count");

    /* C functions: arguments in, result or exception out; from bytecode and from the host. */
    args[0] = gilvm_int(20);
    CHECK(gilvm_call("use_c", 1, args, &r) == 0 && r.type == GILVM_INT && r.u.i == 41 && calls == 1,
          "bytecode calls c_twice");
    CHECK(gilvm_call("c_twice", 1, args, &r) == 0 && r.u.i == 40 && calls == 2, "the host calls it");
    args[0] = gilvm_str("x");
    CHECK(gilvm_call("c_twice", 1, args, &r) == -1 && strcmp(gilvm_error_type(), "TypeError") == 0 &&
          strstr(gilvm_error_message(), "wants an int"), "a C function raises TypeError");
    CHECK(gilvm_call("c_twice", 0, NULL, &r) == -1 && strcmp(gilvm_error_type(), "TypeError") == 0,
          "arity checked");
    CHECK(gilvm_call("catch_c", 0, NULL, &r) == 0 && r.type == GILVM_STR &&
          strcmp(r.u.s.data, "raised in C (7)") == 0, "bytecode catches a C function's ValueError");
    gilvm_value_clear(&r);
    CHECK(gilvm_call("c_silent_fail", 0, NULL, &r) == -1 && strcmp(gilvm_error_type(), "RuntimeError") == 0,
          "-1 without raising: RuntimeError");
    gilvm_value three[3] = {gilvm_str("a"), gilvm_str("bc"), gilvm_str("def")};
    CHECK(gilvm_call("c_concat", 3, three, &r) == 0 && r.type == GILVM_STR &&
          strcmp(r.u.s.data, "abcdef") == 0, "an owned result is copied and freed");
    gilvm_value_clear(&r);
    args[0] = gilvm_int(1);
    CHECK(gilvm_call("c_reenter", 1, args, &r) == 0 && r.u.i == 101, "C calls bytecode re-entrantly");

    /* Running from memory: .gbc image with its length, .gasm text without a NUL. */
    size_t len;
    char *gbc = read_all(argv[1], &len);
    CHECK(gilvm_run_buffer("prog.gbc", gbc, len) == GILVM_EXIT_OK, "run a .gbc from memory");
    gbc[len / 2] ^= 0x55;      /* corrupted: the checksum or the verifier rejects it */
    CHECK(gilvm_run_buffer("prog.gbc", gbc, len) == GILVM_EXIT_DATAERR &&
          strcmp(gilvm_error_type(), "BytecodeError") == 0, "a corrupted .gbc is rejected");
    free(gbc);
    static const char text[] = "LOAD_INT 5\n STORE_GLOBAL five\nGARBAGE";
    CHECK(gilvm_run_buffer("<text>", text, sizeof text - 1 - 7) == GILVM_EXIT_OK, "text by length");
    CHECK(gilvm_get_global("five", &r) == 0 && r.u.i == 5, "it ran");
    CHECK(gilvm_run_buffer("<text>", text, sizeof text - 1) == GILVM_EXIT_DATAERR &&
          strcmp(gilvm_error_type(), "SyntaxError") == 0, "an assembler error is a SyntaxError");
    CHECK(gilvm_run_file("/nonexistent/x.gasm") == GILVM_EXIT_USAGE &&
          strcmp(gilvm_error_type(), "OSError") == 0, "a missing file");

    /* The output hook: print and tracebacks. */
    int writes = 0;
    gilvm_set_output(capture, &writes);
    CHECK(gilvm_run_string("<out>", "LOAD_GLOBAL print\n LOAD_CONST \"to the hook\"\n CALL 1\n POP\n"
                                    "LOAD_GLOBAL fail\n LOAD_CONST \"uncaught\"\n CALL 1\n") ==
              GILVM_EXIT_EXCEPTION, "an uncaught exception: status 1");
    gilvm_set_output(NULL, NULL);
    CHECK(writes > 0 && strcmp(out_buf[0], "to the hook\n") == 0, "print went to the hook");
    CHECK(strstr(out_buf[1], "Traceback (most recent call last):") &&
          strstr(out_buf[1], "ValueError: uncaught"), "the traceback went to the hook");
    CHECK(strcmp(gilvm_error_type(), "ValueError") == 0 && strcmp(gilvm_error_message(), "uncaught") == 0,
          "and was recorded");

    /* Builtin groups: the unsafe ones are not there, the rest is. */
    const char *absent[] = {"fork", "kill", "signal", "fd_write", "_exit", "ffi_open", "pipe"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        CHECK(gilvm_get_global(absent[i], &r) == -1, absent[i]);
    const char *present[] = {"print", "len", "thread_start", "lock_acquire", "time"};
    for (size_t i = 0; i < sizeof present / sizeof present[0]; i++) {
        CHECK(gilvm_get_global(present[i], &r) == 0 && r.type == GILVM_OTHER, present[i]);
        gilvm_value_clear(&r);
    }
    CHECK(gilvm_run_string("<fork>", "LOAD_GLOBAL fork\n CALL 0\n POP\n") == GILVM_EXIT_EXCEPTION &&
          strcmp(gilvm_error_type(), "NameError") == 0, "a script calling fork gets NameError");

    gilvm_error_clear();
    int status = gilvm_runtime_finalize(0);
    CHECK(status == 0, "finalize");
    printf("host_api: ok\n");
    return 0;
}

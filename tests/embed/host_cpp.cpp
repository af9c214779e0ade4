/* SPDX-License-Identifier: MIT */
// Host test: gilvm.h from C++ (extern "C", no C-only constructs in the header), a C
// function registered from C++, a call, an error.  Built by tests/embed/run with g++.
#include <gilvm.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "check.h"

static int cpp_upper(void *data, int argc, const gilvm_value *argv, gilvm_value *result)
{
    std::string *last = static_cast<std::string *>(data);
    if (argv[0].type != GILVM_STR)
        return gilvm_raise("TypeError", "upper() wants a str");
    std::string s(argv[0].u.s.data, argv[0].u.s.len);
    for (char &c : s)
        if (c >= 'a' && c <= 'z')
            c = char(c - 'a' + 'A');
    *last = s;
    *result = gilvm_strn(last->data(), last->size());  // borrowed: gilvm copies it
    return 0;
}

int main()
{
    gilvm_config cfg = gilvm_config();
    cfg.no_signal_handlers = 1;
    CHECK(gilvm_runtime_init(&cfg) == 0, "init");
    std::string last;
    CHECK(gilvm_register("upper", 1, cpp_upper, &last) == 0, "register");
    CHECK(gilvm_run_string("<cpp>", ".func shout(s)\n LOAD_GLOBAL upper\n LOAD_LOCAL s\n CALL 1\n"
                                    " LOAD_CONST \"!\"\n ADD\n RETURN\n.end\n") == 0, "run");
    gilvm_value arg = gilvm_str("hello"), r;
    CHECK(gilvm_call("shout", 1, &arg, &r) == 0 && r.type == GILVM_STR &&
          std::strcmp(r.u.s.data, "HELLO!") == 0, "shout('hello')");
    gilvm_value_clear(&r);
    arg = gilvm_int(3);
    CHECK(gilvm_call("shout", 1, &arg, &r) == -1 && std::string(gilvm_error_type()) == "TypeError",
          "a C++ function's error");
    CHECK(std::strstr(gilvm_error_traceback(), "in shout") != nullptr, "traceback through C++");
    gilvm_error_clear();
    CHECK(gilvm_runtime_finalize(0) == 0, "finalize");
    std::printf("host_cpp: ok (gilvm %s)\n", gilvm_version());
    return 0;
}

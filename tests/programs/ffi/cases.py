# SPDX-License-Identifier: MIT
"""Helpers for the native-call test generators (*.gen beside this file): each prints a
.gasm program that opens the test library (argv()[1], $GILVM_TESTLIB), binds functions and
runs cases.  A case is a label and an expression; the program prints `label -> repr(value)`
or `label -> Class: message` for an exception (tests/run-programs checks the .out file).

Expressions are Python values: a literal (None, bool, int, float, str, bytes, tuple), G(name)
for a global, or C(f, *args) for a call of f (a global's name, or an expression)."""


class G:
    def __init__(self, name):
        self.name = name


class C:
    def __init__(self, f, *args):
        self.f, self.args = f, args


def lit(v):
    if v is None or isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return '"' + "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else
                             f"\\u{{{ord(c):x}}}" for c in v) + '"'
    if isinstance(v, bytes):
        return 'b"' + "".join(f"\\x{b:02x}" for b in v) + '"'
    if isinstance(v, tuple):
        return "(" + "".join(lit(x) + ", " for x in v) + ")"
    raise TypeError(v)


def emit(e, out):
    """Appends the instructions that push e's value."""
    if isinstance(e, G):
        out.append(f"    LOAD_GLOBAL {e.name}")
    elif isinstance(e, C):
        emit(G(e.f) if isinstance(e.f, str) else e.f, out)
        for a in e.args:
            emit(a, out)
        out.append(f"    CALL {len(e.args)}")
    else:
        out.append(f"    LOAD_CONST {lit(e)}")


SHOW = """
; show(label, f): prints label -> repr(f()), or the exception's class and message
.func show(label, f)
.local e
    .try caught
    LOAD_GLOBAL print
    LOAD_LOCAL label
    LOAD_CONST "->"
    LOAD_GLOBAL repr
    LOAD_LOCAL f
    CALL 0
    CALL 1
    CALL 3
    POP
    .end_try
    LOAD_NONE
    RETURN
caught:
    PUSH_EXC_INFO
    STORE_LOCAL e
    LOAD_GLOBAL print
    LOAD_LOCAL label
    LOAD_GLOBAL format
    LOAD_CONST "-> {}: {}"
    LOAD_GLOBAL type
    LOAD_LOCAL e
    CALL 1
    LOAD_GLOBAL str
    LOAD_LOCAL e
    CALL 1
    CALL 3
    CALL 2
    POP
    POP_EXCEPT
    LOAD_NONE
    RETURN
.end
"""


SHOW_TAIL = """
; show_tail(label, f): as show, but prints only the message's last ': '-separated part
; (a dlerror text starts with the library's path, which depends on the build)
.func show_tail(label, f)
.local e, parts
    .try caught
    LOAD_GLOBAL print
    LOAD_LOCAL label
    LOAD_CONST "->"
    LOAD_GLOBAL repr
    LOAD_LOCAL f
    CALL 0
    CALL 1
    CALL 3
    POP
    .end_try
    LOAD_NONE
    RETURN
caught:
    PUSH_EXC_INFO
    STORE_LOCAL e
    LOAD_GLOBAL split
    LOAD_GLOBAL str
    LOAD_LOCAL e
    CALL 1
    LOAD_CONST ": "
    CALL 2
    STORE_LOCAL parts
    LOAD_GLOBAL print
    LOAD_LOCAL label
    LOAD_GLOBAL format
    LOAD_CONST "-> {}: ...{}"
    LOAD_GLOBAL type
    LOAD_LOCAL e
    CALL 1
    LOAD_LOCAL parts
    LOAD_INT -1
    GET_ITEM
    CALL 3
    CALL 2
    POP
    POP_EXCEPT
    LOAD_NONE
    RETURN
.end
"""


class Program:
    def __init__(self, header):
        self.header = header
        self.funcs = [SHOW, SHOW_TAIL]
        self.body = []
        self.n = 0

    def func(self, text):
        """Adds a .func block written by hand."""
        self.funcs.append(text)

    def do(self, e):
        """Evaluates e in the module body and drops its value."""
        emit(e, self.body)
        self.body.append("    POP")

    def set(self, name, e):
        emit(e, self.body)
        self.body.append(f"    STORE_GLOBAL {name}")

    def case(self, label, e, show="show"):
        self.n += 1
        code = [f".func case{self.n}()"]
        emit(e, code)
        code += ["    RETURN", ".end"]
        self.funcs.append("\n".join(code))
        self.body += [f"    LOAD_GLOBAL {show}", f"    LOAD_CONST {lit(label)}",
                      f"    LOAD_GLOBAL case{self.n}", "    CALL 2", "    POP"]

    def open_testlib(self):
        """lib = ffi_open(argv()[1])"""
        self.body += ["    LOAD_GLOBAL ffi_open", "    LOAD_GLOBAL argv", "    CALL 0",
                      "    LOAD_INT 1", "    GET_ITEM", "    CALL 1", "    STORE_GLOBAL lib"]

    def bind(self, name, restype, argtypes, release_gil=True, lib="lib"):
        args = [G(lib), name, restype, tuple(argtypes)] + ([] if release_gil else [False])
        self.set(name, C("ffi_bind", *args))

    def print(self):
        print(self.header.rstrip() + "\n")
        print("\n\n".join(self.funcs))
        print("\n".join(self.body))

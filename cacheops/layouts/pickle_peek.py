"""Look inside a Python pickle without loading it.

pickle.loads runs code: a pickle can name any importable callable (os.system, subprocess.Popen)
and the loader calls it. cacheops never loads one. pickletools.genops only walks the opcode
stream, so reading the string constants and the globals a pickle would import is safe: that is
all a human needs to recognise a cached answer, and the globals say what loading it would run.
"""

from __future__ import annotations

import io
import pickletools
from dataclasses import dataclass, field

_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}
_SAFE_GLOBALS = {
    ("builtins", "dict"),
    ("builtins", "list"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "tuple"),
    ("__builtin__", "set"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
    ("copy_reg", "_reconstructor"),
    ("datetime", "datetime"),
}
MAX_STRINGS = 200


def is_pickle(raw: bytes) -> bool:
    """Protocol 2-5 pickles start with PROTO (0x80) and the protocol number."""
    return len(raw) >= 3 and raw[0] == 0x80 and 2 <= raw[1] <= 5


@dataclass
class PicklePeek:
    protocol: int | None = None
    strings: list[str] = field(default_factory=list)  # string constants, in stream order
    globals: list[str] = field(default_factory=list)  # "module.name" the loader would import
    complete: bool = False  # the stream parsed to STOP
    error: str | None = None

    @property
    def runs_code(self) -> list[str]:
        """Globals beyond plain containers: what loading would import and may call."""
        out = []
        for name in self.globals:
            module, _, attr = name.rpartition(".")
            if (module, attr) not in _SAFE_GLOBALS:
                out.append(name)
        return out

    def value_after(self, *names: str) -> str | None:
        """The string that follows a key like "response" in a pickled dict (keys precede values)."""
        for i, s in enumerate(self.strings[:-1]):
            if s in names:
                return self.strings[i + 1]
        return None

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol,
            "globals": self.globals,
            "imports_that_run_code": self.runs_code,
            "strings": self.strings[:20],
            "complete": self.complete,
            "error": self.error,
        }


def peek(raw: bytes) -> PicklePeek:
    out = PicklePeek()
    # What each op pushed (a str constant, or None), so STACK_GLOBAL's module and name are known
    # even when they come back from the memo (BINGET); an unresolved one is reported as such.
    pushed: list[str | None] = []
    memo: dict[int, str | None] = {}
    try:
        for op, arg, _pos in pickletools.genops(io.BytesIO(raw)):
            name = op.name
            if name == "PROTO":
                out.protocol = arg
            elif name in _STRING_OPS:
                text = arg if isinstance(arg, str) else arg.decode("latin-1") if isinstance(arg, bytes) else str(arg)
                pushed.append(text)
                if len(out.strings) < MAX_STRINGS:
                    out.strings.append(text)
            elif name == "MEMOIZE":
                memo[len(memo)] = pushed[-1] if pushed else None
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(arg or 0)] = pushed[-1] if pushed else None
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                pushed.append(memo.get(int(arg or 0)))
            elif name in ("GLOBAL", "INST"):
                out.globals.append(str(arg).replace(" ", "."))
                pushed.append(None)
            elif name == "STACK_GLOBAL":
                module, attr = (pushed[-2], pushed[-1]) if len(pushed) >= 2 else (None, None)
                out.globals.append(f"{module}.{attr}" if module and attr else "<unresolved global>")
                pushed = pushed[:-2] + [None]
            elif name == "STOP":
                out.complete = True
            else:
                pushed.append(None)
            if len(pushed) > 64:
                pushed = pushed[-8:]
    except Exception as exc:  # truncated or not a pickle: what was read so far is still shown
        out.error = f"{type(exc).__name__}: {exc}"[:200]
    return out

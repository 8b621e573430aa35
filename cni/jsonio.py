"""JSON in and out without importing `json`.

`import json` pulls in `re` and `enum` and costs ~9 ms at start-up, more than the kernel work of a whole ADD.
The C accelerator `_json` that `json` itself uses is loaded directly instead: its scanner decodes, and a
small encoder covers the only shapes the plugin writes (dicts, lists, strings, ints, bools, None). Malformed
input falls back to the real `json` module, so error messages are the standard ones and the slow import is
paid only on the error path.

Input from outside is bounded before it is parsed (`bounds_problem`): its size, and how deeply arrays and
objects nest. The C scanner recurses once per level and gives up with RecursionError near the interpreter's
recursion limit; the plugin's own encoder recurses too. A CNI config nests a handful of levels deep.
"""


import _json


class _ScanContext:
    # The attributes `_json.make_scanner` reads from a json.JSONDecoder.
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.lower().replace("infinity", "inf"))


_scan = _json.make_scanner(_ScanContext())

MAX_BYTES = 1 << 20
MAX_DEPTH = 64
# Every byte value except the four brackets: bytes.translate deletes them, leaving only the nesting.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = frozenset(b"[{")


def bounds_problem(data: bytes, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> str | None:
    """Why `data` is too big or nested too deeply to parse, or None. Works on the raw bytes: UTF-8 never
    puts an ASCII byte inside a multi-byte character, so brackets and quotes are found byte by byte."""
    if len(data) > max_bytes:
        return f"larger than {max_bytes} bytes"
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return None  # too few brackets to nest that deep: every real config ends here
    # Brackets inside strings do not nest. Escapes occur only inside strings: dropping escaped backslashes,
    # then escaped quotes, leaves only the quotes that open and close strings, so every other piece of the
    # text split at quotes lies outside a string. (Text that is not JSON may be misjudged, but the scanner
    # stops at its first error, so it never descends past what was judged correctly.)
    plain = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(plain.split(b'"')[0::2]).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        if byte in _OPENERS:
            depth += 1
            if depth > max_depth:
                return f"nested deeper than {max_depth} levels"
        else:
            depth -= 1
    return None


_WHITESPACE = " \t\n\r"


def loads(text: str) -> object:
    """Decode one JSON document (raises ValueError on malformed input)."""
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except Exception:  # the slow path below raises the standard, well-worded error
        value, end = None, -1
    if end < 0 or text[end:].strip(_WHITESPACE):
        import json

        return json.loads(text)
    _ScanContext.memo.clear()
    return value


_quote = _json.encode_basestring_ascii


def dumps(value: object) -> str:
    """Encode plain data (dict/list/tuple/str/int/float/bool/None) as compact JSON."""
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts)


def _encode(value: object, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_quote(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(float.__repr__(value))
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for key, item in value.items():
            if not first:
                out.append(",")
            first = False
            out.append(_quote(str(key)))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")

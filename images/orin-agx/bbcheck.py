#!/usr/bin/env python3
"""A small BitBake syntax checker for a layer's .conf, .bb, .bbappend and .inc files.

It accepts what this layer uses and nothing else, and fails on anything it does not recognise:

* comments and blank lines;
* `include`, `require`, `inherit` lines;
* assignments `VAR = "value"` with = ?= ??= := += =+ .= =. (optionally `export`, a `[flag]`,
  and `:override` suffixes such as `:append`, `:prepend`, `:remove`, `:${PN}`), the value a
  double- or single-quoted string that may span lines ending in a backslash;
* shell function blocks `name() {` ... `}` and python blocks `python name() {` ... `}`,
  `python () {` ... `}`, and `def name(args):` with an indented body.

It also rejects the pre-honister override syntax (`VAR_append`, `VAR_remove`, `_${PN}`), which
scarthgap no longer parses as an override, and warns when `:append`/`:prepend` values do not
start (or end) with a space.

  bbcheck.py FILE... ; exit 0 when every file parses.
"""
import re
import sys

OPS = ("??=", "?=", ":=", "+=", "=+", ".=", "=.", "=")
NAME = r"[A-Za-z0-9_\-\.\+/${}@%]+"
# VAR[:override...][[flag]] OP, with optional `export `.
ASSIGN = re.compile(
    r"^(?:export\s+)?(?P<var>" + NAME + r")(?P<ovr>(?::" + NAME + r")*)(?:\[(?P<flag>[A-Za-z0-9_\-\.]+)\])?"
    r"\s*(?P<op>\?\?=|\?=|:=|\+=|=\+|\.=|=\.|=)\s*(?P<rest>.*)$"
)
DIRECTIVE = re.compile(r"^(include|require|inherit)\s+(\S.*)$")
SHELL_FUNC = re.compile(r"^(?:fakeroot\s+)?(?P<name>" + NAME + r"(?::" + NAME + r")*)\s*\(\)\s*\{\s*$")
PY_FUNC = re.compile(r"^(?:fakeroot\s+)?python\s*(?P<name>" + NAME + r"(?::" + NAME + r")*)?\s*\(\)\s*\{\s*$")
DEF_FUNC = re.compile(r"^def\s+[A-Za-z_][A-Za-z0-9_]*\s*\(.*\)\s*:\s*$")
OLD_OVERRIDE = re.compile(r"_(append|prepend|remove)(\b|_|$)")


class Checker:
    def __init__(self, path):
        self.path = path
        self.errors = []
        self.warnings = []

    def err(self, lineno, msg):
        self.errors.append("%s:%d: %s" % (self.path, lineno, msg))

    def warn(self, lineno, msg):
        self.warnings.append("%s:%d: warning: %s" % (self.path, lineno, msg))

    def value(self, lines, i, start, rest):
        """The quoted value of an assignment whose text after the operator is `rest` (line i).

        As BitBake does, lines ending in a backslash are joined first; the value is everything
        between the first character (a quote) and the same quote ending the joined line, so
        ${@...} expressions may hold quotes of either kind. Returns (next line index, value)."""
        j = i
        text = rest
        while text.rstrip().endswith("\\"):
            if j + 1 >= len(lines):
                self.err(start, "continuation runs past the end of the file")
                return j + 1, ""
            text = text.rstrip()[:-1] + lines[j + 1]
            j += 1
        text = text.rstrip()
        if len(text) >= 2 and text[0] in "\"'" and text[-1] == text[0]:
            return j + 1, text[1:-1]
        if text[:1] in "\"'" and text[0] not in text[1:]:
            self.err(start, "unterminated %s-quoted value (each line inside must end with a backslash)"
                     % text[0])
        else:
            self.err(start, "value must be one quoted string that ends the line: %r" % text[:60])
        return j + 1, ""

    def block(self, lines, i, start):
        """Skips a `{ ... }` function body: ends at a line that is exactly `}`."""
        j = i + 1
        while j < len(lines):
            if lines[j].rstrip() == "}":
                return j + 1
            j += 1
        self.err(start, "function block not closed by a line with a lone }")
        return j

    def def_block(self, lines, i):
        j = i + 1
        body = 0
        while j < len(lines) and (lines[j].strip() == "" or lines[j][:1] in " \t"):
            body += lines[j].strip() != ""
            j += 1
        if body == 0:
            self.err(i + 1, "def without an indented body")
        return j

    def run(self):
        try:
            lines = open(self.path).read().split("\n")
        except OSError as e:
            self.err(0, str(e))
            return
        i = 0
        while i < len(lines):
            line = lines[i]
            lineno = i + 1
            stripped = line.strip()
            if stripped == "" or stripped.startswith("#"):
                i += 1
                continue
            if line[:1] in " \t":
                self.err(lineno, "unexpected indented line outside a value or function: %r" % stripped)
                i += 1
                continue
            m = DIRECTIVE.match(stripped)
            if m:
                if m.group(1) in ("include", "require") and len(m.group(2).split()) != 1:
                    self.err(lineno, "%s takes one file" % m.group(1))
                i += 1
                continue
            if PY_FUNC.match(stripped):
                i = self.block(lines, i, lineno)
                continue
            if SHELL_FUNC.match(stripped):
                i = self.block(lines, i, lineno)
                continue
            if DEF_FUNC.match(stripped):
                i = self.def_block(lines, i)
                continue
            m = ASSIGN.match(stripped)
            if m:
                var, ovr, op = m.group("var"), m.group("ovr"), m.group("op")
                if OLD_OVERRIDE.search(var) or re.search(r"_\$\{", var):
                    self.err(lineno, "old override syntax in %r: use ':append'/':remove'/':${...}'" % var)
                i, text = self.value(lines, i, lineno, m.group("rest"))
                overrides = ovr.split(":")[1:]
                if (overrides and overrides[-1] in ("append", "prepend") and text
                        and var != "FILESEXTRAPATHS" and not text.startswith("${@")):
                    edge = text[0] if overrides[-1] == "append" else text[-1]
                    if not edge.isspace():
                        self.warn(lineno, "%s%s value does not %s with a space" % (
                            var, ovr, "start" if overrides[-1] == "append" else "end"))
                if var == "FILESEXTRAPATHS" and "prepend" in overrides and not text.endswith(":"):
                    self.err(lineno, "FILESEXTRAPATHS:prepend value must end with ':'")
                continue
            self.err(lineno, "not BitBake syntax this checker knows: %r" % stripped)
            i += 1


def main(paths):
    if not paths:
        print(__doc__)
        return 2
    bad = 0
    for p in paths:
        c = Checker(p)
        c.run()
        for w in c.warnings:
            print(w)
        for e in c.errors:
            print(e)
        if c.errors:
            bad += 1
        else:
            print("ok   %s" % p)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

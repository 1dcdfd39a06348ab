"""The static validator: allow-list semantics, precise line/column findings."""

from __future__ import annotations

import pytest

from stratagem.sandbox.policy import check, compile_strategy
from stratagem.sandbox.validator import validate
from stratagem.errors import StrategyRejected

OK = "def classify_symbol(symbol):\n    return False\n"


def msgs(src: str) -> list[str]:
    return [f.message for f in validate(src)]


def test_minimal_strategy_is_valid():
    assert validate(OK) == [] and check(OK) == []


def test_missing_entry_point():
    (f,) = validate("x = 1\n")
    assert "classify_symbol" in f.message


@pytest.mark.parametrize("sig", ["()", "(a, b)", "(a, *, k)"])
def test_entry_point_arity(sig):
    fs = validate(f"def classify_symbol{sig}:\n    return False\n")
    assert fs and "classify_symbol must accept exactly 1" in fs[0].message and fs[0].line == 1


@pytest.mark.parametrize("sig", ["(symbol)", "(symbol, days=5)", "(*args)"])
def test_entry_point_arity_ok(sig):
    assert validate(f"def classify_symbol{sig}:\n    return False\n") == []


@pytest.mark.parametrize("src,line,col,needle", [
    ("import os\n" + OK, 1, 1, "import of 'os' is not allowed"),
    ("from subprocess import run\n" + OK, 1, 1, "import of 'subprocess'"),
    ("import pandas as pd\n" + OK, 1, 1, "pandas is not available"),
    (OK + "x = ().__class__\n", 3, 5, "'__class__' starts with '_'"),
    (OK + "f = eval\n", 3, 5, "'eval' is not available"),
    (OK + "g = getattr\n", 3, 5, "getattr may only be called directly"),
    (OK + "y = getattr(1, 'real' + '')\n", 3, 5, "constant attribute name"),
    (OK + "y = getattr(1, '__class__')\n", 3, 5, "not allowed"),
    (OK + "def gen():\n    yield 1\n", 4, 5, "generators"),
    (OK + "with x:\n    pass\n", 3, 1, "'with' blocks"),
    (OK + "async def f():\n    pass\n", 3, 1, "async"),
    (OK + "class A(metaclass=type):\n    pass\n", 3, 1, "metaclass"),
    (OK + "z = _secret\n", 3, 5, "starts with '_'"),
    (OK + "def __del__(self):\n    pass\n", 3, 1, "starts with '_'"),
    (OK + "from numpy import *\n", 3, 1, "import *"),
    (OK + "from . import x\n", 3, 1, "relative"),
    (OK + "t = type('X', (), {})\n", 3, 5, "type() may only be called with one argument"),
    (OK + "a = x.gi_frame\n", 3, 5, "gi_frame"),
    (OK + "a = x.f_back\n", 3, 5, "f_back"),
])
def test_findings_have_line_col_and_say_why(src, line, col, needle):
    fs = validate(src)
    assert any(needle in f.message and f.line == line and f.col == col for f in fs), fs


def test_every_finding_is_reported_not_just_the_first():
    src = "import os\nimport sys\n" + OK + "a = eval\nb = ().__class__\n"
    assert len(validate(src)) >= 4


def test_unicode_identifiers_are_normalised_before_checking():
    # U+FF42 FULLWIDTH b: the parser turns the name into __builtins__.
    src = OK + "b = __\uff42uiltins__\n"
    assert any("__builtins__" in m for m in msgs(src))


def test_comments_and_strings_mentioning_bad_words_are_fine():
    src = '"""Never calls eval() or exec, does not import os or open files."""\n# open( eval( __import__\n' + OK
    assert validate(src) == []


def test_syntax_error_has_position():
    (f,) = validate("def classify_symbol(s):\n    return (\n")
    assert f.message.startswith("syntax error") and f.line >= 2


def test_deep_nesting_is_rejected_not_crashing():
    src = "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n" + OK
    fs = validate(src)
    assert fs and all(isinstance(f.line, int) for f in fs)


def test_too_large():
    assert "larger than" in msgs("x = 1\n" * 100_000)[0]


def test_class_dunder_methods_allowed_inside_classes_only():
    src = "class B:\n    def __init__(self, x):\n        self.x = x\n    def __lt__(self, o):\n        return self.x < o.x\n" + OK
    assert validate(src) == []
    assert validate("def __init__(self):\n    pass\n" + OK)


def test_augmented_assignment_on_items_and_attributes_compiles():
    src = OK + "def f():\n    a = [1]\n    a[0] += 1\n    d = {'k': 1}\n    d['k'] *= 3\n    return a, d\n"
    compile_strategy(src)


def test_compile_rejects_with_all_details():
    with pytest.raises(StrategyRejected) as ei:
        compile_strategy("import os\nx = ().__class__\n")
    assert ei.value.exit_code == 1
    assert {d["line"] for d in ei.value.details} >= {1, 2}

"""Error codes are named, never typed inline: `code=CampaignErrorCode.FINAL`, not `code="final"`.

API clients read the codes, so each lives once, in an enum: the generic ones in
`core.errors.CommonErrorCode`, an app's own in `<app>/errors.py`. These tests read the
source (ast) of every app package, migrations and tests aside, and name each place where
a code is a string literal again.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

from core import LAYERS
from core.errors import CommonErrorCode

ROOT = Path(__file__).resolve().parent.parent

# Callables whose second positional argument is the code: Django's ValidationError(message, code),
# DRF's ValidationError(detail, code) and APIException(detail, code) with its subclasses.
DRF_EXCEPTIONS = {
    "APIException",
    "AuthenticationFailed",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotAuthenticated",
    "NotFound",
    "ParseError",
    "PermissionDenied",
    "UnsupportedMediaType",
}


def app_sources() -> Iterator[Path]:
    for app in LAYERS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if not {"migrations", "tests"} & set(path.relative_to(ROOT).parts):
                yield path


def literals(node: ast.expr) -> Iterator[tuple[int, str]]:
    """(line, value) of the string literals an expression can evaluate to: `"x"`, `a or "x"`, `"x" if c else y`,
    `getattr(e, "code", "x")`, `d.get("code", "x")`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.lineno, node.value
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            yield from literals(value)
    elif isinstance(node, ast.IfExp):
        yield from literals(node.body)
        yield from literals(node.orelse)
    elif isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) == 3:
            yield from literals(node.args[2])
        elif isinstance(func, ast.Attribute) and func.attr == "get" and len(node.args) == 2:
            yield from literals(node.args[1])


def callee(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def inline_codes(source: str) -> Iterator[tuple[int, str]]:
    """(line, code) for each error code written as a string literal."""
    for node in ast.walk(ast.parse(source)):
        found: list[ast.expr] = []
        if isinstance(node, ast.Call):
            # ValidationError(..., code="x"), RegexValidator(..., code="x"), APIException(..., code="x")
            found += [kw.value for kw in node.keywords if kw.arg in ("code", "default_code")]
            name = callee(node)
            if (name.endswith("ValidationError") or name in DRF_EXCEPTIONS) and len(node.args) >= 2:
                found.append(node.args[1])
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            # class RequestTooLarge(APIException): default_code = "x"
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "default_code" for t in targets):
                found.append(node.value)
        elif isinstance(node, ast.Dict):
            # error payloads built by hand: {"message": ..., "code": "x"}
            found += [
                v
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and k.value == "code"
            ]
        for expr in found:
            yield from literals(expr)


def test_the_check_sees_every_form_of_an_inline_code():
    source = """
ValidationError("m", code="a")
serializers.ValidationError("m", "b")
ValidationError("m", code=exc.code or "c")
NotFound("m", code="d" if x else Code.D)
class E(APIException):
    default_code = "e"
payload = {"message": m, "code": getattr(detail, "code", "f")}
ValidationError("m", code=Code.G)
{"code": Code.H}
getattr(detail, "code", Code.I)
"""
    assert sorted(code for _, code in inline_codes(source)) == ["a", "b", "c", "d", "e", "f"]


def test_no_app_writes_an_error_code_as_a_string_literal():
    sources = list(app_sources())
    assert len(sources) > 100, "the app packages were not found"
    inline = [
        f"{path.relative_to(ROOT)}:{line}: {code!r}"
        for path in sources
        for line, code in inline_codes(path.read_text())
    ]
    assert inline == [], "name these codes from <app>/errors.py or core.errors.CommonErrorCode:\n" + "\n".join(inline)


def test_an_app_enum_takes_a_generic_code_from_common_error_code():
    """A domain enum may alias a generic code (CommonErrorCode.X) but not spell its value again."""
    generic = {code.value for code in CommonErrorCode}
    respelled = []
    for app in LAYERS:
        path = ROOT / app / "errors.py"
        if app == "core" or not path.exists():
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and node.value.value in generic:
                respelled.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.value!r}")
    assert respelled == []

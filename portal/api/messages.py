"""Validation errors as sentences people can act on, in the caller's language.

jsonschema says `'' should be non-empty` or `'x' is not one of ['a', 'b']`: right for a developer,
meaningless on a resident's phone. Each failure becomes one sentence — zh-CN for a caller who
reads Chinese (the account's language, else Accept-Language), English otherwise — while the
machine fields stay: `code` (invalid_body / invalid_query), `field` (`body.note`), `reason` (the
schema keyword that failed, e.g. `minLength`) and `detail` (jsonschema's own text).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web
from jsonschema import ValidationError

from linli.portal.api.errors import ApiError

LOCALES: Final = ("zh-CN", "en")

#: Each schema keyword's sentence, by language; `{field}` names the field in the reader's words.
_SENTENCES: Final[dict[str, dict[str, str]]] = {
    "zh-CN": {
        "empty": "请填写{field}",
        "minLength": "{field}至少要 {limit} 个字",
        "maxLength": "{field}太长了：最多 {limit} 个字",
        "required": "缺少{field}：请填写后再提交",
        "type": "{field}的格式不对：应为{expected}",
        "enum": "{field}只能是以下之一：{choices}",
        "const": "{field}只能是 {choices}",
        "pattern": "{field}的格式不对：只能用字母、数字和规定的符号",
        "format": "{field}的格式不对",
        "minimum": "{field}不能小于 {limit}",
        "exclusiveMinimum": "{field}必须大于 {limit}",
        "maximum": "{field}不能大于 {limit}",
        "exclusiveMaximum": "{field}必须小于 {limit}",
        "multipleOf": "{field}必须是 {limit} 的整数倍",
        "additionalProperties": "不认识的字段：{names}；可用的字段：{known}",
        "minItems": "{field}至少要有 {limit} 项",
        "maxItems": "{field}最多 {limit} 项",
        "uniqueItems": "{field}里有重复的项",
        "minProperties": "{field}不能为空",
        "other": "{field}的内容不符合要求",
    },
    "en": {
        "empty": "Fill in {field}",
        "minLength": "{field} needs at least {limit} characters",
        "maxLength": "{field} is too long: at most {limit} characters",
        "required": "{field} is missing: fill it in and send again",
        "type": "{field} has the wrong form: it should be {expected}",
        "enum": "{field} must be one of: {choices}",
        "const": "{field} must be {choices}",
        "pattern": "{field} has the wrong form: use letters, digits and the allowed signs only",
        "format": "{field} has the wrong form",
        "minimum": "{field} must be at least {limit}",
        "exclusiveMinimum": "{field} must be more than {limit}",
        "maximum": "{field} must be at most {limit}",
        "exclusiveMaximum": "{field} must be less than {limit}",
        "multipleOf": "{field} must be a multiple of {limit}",
        "additionalProperties": "unknown field {names}; the fields are: {known}",
        "minItems": "{field} needs at least {limit} items",
        "maxItems": "{field} takes at most {limit} items",
        "uniqueItems": "{field} lists an item twice",
        "minProperties": "{field} must not be empty",
        "other": "{field} is not acceptable",
    },
}

#: JSON types in words.
_TYPES: Final[dict[str, dict[str, str]]] = {
    "zh-CN": {
        "string": "文字",
        "integer": "整数",
        "number": "数字",
        "boolean": "是或否",
        "object": "一组字段",
        "array": "列表",
        "null": "空",
    },
    "en": {
        "string": "text",
        "integer": "a whole number",
        "number": "a number",
        "boolean": "true or false",
        "object": "an object",
        "array": "a list",
        "null": "null",
    },
}

#: Fields people fill in, by name, in their words (the rest are named by their path).
_FIELDS: Final[dict[str, dict[str, str]]] = {
    "zh-CN": {
        "note": "处理说明",
        "name": "名称",
        "title": "标题",
        "body": "内容",
        "text": "文字",
        "pin": "密码 PIN",
        "password": "密码",
        "role": "角色",
        "room": "房间",
        "household_id": "住户",
        "display_name": "显示名称",
        "times": "时间",
        "assignee": "指派对象",
        "reason": "原因",
        "detail": "说明",
        "locale": "语言",
        "mode": "布防模式",
    },
    "en": {
        "note": "the note",
        "name": "the name",
        "title": "the title",
        "body": "the text",
        "text": "the text",
        "pin": "the PIN",
        "password": "the password",
        "role": "the role",
        "room": "the room",
        "household_id": "the household",
        "display_name": "the display name",
        "times": "the times",
        "assignee": "the assignee",
        "reason": "the reason",
        "detail": "the detail",
        "locale": "the language",
        "mode": "the alarm mode",
    },
}


def caller_locale(request: web.Request, account_locale: str | None = None) -> str:
    """The caller's language: the signed-in account's choice (the pages save it), else what the
    request asks for (Accept-Language), else English — a script with no account reads English.
    """
    if account_locale in LOCALES:
        return account_locale  # type: ignore[return-value]
    header = request.headers.get("Accept-Language", "")
    for part in header.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "en"


def _field_words(path: list[Any], where: str, locale: str) -> str:
    names = [p for p in path if isinstance(p, str)]
    if names and names[-1] in _FIELDS[locale]:
        return _FIELDS[locale][names[-1]]
    dotted = where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return f"“{dotted}”" if locale == "zh-CN" else f"`{dotted}`"


def sentence(error: ValidationError, where: str, locale: str) -> str:
    """One jsonschema failure as a sentence in `locale` (zh-CN or en)."""
    locale = locale if locale in LOCALES else "en"
    words = _SENTENCES[locale]
    reason = str(error.validator)
    path = list(error.absolute_path)
    if reason == "required":
        # jsonschema names the missing property in the message, not in the path
        missing = next((p for p in (error.validator_value or []) if p not in (error.instance or {})), "")
        path = [*path, missing]
    field = _field_words(path, where, locale)
    limit = error.validator_value
    template = words.get(reason, words["other"])
    values: dict[str, Any] = {"field": field, "limit": limit}
    if reason == "minLength" and limit == 1:
        template = words["empty"]
    elif reason == "type":
        kinds = limit if isinstance(limit, list) else [limit]
        values["expected"] = (" / " if locale == "en" else "或").join(_TYPES[locale].get(k, k) for k in kinds)
    elif reason in ("enum", "const"):
        choices = limit if isinstance(limit, list) else [limit]
        values["choices"] = ("、" if locale == "zh-CN" else ", ").join(str(c) for c in choices)
    elif reason == "additionalProperties":
        known = sorted((error.schema or {}).get("properties", {}))
        extra = sorted(k for k in (error.instance or {}) if k not in known)
        sep = "、" if locale == "zh-CN" else ", "
        values["names"] = sep.join(extra)
        values["known"] = sep.join(known) or "—"
    text = template.format(**values)
    return text[0].upper() + text[1:] if locale == "en" and text else text


def validation_error(error: ValidationError, where: str, locale: str) -> ApiError:
    """The API's answer to one schema failure: a sentence, plus the fields a program reads."""
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    raw = error.message if len(error.message) < 300 else error.message[:300] + "…"
    return ApiError(
        "invalid_body" if where == "body" else "invalid_query",
        sentence(error, where, locale),
        field=f"{where}{path}",
        reason=str(error.validator),
        detail=f"{where}{path}: {raw}",
    )

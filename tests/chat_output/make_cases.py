#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# make_cases.py - writes tests/chat_output/cases.json: model-style raw outputs and the OpenAI assistant message that
# vLLM's GLM-4.5 parsers make of them, for tests/test_chat_output.c (chat_output.c must give the same, byte for byte).
#
# vLLM itself is too heavy to install here, so its extraction logic is mirrored below, statement for statement (same
# regular expressions, same try/except structure, same json/ast calls), from:
#   repo vllm-project/vllm, path vllm/tool_parsers/glm4_moe_tool_parser.py,
#     commit 081866a63af3f44fc3f71c6c3539129fa2380985 (Glm4MoeModelToolParser.extract_tool_calls, _deserialize,
#     _is_string_type; arguments = json.dumps(arg_dct, ensure_ascii=False))
#   repo vllm-project/vllm, path vllm/reasoning/glm4_moe_reasoning_parser.py,
#     commit 0417bb433a434a1b95a5f1b1df11acfb59cb3e40 (Glm4MoeModelReasoningParser.extract_reasoning_content: used
#     only to record, per case, whether our reasoning rule agrees with it)
#   and the way vllm/entrypoints/openai serving_chat combines the two for a non-streamed response (reasoning split
#   first, tool calls parsed from the content; content = the tool parser's content when tools were called).
# Our reasoning rule (chat_output.h, rules 1-4) is implemented in split_reasoning() below; the tool-call part is
# vLLM's, unchanged. Python 3.11 (json, ast, and the `regex` module vLLM uses).
import ast
import json
import os
import random
from types import SimpleNamespace

import regex as re

# ------------------------------------------------------------------------------------------ vLLM glm45 tool parser
TOOL_CALL_START = "<tool_call>"
FUNC_CALL_RE = re.compile(r"<tool_call>.*?</tool_call>", re.DOTALL)
FUNC_DETAIL_RE = re.compile(r"<tool_call>([^\n]*)\n(.*)</tool_call>", re.DOTALL)
FUNC_ARG_RE = re.compile(r"<arg_key>(.*?)</arg_key>\s*<arg_value>(.*?)</arg_value>", re.DOTALL)


def vllm_deserialize(value):
    # json first, then a Python literal, else the text itself; other exceptions propagate
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        pass
    return value


def vllm_is_string_type(tool_name, arg_name, tools):
    # the first tool of that name decides: its parameters.properties[arg].type == "string"
    if tools is None:
        return False
    for tool in tools:
        if tool.function.name != tool_name:
            continue
        if tool.function.parameters is None:
            return False
        arg_type = tool.function.parameters.get("properties", {}).get(arg_name, {}).get("type", None)
        return arg_type == "string"
    return False


def vllm_extract_tool_calls(model_output, tools):
    """-> (tools_called, [(name, arguments)], content, n_ok_before_exception or None)"""
    matched = FUNC_CALL_RE.findall(model_output)
    calls = []
    try:
        for match in matched:
            detail = FUNC_DETAIL_RE.search(match)
            if not detail:
                continue  # vLLM logs "Failed to parse tool call details" and goes on
            name = detail.group(1).strip()
            args_text = detail.group(2)
            pairs = FUNC_ARG_RE.findall(args_text) if args_text else []
            args = {}
            for key, value in pairs:
                key = key.strip()
                if vllm_is_string_type(name, key, tools):
                    val = value
                else:
                    val = vllm_deserialize(value.strip())
                args[key] = val
            calls.append((name, json.dumps(args, ensure_ascii=False)))
    except Exception:  # vLLM: logger.exception("Failed to extract tool call spec")
        return False, [], model_output, len(calls)
    if calls:
        content = model_output[: model_output.find(TOOL_CALL_START)]
        if not content or not content.strip():
            content = None
        return True, calls, content, None
    return False, [], model_output, None


# ------------------------------------------------------------------------------------------ reasoning
def vllm_glm45_reasoning(model_output):
    # vLLM's GLM-4.5 reasoning parser (both tags needed, else everything is content)
    if "<think>" not in model_output or "</think>" not in model_output:
        return None, model_output
    parts = model_output.partition("<think>")
    model_output = parts[2] if parts[1] else parts[0]
    if "</think>" not in model_output:
        return None, model_output
    reasoning, _, content = model_output.partition("</think>")
    return reasoning, content or None


def split_reasoning(text, prompt_ends_in_think):
    # chat_output.h rules 1-4
    stripped = text.lstrip()  # str.isspace() whitespace, as py_isspace in C
    model = stripped.startswith("<think>")
    if not model and not prompt_ends_in_think:
        return None, text or None
    r = stripped[len("<think>"):] if model else text
    i, j = r.find("</think>"), r.find("<tool_call>")
    if i >= 0 and (j < 0 or i < j):
        reasoning, content = r[:i], r[i + len("</think>"):]
    elif j >= 0:
        reasoning, content = r[:j], r[j:]
    elif model:
        reasoning, content = r, None
    else:
        reasoning, content = None, r
    return reasoning or None, content or None


def make_message(text, tools, prompt_ends_in_think, no_tool_parse):
    reasoning, content = split_reasoning(text, prompt_ends_in_think)
    tool_objs = None
    if tools is not None:
        tool_objs = [SimpleNamespace(function=SimpleNamespace(name=t["function"]["name"],
                                                              parameters=t["function"].get("parameters")))
                     for t in tools]
    calls, diverges = [], False
    if not no_tool_parse:
        called, calls, tc_content, ok_before_exc = vllm_extract_tool_calls(content if content is not None else "",
                                                                          tool_objs)
        if called:
            content = tc_content
        elif tc_content:
            content = tc_content
        diverges = bool(ok_before_exc)  # the exception came after a call the stream had already sent
    msg = {
        "role": "assistant",
        "content": content or None,
        "reasoning_content": reasoning,
        "tool_calls": [{"id": "call_%d" % i, "type": "function", "function": {"name": n, "arguments": a}}
                       for i, (n, a) in enumerate(calls)],
    }
    vr, vc = vllm_glm45_reasoning(text)
    return msg, diverges, (vr or None) == reasoning and (vc or None) == split_reasoning(text, prompt_ends_in_think)[1]


# ------------------------------------------------------------------------------------------ corpus
def tool(name, props=None, no_params=False, raw_params=None):
    f = {"name": name, "description": "test tool " + name}
    if raw_params is not None:
        f["parameters"] = raw_params
    elif not no_params:
        f["parameters"] = {"type": "object", "properties": props or {}}
    return {"type": "function", "function": f}


TOOLS = [
    tool("get_weather", {"city": {"type": "string"}, "days": {"type": "integer"}, "unit": {"type": "string"},
                         "detailed": {"type": "boolean"}, "coords": {"type": "array"}, "opts": {"type": "object"},
                         "temp": {"type": "number"}, "maybe": {"type": ["string", "null"]}}),
    tool("search", {"query": {"type": "string"}, "top_k": {"type": "integer"}, "filters": {"type": "object"}}),
    tool("get_time", {}),
    tool("no_params", no_params=True),
    tool("write_file", {"path": {"type": "string"}, "content": {"type": "string"}}),
    tool("bad_props", raw_params={"type": "object", "properties": None}),
]


def call(name, *pairs, sep="\n"):
    s = "<tool_call>" + name + "\n"
    for k, v in pairs:
        s += "<arg_key>%s</arg_key>%s<arg_value>%s</arg_value>\n" % (k, sep, v)
    return s + "</tool_call>"


CASES = []


def add(name, text, tools=True, think=False, no_tool_parse=False):
    CASES.append({"name": name, "text": text, "tools": TOOLS if tools is True else tools,
                  "prompt_ends_in_think": think, "no_tool_parse": no_tool_parse})


# plain answers and thinking
add("plain", "The answer is 42.")
add("plain_leading_nl", "\nThe answer is 42.\n")
add("empty", "")
add("blank", " \n\t ")
add("think_answer", "<think>Let me think. 6*7=42.</think>The answer is 42.")
add("glm45v_style", "\n<think>The user asks about a dog.</think>\nIt is a golden retriever.")
add("glm46v_style", "<think>\nLook at the image.\n</think>\nA cat.")
add("glm41v_answer_tags", "<think>Reasoning here.</think><answer>Paris<|end_of_box|></answer>")
add("empty_think", "<think></think>Direct answer.")
add("empty_think_nl", "<think></think>\n")
add("think_only_truncated", "<think>I am still thinking about this and")
add("think_leading_ws_truncated", " \n<think>partial thought")
add("think_no_content", "<think>done thinking</think>")
add("think_unicode", "<think>思考中…🤔</think>答案是：北京。")
add("second_think_end", "<think>a</think>b</think>c")
add("think_not_leading", "Answer first <think>hidden?</think> then more")
add("stray_think_end_no_prompt", "abc</think>xyz")
add("prompt_think_closed", "I reason here.</think>The answer.", think=True)
add("prompt_think_closed_nl", "\nreasoning\n</think>\n\nanswer\n", think=True)
add("prompt_think_unclosed", "The model answered without closing thinking.", think=True)
add("prompt_think_unclosed_unicode", "Réponse: 東京 ✓", think=True)
add("prompt_think_model_think_too", "<think>again</think>answer", think=True)
add("prompt_think_empty", "", think=True)
add("prompt_think_blank", "\n\n", think=True)
add("prompt_think_only_end", "</think>", think=True)
add("prompt_think_tool", "I should call a tool.\n" + call("get_weather", ("city", "Paris")), think=True)
add("prompt_think_tool_unterminated", "thinking <tool_call>get_weather\n<arg_key>city", think=True)
add("boxes", "<think>find it</think>The dog is at <|begin_of_box|>[[120, 40, 380, 300]]<|end_of_box|>.")
add("boxes_no_think", "<|begin_of_box|>(10,20),(30,40)<|end_of_box|>")

# tool calls: the GLM-4.5 format
add("tool_string", "\n" + call("get_weather", ("city", "Beijing")))
add("tool_think_then_call", "<think>The user wants the weather.</think>\n" + call("get_weather", ("city", "北京"), ("days", "3")))
add("tool_ends_thinking", "<think>I need the weather" + call("get_weather", ("city", "Oslo")) + "tail")
add("tool_all_types", call("get_weather", ("city", " New York "), ("days", "3"), ("temp", "21.5"), ("detailed", "true"),
                           ("coords", "[40.7, -74.0]"), ("opts", '{"lang": "en", "units": ["C", "F"]}'),
                           ("unit", "celsius"), ("maybe", "null")))
add("tool_python_literals", call("search", ("query", "cats"), ("top_k", "True"), ("filters", "{'a': (1, 2), 'b': None}")))
add("tool_string_stays_raw", call("get_weather", ("city", "123"), ("unit", '"quoted"'), ("days", '"5"')))
add("tool_string_whitespace", call("write_file", ("path", "\n/tmp/a.txt\n"), ("content", "  line 1\n  line 2\n")))
add("tool_code_content", call("write_file", ("path", "a.py"), ("content", 'def f(x):\n    return "\\n".join(x)\t# é\n')))
add("tool_no_tools_given", call("get_weather", ("city", "Paris"), ("days", "2"), ("x", "[1, 'a']")), tools=None)
add("tool_unknown_tool", call("unknown_fn", ("city", "Paris"), ("n", "1.50")))
add("tool_no_args", call("get_time"))
add("tool_no_args_no_newline", "<tool_call>get_time</tool_call>")
add("tool_no_args_space", "<tool_call>get_time\n</tool_call>")
add("tool_no_params_schema", call("no_params", ("a", "1"), ("b", "x")))
add("tool_several", call("get_weather", ("city", "Paris")) + "\n" + call("get_weather", ("city", "Rome"), ("days", "2")) + "\n" + call("get_time"))
add("tool_text_before", "Let me check that for you.\n" + call("search", ("query", "weather in Paris")))
add("tool_blank_before", "\n\n  " + call("search", ("query", "x")))
add("tool_text_between_after", "Before\n" + call("get_time") + "\nbetween\n" + call("get_time") + "\nafter")
add("tool_name_spaces", "<tool_call>  get_weather  \n<arg_key> city </arg_key>\n<arg_value>Lyon</arg_value>\n</tool_call>")
add("tool_empty_name", "<tool_call>\n<arg_key>a</arg_key><arg_value>1</arg_value></tool_call>")
add("tool_no_sep_between", call("get_weather", ("city", "Nice"), ("days", "1"), sep=""))
add("tool_junk_between_key_value", "<tool_call>f\n<arg_key>a</arg_key>junk<arg_key>b</arg_key>\n<arg_value>1</arg_value></tool_call>")
add("tool_unicode_space_between", "<tool_call>f\n<arg_key>a</arg_key>\u3000\u2028<arg_value>1</arg_value></tool_call>")
add("tool_fs_between", "<tool_call>f\n<arg_key>a</arg_key>\x1c<arg_value>1</arg_value><arg_key>b</arg_key> <arg_value>2</arg_value></tool_call>")
add("tool_duplicate_keys", call("get_weather", ("city", "A"), ("days", "1"), ("city", "B")))
add("tool_unicode_values", call("search", ("query", "日本語 テキスト 🚀"), ("filters", '{"lang": "日本", "emoji": "😀"}')))
add("tool_escapes_in_string", call("search", ("query", 'He said "hi"\\ and\ttab\x01\x7f\u2028end')))
add("tool_control_in_json", call("f", ("a", '"a\\u0001b\\u2028c"'), ("b", '"\\ud83d\\ude00"')))
add("tool_numbers", call("f", ("i", "0"), ("neg", "-0"), ("f", "1.0"), ("e", "1e5"), ("big", "123456789012345678901234567890"),
                         ("small", "5e-324"), ("e16", "1e16"), ("e15", "1e15"), ("tiny", "0.00001"), ("third", "0.1"),
                         ("huge", "1E400"), ("nan", "NaN"), ("ninf", "-Infinity"), ("negz", "-0.0"), ("pi", "3.141592653589793")))
add("tool_py_numbers", call("f", ("hex", "0x1F"), ("oct", "0o17"), ("bin", "0b101"), ("us", "1_000_000"), ("plus", "+1"),
                            ("minus", "- 2"), ("pf", "1."), ("lf", ".5"), ("ef", "1.e5"), ("bighex", "0xFFFFFFFFFFFFFFFFFFFFFFFF"),
                            ("zeros", "00"), ("lead", "012"), ("negf", "-1.5e-7"), ("flt_us", "1_0.2_5")))
add("tool_py_strings", call("f", ("sq", "'single'"), ("esc", "'a\\nb\\x41\\u00e9\\101'"), ("raw", "r'\\d+'"),
                            ("cat", "'a' \"b\""), ("tri", "'''x\ny'''"), ("fstr", "f'{x}'"), ("u", "u'x'"),
                            ("bad_esc", "'\\q'"), ("unterminated", "'abc"), ("mixed", "'a' b'c'")))
add("tool_py_structures", call("f", ("tuple", "(1, 2)"), ("bare_tuple", "1, 2"), ("one", "(1,)"), ("empty_t", "()"),
                               ("trail", "[1, 2,]"), ("nested", "{'a': [1, {'b': None}], 'c': (True, False)}"),
                               ("comment", "[1, 2]  # a list"), ("multiline", "[1,\n 2]"), ("paren", "(3)"),
                               ("negparen", "-(4)"), ("keys", "{1: 'a', True: 'b', 1.0: 'c', None: 1, 2.5: 2, False: 3}")))
add("tool_py_not_literal", call("f", ("name", "hello"), ("expr", "1 + 2"), ("call", "foo(1)"), ("neg_bool", "-True"),
                                ("double_neg", "--1"), ("inf_name", "inf"), ("words", "hello world"), ("attr", "a.b"),
                                ("cmp", "1 < 2"), ("two_lines", "1\n2"), ("sub", "[1][0]")))
add("tool_json_specials", call("f", ("dup", '{"a": 1, "b": 2, "a": 3}'), ("ws", ' {"a" : [ 1 , 2 ] } '),
                               ("nested", '[[[[[[1]]]]]]'), ("empty_obj", "{}"), ("empty_arr", "[]"), ("str", '"x"'),
                               ("t", "true"), ("n", "null"), ("trailing", "[1, 2,]"), ("single", "{'a': 1}")))
add("tool_empty_values", call("f", ("empty", ""), ("blank", "  "), ("nl", "\n")))
add("tool_string_param_empty", call("get_weather", ("city", ""), ("unit", "  ")))
add("tool_maybe_type_list", call("get_weather", ("maybe", "42")))

# the exception path: no tool calls at all, the text is the content
add("fail_set", call("f", ("s", "{1, 2}")))
add("fail_bytes", call("f", ("b", "b'abc'")))
add("fail_complex", call("f", ("c", "1+2j")))
add("fail_ellipsis", call("f", ("e", "...")))
add("fail_unhashable_key", call("f", ("d", "{[1]: 2}")))
add("fail_tuple_key", call("f", ("d", "{(1, 2): 3}")))
add("fail_set_call", call("f", ("s", "set()")))
add("fail_bad_props_schema", call("bad_props", ("x", "1")))
add("fail_huge_json_int", call("f", ("n", "9" * 4301)))
add("ok_long_json_int", call("f", ("n", "9" * 4300)))
add("fail_huge_hex", call("f", ("n", "0x" + "F" * 3600)))
add("str_huge_decimal_literal", call("f", ("n", "1_" * 4300 + "1")))
add("str_bytes_non_ascii", call("f", ("b", "b'é'")))
add("str_not_literal_before_set", call("f", ("l", "[x, {1, 2}]")))
add("fail_set_before_name", call("f", ("l", "[{[1]: 2}, x]")))
add("deep_literal_ok", call("f", ("a", "1+" * 1000 + "1"), ("b", "-" * 1000 + "1"), ("c", "[" * 150 + "-1" + "]" * 150)))
add("fail_deep_binop", call("f", ("a", "1+" * 5000 + "1")))
add("fail_deep_unary", call("f", ("a", "-" * 5000 + "1")))
add("str_too_many_brackets", call("f", ("a", "[" * 201 + "]" * 201)))
add("deep_json_ok", call("f", ("a", "[" * 500 + "]" * 500)))
add("fail_deep_json", call("f", ("a", "[" * 3000 + "]" * 3000)))
add("fail_first_call", call("f", ("s", "{1}")) + call("get_time"))
add("fail_second_call_diverges", "Sure.\n" + call("get_time") + call("f", ("s", "{1}")))

# malformed
add("malformed_unterminated", "Let me call.\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris")
add("malformed_unterminated_after_ok", call("get_time") + "\n<tool_call>get_weather\n<arg_key>city</arg_key>")
add("malformed_missing_value", "<tool_call>get_weather\n<arg_key>city</arg_key>\n</tool_call>")
add("malformed_missing_value_end", "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris\n</tool_call>")
add("malformed_missing_key_end", "<tool_call>get_weather\n<arg_key>city\n<arg_value>Paris</arg_value>\n</tool_call>")
add("malformed_value_end_later", "<tool_call>f\n<arg_key>a</arg_key><arg_value>1</tool_call>x</arg_value>")
add("malformed_nested_tool_call", "<tool_call>f\n<tool_call>g\n<arg_key>a</arg_key><arg_value>1</arg_value></tool_call></tool_call>")
add("malformed_only_open", "<tool_call>")
add("malformed_only_close", "</tool_call> text")
add("malformed_partial_tags", "<tool_cal <arg_key> </arg_value> <think")
add("malformed_close_before_open", "</tool_call><tool_call>get_time\n</tool_call>")
add("no_tool_parse", "Text " + call("get_weather", ("city", "Paris")), no_tool_parse=True)
add("no_tool_parse_think", "<think>t</think>" + call("get_time"), no_tool_parse=True)

# seeded random assemblies of the format's pieces (differential coverage of the regex emulation)
PIECES = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<arg_key>", "</arg_key>", "<arg_value>",
          "</arg_value>", "\n", " ", "  ", "\t", "get_weather", "city", "days", "f", "a", "1", "2.5", "-3", "'x'",
          '"y"', "[1, 2]", '{"k": [true, null]}', "{'k': (1,)}", "é", "日本", "😀", "True", "None", "0x10",
          "<tool", "</arg", "<think", "hello world", "{1, 2}", "\u3000", "\\", '"', "<|begin_of_box|>", "<|end_of_box|>"]
rng = random.Random(20261206)
for k in range(400):
    n = rng.randint(1, 24)
    text = "".join(rng.choice(PIECES) for _ in range(n))
    if rng.random() < 0.5:  # make well-formed calls likely
        text = rng.choice(["", "<think>r</think>", "intro "]) + "".join(
            call(rng.choice(["get_weather", "search", "f"]),
                 *[(rng.choice(["city", "days", "query", "top_k", "a"]), rng.choice(PIECES[8:36]))
                   for _ in range(rng.randint(0, 3))]) + rng.choice(["", "\n", "x"])
            for _ in range(rng.randint(1, 3))) + text
    add("random_%03d" % k, text, tools=rng.choice([True, None]), think=rng.random() < 0.25)


# values: floats (shortest repr), Python literals and JSON texts built from random Python objects
import math
import struct
frng = random.Random(7)
floats = [0.3, 1e22, 1e23, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 9007199254740993.0, 0.1 + 0.2,
          123456789.123, 1e-4, 9.999999999999999e-05, 1e16 - 2, 1e16, 2.5e-05]
floats += [math.ldexp(1.0, k) for k in range(-1074, 1024, 29)]
while len(floats) < 400:
    x = struct.unpack("<d", struct.pack("<Q", frng.getrandbits(64)))[0]
    if math.isfinite(x):
        floats.append(x)
    floats.append(frng.uniform(-1000, 1000))
    floats.append(round(frng.uniform(0, 100), frng.randint(0, 6)))
for k in range(0, len(floats), 40):
    chunk = floats[k:k + 40]
    add("floats_json_%02d" % (k // 40), call("f", ("x", json.dumps(chunk)), ("y", repr(chunk[0])), ("z", "%.17g" % chunk[-1])))
    add("floats_literal_%02d" % (k // 40), call("f", ("x", repr(tuple(chunk))), ("y", "%.6e" % chunk[-1])))

ALPHA = ["a", "Z", " ", "\t", "\n", "'", '"', "\\", "é", "日", "😀", "\x01", "\x7f", "\u2028", "{", "}", "[", "]", ":", ",", "<", ">"]


def rstr(r):
    return "".join(r.choice(ALPHA) for _ in range(r.randint(0, 8)))


def robj(r, depth=0):
    k = r.randint(0, 9 if depth < 3 else 5)
    if k == 0:
        return None
    if k == 1:
        return r.choice([True, False])
    if k == 2:
        return r.randint(-10 ** r.randint(1, 30), 10 ** r.randint(1, 30))
    if k == 3:
        return r.choice([0.5, -2.25, 1e-7, 3e20, r.random() * 10 ** r.randint(-8, 20)])
    if k in (4, 5):
        return rstr(r)
    if k == 6:
        return [robj(r, depth + 1) for _ in range(r.randint(0, 4))]
    if k == 7:
        return tuple(robj(r, depth + 1) for _ in range(r.randint(0, 4)))
    d = {}
    for _ in range(r.randint(0, 4)):
        key = r.choice([rstr(r), r.randint(-5, 5), r.choice([True, False, None]), r.choice([0.5, 1.0, 2.0])])
        d[key] = robj(r, depth + 1)
    return d


orng = random.Random(11)
for k in range(120):
    o = robj(orng)
    pairs = [("lit", repr(o))]
    try:
        pairs.append(("js", json.dumps(o, ensure_ascii=orng.random() < 0.5)))
    except (TypeError, ValueError):
        pass
    add("objects_%03d" % k, call("f", *pairs), tools=None)

ESC = ["\\n", "\\t", "\\x41", "\\xe9", "\\u00e9", "\\u65e5", "\\U0001F600", "\\101", "\\0", "\\777", "\\'", '\\"', "\\\\",
       "\\q", "\\\n", "a", " ", "é", "\\a\\b\\f\\v\\r", "\\x4", "\\u12", "\\U00110000"]
QUOTES = ["'", '"', "'" * 3, '"' * 3]
srng = random.Random(13)
for k in range(120):
    q = srng.choice(QUOTES)
    body = "".join(srng.choice(ESC) for _ in range(srng.randint(0, 6)))
    if len(q) == 1:
        body = body.replace(q, "\\" + q)
    src = srng.choice(["", "r", "u", "R", "b", "f", "rb"]) + q + body + q
    if srng.random() < 0.3:
        src += " " + srng.choice(["'x'", '"y"', "u'z'"])
    add("pystr_%03d" % k, call("f", ("s", src), ("j", json.dumps(body))), tools=None)


def main():
    out = []
    for c in CASES:
        msg, diverges, as_vllm = make_message(c["text"], c["tools"], c["prompt_ends_in_think"], c["no_tool_parse"])
        out.append({"name": c["name"], "text": c["text"], "tools": c["tools"],
                    "prompt_ends_in_think": c["prompt_ends_in_think"], "no_tool_parse": c["no_tool_parse"],
                    "expected": msg, "stream_diverges": diverges, "reasoning_as_vllm_glm45": as_vllm})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"generator": "tests/chat_output/make_cases.py", "cases": out}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("%d cases -> %s" % (len(out), path))
    # fuzz seeds for fuzz/fuzz_chat_output.c: byte 0 = flags, byte 1 = piece-size seed, then the text
    seeds = os.path.join(os.path.dirname(path), "..", "..", "fuzz", "corpus", "chat_output")
    os.makedirs(seeds, exist_ok=True)
    picked = [c for c in out if not c["name"].startswith("random_")][:60] + [c for c in out if c["name"].startswith("random_")][:20]
    for c in picked:
        flags = int(c["prompt_ends_in_think"]) | int(c["no_tool_parse"]) << 1 | int(c["tools"] is not None) << 2
        data = bytes([flags, 7]) + c["text"].encode("utf-8")
        if len(data) <= 4096:
            with open(os.path.join(seeds, c["name"] + ".bin"), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()

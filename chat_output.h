// SPDX-License-Identifier: MIT
// chat_output.h - the model's raw output text -> the OpenAI chat message {content, reasoning_content, tool_calls}:
// one parser shared by the CLI (parse-output, --hide-think), the server (whole and streamed) and the scorer.
// Standalone: libc + cJSON. Mirrors vLLM's `glm45` tool parser (vllm/tool_parsers/glm4_moe_tool_parser.py,
// Glm4MoeModelToolParser.extract_tool_calls) and splits the reasoning as vLLM's GLM-4.5 reasoning parser
// (vllm/reasoning/glm4_moe_reasoning_parser.py) and llama-server do, with the rules below where they disagree.
//
// REASONING (text T, prompt_ends_in_think P = the rendered prompt ended with "<think>"):
//   1. T opens thinking itself when it starts with "<think>" after optional whitespace (Python str.isspace): the
//      whitespace and the tag are dropped (vLLM drops the text before "<think>"). Otherwise, if P, the prompt opened
//      thinking and T is read from its start. Otherwise there is no reasoning: content = T, verbatim ("<think>" and
//      "</think>" further on are ordinary text; vLLM's parser would split at a later "<think>" and drop the text
//      before it: here nothing is dropped).
//   2. In thinking, reasoning runs to the first "</think>" (dropped; content = the text after it, verbatim) or to the
//      first "<tool_call>" if that comes first (content = the text from "<tool_call>" on): thinking ends where a tool
//      call begins.
//   3. Neither tag (the model stopped while thinking): when T itself opened the block (rule 1), the text is reasoning
//      and content is null (a cut-off thought, finish_reason "length"); when only the prompt opened it, the whole of T
//      is content and reasoning is null: a model that answered without closing the block never has its answer lost
//      inside reasoning_content (the failure of servers that put everything after a prompt's "<think>" there).
//      The streaming parser therefore holds text back while a prompt-opened block is undecided (rule 3 needs the end).
//   4. Empty reasoning and empty content are null (vLLM keeps "" for "<think></think>"). Nothing is stripped: the
//      content keeps the newline after "</think>", GLM-4.1V's <answer>...</answer> tags and the boxes
//      (<|begin_of_box|>...<|end_of_box|>), as vLLM returns them.
// TOOL CALLS (vLLM glm45, on the content c of the split above; skipped when no_tool_parse):
//   regions: each "<tool_call>" ... first following "</tool_call>" (regex <tool_call>.*?</tool_call>, DOTALL; an
//   unterminated one ends the search). A region's inner text needs a "\n": name = the text before the first "\n",
//   stripped (Python str.strip); a region without "\n" is skipped. Arguments: the pairs of the regex
//   <arg_key>(.*?)</arg_key>\s*<arg_value>(.*?)</arg_value> (findall, DOTALL, \s = Unicode White_Space) over the
//   text after that "\n"; key = stripped key. A value of a parameter whose JSON schema (the tool of that name, its
//   parameters.properties[key].type) is "string" stays the raw text, unstripped; any other value is stripped, then
//   parsed as JSON (Python json.loads: NaN/Infinity accepted, duplicate keys keep the first position and last value),
//   else as a Python literal (ast.literal_eval: numbers incl. 0x/0o/0b/underscores, quoted strings with escapes and
//   prefixes, True/False/None, tuples, lists, dicts, comments; a tuple becomes a list), else kept as the string.
//   With no tools every value is parsed so. A repeated key keeps its first position and takes the last value.
//   arguments = json.dumps(obj, ensure_ascii=False): separators ", " and ": ", non-ASCII kept, floats as Python's
//   repr (1e+16, 1e-05, 100000.0), Infinity/NaN, "{}" for a call without arguments. ids "call_0", "call_1", ...
//   When at least one call parses: content = c up to the first "<tool_call>", null when blank (text between and
//   after calls is dropped, as vLLM does). When none parses, content = c. When a value cannot be turned into JSON
//   (a Python set, bytes, complex, Ellipsis, a non-string-convertible dict key, an unhashable key, an int of more
//   than 4300 digits, JSON nested deeper than CHAT_OUTPUT_JSON_MAX_DEPTH, a Python literal nested more than 2984
//   levels deep: CPython's RecursionError) or a tool schema's properties is not an object, vLLM's exception path
//   applies: no tool calls at all, content = c. Malformed text never fails the parse.
//   Known, documented differences from CPython: \N{NAME} escapes in Python string literals keep the value as a
//   string; Python constructs outside the literal subset (calls, attributes, operators other than +/-) keep the value
//   as a string even where CPython would first raise TypeError on an unhashable key earlier in the same literal.
// STREAMING: the same result as the whole parse, delivered as deltas while text arrives; text that could still be a
//   tag ("<think>", "</think>", "<tool_call>", "</tool_call>") or an incomplete UTF-8 character is held back, content
//   that is blank so far is held back (it becomes null if a tool call follows), a tool call is sent whole (start +
//   one arguments fragment) once its "</tool_call>" arrives and parses. The one case the stream cannot match is the
//   exception path above hitting a later call after an earlier call was sent: chat_output_stream_diverged() says so.
#ifndef CHAT_OUTPUT_H
#define CHAT_OUTPUT_H

#include <cjson/cJSON.h>
#include <stddef.h>

// JSON nesting beyond this is vLLM's RecursionError path (CPython's limit, 1000 frames minus the caller's: 994 from
// a shallow stack; the exact figure depends on the caller's depth)
#define CHAT_OUTPUT_JSON_MAX_DEPTH 990

// how to read one output
typedef struct {
    const cJSON *tools;       // the request's OpenAI tools array (borrowed; kept alive by the caller) or NULL; an
                              // item without "function" but with "name" is read as the function itself
    int prompt_ends_in_think; // 1: the rendered prompt ended with "<think>" (the template opened thinking)
    int no_tool_parse;        // 1: do not look for tool calls (tool_choice "none"): the content keeps that text
} ChatOutputOptions;

// one parsed tool call
typedef struct {
    char *id;        // "call_<index>"
    char *name;      // function name (stripped), NUL-terminated
    char *arguments; // JSON object text (json.dumps(..., ensure_ascii=False)), NUL-terminated
} ChatOutputToolCall;

// the OpenAI assistant message made of one output
typedef struct {
    char *content;                  // answer text (NUL-terminated, content_len bytes) or NULL for null
    size_t content_len;             // bytes of content
    char *reasoning;                // reasoning text (NUL-terminated) or NULL for null
    size_t reasoning_len;           // bytes of reasoning
    ChatOutputToolCall *tool_calls; // n_tool_calls calls, in output order
    int n_tool_calls;               // number of tool calls
} ChatOutput;

// the last error of this thread (one line)
const char *chat_output_error(void);

// 1 when a rendered prompt ends with "<think>" (trailing whitespace aside): the value for prompt_ends_in_think
int chat_output_prompt_ends_in_think(const char *prompt, size_t len);
// parses text[0..len) into *out (zeroed first); 0, or -1 (out of memory, tools not an array) with the error set
int chat_output_parse(const char *text, size_t len, const ChatOutputOptions *opt, ChatOutput *out);
// frees what chat_output_parse allocated in *o and zeroes it
void chat_output_free(ChatOutput *o);
// the message as a cJSON object: role, content, reasoning_content, tool_calls ([] when none); NULL when out of memory
// (cJSON strings end at a NUL byte: chat_output_message_json keeps NULs as \u0000)
cJSON *chat_output_message(const ChatOutput *o);
// the same message as compact JSON text (malloc'd; NUL bytes in the texts kept as \u0000); NULL when out of memory
char *chat_output_message_json(const ChatOutput *o);

// --- streaming
typedef enum {
    CHAT_DELTA_REASONING = 0, // text: a piece of reasoning_content
    CHAT_DELTA_CONTENT,       // text: a piece of content
    CHAT_DELTA_TOOL_CALL,     // a tool call starts: index, id, text = its function name
    CHAT_DELTA_TOOL_ARGS,     // text: a fragment of tool call `index`'s arguments JSON
} ChatDeltaKind;

// one delta; text is valid only during the callback and never ends inside a UTF-8 character
typedef struct {
    ChatDeltaKind kind; // what the delta carries
    const char *text;   // the text (see ChatDeltaKind), len bytes, not NUL-terminated
    size_t len;         // bytes of text
    int index;          // tool call index (TOOL_CALL / TOOL_ARGS), else -1
    const char *id;     // TOOL_CALL: "call_<index>" (NUL-terminated), else NULL
} ChatDelta;

// receives each delta; a nonzero return stops the stream (feed/finish return -1)
typedef int (*ChatDeltaFn)(void *user, const ChatDelta *d);

typedef struct ChatOutputStream ChatOutputStream;

// a streaming parser (opt is copied; opt->tools is borrowed); NULL when out of memory
ChatOutputStream *chat_output_stream_new(const ChatOutputOptions *opt, ChatDeltaFn fn, void *user);
// feeds the next piece of text (any split, even inside a UTF-8 character or a tag); 0, or -1 (error set)
int chat_output_stream_feed(ChatOutputStream *s, const char *text, size_t len);
// the output ended: sends what was held back; 0, or -1
int chat_output_stream_finish(ChatOutputStream *s);
// 1 when the stream could not follow the whole parse (see STREAMING above), else 0
int chat_output_stream_diverged(const ChatOutputStream *s);
// frees the stream (NULL is fine)
void chat_output_stream_free(ChatOutputStream *s);

#endif

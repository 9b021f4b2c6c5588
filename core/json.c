/*
 * json.c — JSON parsing for the bindings (mg_json_*), through the cJSON the
 * engine already links for safetensors headers.
 *
 * The stdlib writes its JSON (model configs, checkpoints) in Lua, with sorted
 * keys so that the same model gives the same text; reading it back needs a
 * parser, which used to be the lua-cjson C module: a run-time dependency that
 * the embedding library cannot carry and LuaJIT may lack. Here a document is
 * parsed once into cJSON's tree and handed out read-only; the Lua 5.4 binding
 * and the FFI binding each walk it into Lua tables (core.json_decode). A node
 * is a cJSON item: its type, its scalar, its first child, its next sibling and
 * its key (inside an object). Errors name the byte where parsing stopped.
 */
#include "internal.h"
#include <cjson/cJSON.h>
#include <stdio.h>

struct mg_json {
  cJSON item;  /* never allocated as such: mg_json pointers are cJSON pointers */
};

mg_status mg_json_parse(const char *text, size_t len, mg_json **out) {
  *out = NULL;
  if (!text) return mg_seterror(MG_EARG, "json: the text is NULL");
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (root && end) {  /* nothing but blanks may follow the value */
    size_t at = (size_t)(end - text);
    while (at < len && (text[at] == ' ' || text[at] == '\t' || text[at] == '\n' || text[at] == '\r')) at++;
    if (at < len) {
      cJSON_Delete(root);
      return mg_seterror(MG_EARG, "json: unexpected text after the value at byte %zu of %zu", at + 1, len);
    }
  }
  if (!root) {
    size_t at = end && end >= text ? (size_t)(end - text) : 0;
    if (at > len) at = len;
    return mg_seterror(MG_EARG, "json: invalid JSON at byte %zu of %zu%s", at + 1, len,
                       len > 0 && at >= len ? " (the text ends too early)" : "");
  }
  *out = (mg_json *)root;
  return MG_OK;
}

void mg_json_free(mg_json *root) { cJSON_Delete((cJSON *)root); }

int mg_json_type(const mg_json *n) {
  const cJSON *c = (const cJSON *)n;
  if (cJSON_IsFalse(c)) return MG_JSON_FALSE;
  if (cJSON_IsTrue(c)) return MG_JSON_TRUE;
  if (cJSON_IsNumber(c)) return MG_JSON_NUMBER;
  if (cJSON_IsString(c)) return MG_JSON_STRING;
  if (cJSON_IsArray(c)) return MG_JSON_ARRAY;
  if (cJSON_IsObject(c)) return MG_JSON_OBJECT;
  return MG_JSON_NULL;
}

double mg_json_number(const mg_json *n) { return ((const cJSON *)n)->valuedouble; }
const char *mg_json_string(const mg_json *n) {
  const char *s = ((const cJSON *)n)->valuestring;
  return s ? s : "";
}
const mg_json *mg_json_child(const mg_json *n) { return (const mg_json *)((const cJSON *)n)->child; }
const mg_json *mg_json_next(const mg_json *n) { return (const mg_json *)((const cJSON *)n)->next; }
const char *mg_json_key(const mg_json *n) {
  const char *k = ((const cJSON *)n)->string;
  return k ? k : "";
}

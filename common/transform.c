/*  transform.c - EventBridge input transformers (transform.h).

    Compiling splits the template into parts: literal text, and placeholders,
    each marked with whether it sits inside a JSON string (the template is
    scanned as JSON text: '"' opens and closes a string, '\\' escapes inside
    one). Rendering writes the parts into a text buffer, then either parses it
    as JSON (json-c, via codec.c) and packs that, or packs the text as a
    string. */

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "event.h"
#include "transform.h"

typedef enum {
    VAR_PATH,                           //  from InputPathsMap
    VAR_RULE_NAME,
    VAR_RULE_ARN,
    VAR_EVENT,
    VAR_INGESTION_TIME,
} var_kind_t;

typedef struct {
    char *name;
    var_kind_t kind;
    char **keys;                        //  VAR_PATH: the path's keys ("$": none)
    size_t nkeys;
} var_t;

typedef struct {
    const char *text;                   //  literal: into the template copy
    size_t len;
    int var;                            //  -1: literal; else index into vars
    bool in_string;                     //  placeholder inside a JSON string
} part_t;

struct zb_transform_t {
    char *template_text;
    var_t *vars;
    size_t nvars;
    part_t *parts;
    size_t nparts;
    bool json;
    //  Render scratch: the output text
    char *buf;
    size_t size, cap;
};

static const struct {
    const char *name;
    var_kind_t kind;
} s_predefined [] = {
    { "aws.events.rule-name", VAR_RULE_NAME },
    { "aws.events.rule-arn", VAR_RULE_ARN },
    { "aws.events.event", VAR_EVENT },
    { "aws.events.event.json", VAR_EVENT },
    { "aws.events.event.ingestion-time", VAR_INGESTION_TIME },
};
#define PREDEFINED (sizeof s_predefined / sizeof s_predefined [0])

static bool
s_name_char (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || c == '_' || c == '-' || c == '.';
}

//  Parse a "$.a.b" path into var->keys. 0, or -1 with err.
static int
s_parse_path (var_t *var, const char *path, size_t len, char *err, size_t errlen)
{
    if (len == 0 || path [0] != '$') {
        snprintf (err, errlen, "must be a JSON path starting with \"$\" (such as \"$.detail.store\")");
        return -1;
    }
    if (len == 1)
        return 0;
    if (path [1] != '.') {
        snprintf (err, errlen, "must use dot notation: \"$.key.key\" (no brackets)");
        return -1;
    }
    var->keys = (char **) calloc (ZB_TRANSFORM_MAX_PATH, sizeof (char *));
    if (!var->keys) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    size_t start = 2;
    while (true) {
        const char *dot = (const char *) memchr (path + start, '.', len - start);
        size_t end = dot ? (size_t) (dot - path) : len;
        if (end == start) {
            snprintf (err, errlen, "has an empty key at byte %zu", start);
            return -1;
        }
        if (var->nkeys == ZB_TRANSFORM_MAX_PATH) {
            snprintf (err, errlen, "has more than %d keys", ZB_TRANSFORM_MAX_PATH);
            return -1;
        }
        if (memchr (path + start, '[', end - start) || memchr (path + start, ']', end - start)) {
            snprintf (err, errlen, "must use dot notation: \"$.items.0\", not brackets");
            return -1;
        }
        var->keys [var->nkeys] = strndup (path + start, end - start);
        if (!var->keys [var->nkeys]) {
            snprintf (err, errlen, "out of memory");
            return -1;
        }
        var->nkeys++;
        if (!dot)
            return 0;
        start = end + 1;
    }
}

static int
s_fail (char *err, size_t errlen, const char *where, const char *reason)
{
    snprintf (err, errlen, "%s: %s", where, reason);
    zb_utf8_trim (err);
    return -1;
}

//  The variable index for a placeholder name, -1 when there is none.
static int
s_find_var (zb_transform_t *self, const char *name, size_t len)
{
    for (size_t i = 0; i < self->nvars; i++)
        if (strlen (self->vars [i].name) == len && memcmp (self->vars [i].name, name, len) == 0)
            return (int) i;
    return -1;
}

static int
s_add_var (zb_transform_t *self, const char *name, size_t len, var_kind_t kind)
{
    var_t *var = &self->vars [self->nvars];
    var->name = strndup (name, len);
    if (!var->name)
        return -1;
    var->kind = kind;
    self->nvars++;
    return (int) self->nvars - 1;
}

static int
s_parse_paths (zb_transform_t *self, json_object *map, char *err, size_t errlen)
{
    if (!json_object_is_type (map, json_type_object))
        return s_fail (err, errlen, "InputPathsMap", "must be an object of variable names to JSON paths");
    size_t count = (size_t) json_object_object_length (map);
    if (count > ZB_TRANSFORM_MAX_VARS) {
        char reason [64];
        snprintf (reason, sizeof reason, "has %zu variables, at most %d", count, ZB_TRANSFORM_MAX_VARS);
        return s_fail (err, errlen, "InputPathsMap", reason);
    }
    json_object_object_foreach (map, name, value) {
        char where [160];
        char shown [ZB_TRANSFORM_MAX_NAME + 8];
        size_t len = strlen (name);
        //  At most 64 bytes of it, never cut inside a UTF-8 sequence
        size_t cut = zb_utf8_prefix (name, len < ZB_TRANSFORM_MAX_NAME ? len : ZB_TRANSFORM_MAX_NAME);
        size_t shown_len = 0;
        for (size_t i = 0; i < cut; i++)
            shown [shown_len++] = (unsigned char) name [i] < 0x20 ? '?' : name [i];
        shown [shown_len] = 0;
        snprintf (where, sizeof where, "InputPathsMap.%s", shown);
        if (len == 0 || len > ZB_TRANSFORM_MAX_NAME)
            return s_fail (err, errlen, where, "a variable name is 1 to 64 characters");
        for (size_t i = 0; i < len; i++)
            if (!s_name_char (name [i]))
                return s_fail (err, errlen, where,
                               "a variable name is made of A-Z a-z 0-9 _ - . only");
        if (strncmp (name, "aws.", 4) == 0)
            return s_fail (err, errlen, where,
                           "names starting with \"aws.\" are reserved for the predefined variables");
        if (!json_object_is_type (value, json_type_string))
            return s_fail (err, errlen, where, "must be a JSON path string such as \"$.detail.store\"");
        int index = s_add_var (self, name, len, VAR_PATH);
        if (index < 0)
            return s_fail (err, errlen, where, "out of memory");
        char reason [128];
        if (s_parse_path (&self->vars [index], json_object_get_string (value),
                          (size_t) json_object_get_string_len (value), reason, sizeof reason) != 0)
            return s_fail (err, errlen, where, reason);
    }
    return 0;
}

static int
s_add_part (zb_transform_t *self, const char *text, size_t len, int var, bool in_string)
{
    if (var < 0 && len == 0)
        return 0;
    //  At most one part per byte of the template, plus one: allocated up front
    self->parts [self->nparts++] = (part_t) { text, len, var, in_string };
    return 0;
}

//  Split the template into parts; then decide whether it is JSON.
static int
s_parse_template (zb_transform_t *self, char *err, size_t errlen)
{
    const char *t = self->template_text;
    size_t len = strlen (t);
    self->parts = (part_t *) calloc (len + 1, sizeof (part_t));
    if (!self->parts)
        return s_fail (err, errlen, "InputTemplate", "out of memory");
    bool in_string = false;
    size_t lit = 0;
    for (size_t i = 0; i < len; i++) {
        char c = t [i];
        if (in_string && c == '\\' && i + 1 < len) {
            i++;
            continue;
        }
        if (c == '"') {
            in_string = !in_string;
            continue;
        }
        if (c != '<')
            continue;
        size_t end = i + 1;
        while (end < len && s_name_char (t [end]))
            end++;
        if (end == i + 1 || end >= len || t [end] != '>')
            continue;           //  not a placeholder: text
        const char *name = t + i + 1;
        size_t name_len = end - i - 1;
        int var = s_find_var (self, name, name_len);
        if (var < 0) {
            for (size_t p = 0; p < PREDEFINED; p++)
                if (strlen (s_predefined [p].name) == name_len
                &&  memcmp (s_predefined [p].name, name, name_len) == 0) {
                    var = s_add_var (self, name, name_len, s_predefined [p].kind);
                    if (var < 0)
                        return s_fail (err, errlen, "InputTemplate", "out of memory");
                    break;
                }
        }
        if (var < 0) {
            char reason [160];
            snprintf (reason, sizeof reason,
                      "<%.*s> is neither a variable of InputPathsMap nor a predefined one "
                      "(aws.events.rule-name, aws.events.rule-arn, aws.events.event, "
                      "aws.events.event.ingestion-time)", (int) (name_len > 64 ? 64 : name_len), name);
            return s_fail (err, errlen, "InputTemplate", reason);
        }
        s_add_part (self, t + lit, i - lit, -1, false);
        s_add_part (self, NULL, 0, var, in_string);
        lit = end + 1;
        i = end;
    }
    s_add_part (self, t + lit, len - lit, -1, false);

    //  JSON when the template parses with null / "" in place of the placeholders
    char *probe = (char *) malloc (len * 4 + 8);
    if (!probe)
        return s_fail (err, errlen, "InputTemplate", "out of memory");
    size_t n = 0;
    for (size_t p = 0; p < self->nparts; p++) {
        const part_t *part = &self->parts [p];
        if (part->var < 0) {
            memcpy (probe + n, part->text, part->len);
            n += part->len;
        }
        else
        if (!part->in_string) {
            memcpy (probe + n, "null", 4);
            n += 4;
        }
    }
    probe [n] = 0;
    char perr [128];
    json_object *json = zb_json_parse (probe, n, perr, sizeof perr);
    //  A template that is only "null" (or only one placeholder) is JSON too:
    //  zb_json_parse refuses a bare null
    const char *s = probe;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t rest = n - (size_t) (s - probe);
    while (rest && (s [rest - 1] == ' ' || s [rest - 1] == '\t' || s [rest - 1] == '\n'
                    || s [rest - 1] == '\r'))
        rest--;
    self->json = json != NULL || (rest == 4 && memcmp (s, "null", 4) == 0);
    json_object_put (json);
    free (probe);
    return 0;
}

zb_transform_t *
zb_transform_new (const char *text, size_t len, char *err, size_t errlen)
{
    char perr [200];
    json_object *root = zb_json_parse (text, len, perr, sizeof perr);
    if (!root) {
        snprintf (err, errlen, "not valid JSON: %s", perr);
        zb_utf8_trim (err);
        return NULL;
    }
    zb_transform_t *self = (zb_transform_t *) calloc (1, sizeof (zb_transform_t));
    if (!self) {
        json_object_put (root);
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    int rc = -1;
    json_object *paths = NULL, *template_json = NULL;
    if (!json_object_is_type (root, json_type_object)) {
        s_fail (err, errlen, "transform",
                "must be an object {\"InputPathsMap\": {...}, \"InputTemplate\": \"...\"}");
        goto done;
    }
    json_object_object_foreach (root, key, value) {
        if (strcmp (key, "InputPathsMap") == 0)
            paths = value;
        else
        if (strcmp (key, "InputTemplate") == 0)
            template_json = value;
        else {
            char reason [200];
            size_t len = strlen (key);
            //  At most 64 bytes of it, never cut inside a UTF-8 sequence
            int cut = (int) zb_utf8_prefix (key, len < 64 ? len : 64);
            snprintf (reason, sizeof reason, "unknown key \"%.*s\" (allowed: InputPathsMap, InputTemplate)",
                      cut, key);
            for (char *p = reason; *p; p++)
                if ((unsigned char) *p < 0x20)
                    *p = '?';
            s_fail (err, errlen, "transform", reason);
            goto done;
        }
    }
    if (!template_json) {
        s_fail (err, errlen, "InputTemplate", "is required");
        goto done;
    }
    if (!json_object_is_type (template_json, json_type_string)) {
        s_fail (err, errlen, "InputTemplate", "must be a string");
        goto done;
    }
    size_t tlen = (size_t) json_object_get_string_len (template_json);
    if (tlen == 0 || tlen > ZB_TRANSFORM_MAX_TEMPLATE) {
        s_fail (err, errlen, "InputTemplate", "must be 1 to 8192 bytes");
        goto done;
    }
    if (memchr (json_object_get_string (template_json), 0, tlen)) {
        s_fail (err, errlen, "InputTemplate", "must not contain NUL characters");
        goto done;
    }
    self->template_text = strdup (json_object_get_string (template_json));
    self->vars = (var_t *) calloc (ZB_TRANSFORM_MAX_VARS + PREDEFINED, sizeof (var_t));
    if (!self->template_text || !self->vars) {
        snprintf (err, errlen, "out of memory");
        goto done;
    }
    if (paths && s_parse_paths (self, paths, err, errlen) != 0)
        goto done;
    rc = s_parse_template (self, err, errlen);
done:
    json_object_put (root);
    if (rc != 0)
        zb_transform_destroy (&self);
    return self;
}

void
zb_transform_destroy (zb_transform_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zb_transform_t *self = *self_p;
    for (size_t i = 0; self->vars && i < self->nvars; i++) {
        free (self->vars [i].name);
        for (size_t k = 0; k < self->vars [i].nkeys; k++)
            free (self->vars [i].keys [k]);
        free (self->vars [i].keys);
    }
    free (self->vars);
    free (self->parts);
    free (self->template_text);
    free (self->buf);
    free (self);
    *self_p = NULL;
}

bool
zb_transform_is_json (const zb_transform_t *self)
{
    return self->json;
}

//  --------------------------------------------------------------------------
//  Rendering

static int
s_put (zb_transform_t *self, const char *data, size_t len)
{
    if (self->size + len + 1 > self->cap) {
        size_t cap = self->cap ? self->cap : 1024;
        while (cap < self->size + len + 1)
            cap *= 2;
        char *buf = (char *) realloc (self->buf, cap);
        if (!buf)
            return -1;
        self->buf = buf;
        self->cap = cap;
    }
    memcpy (self->buf + self->size, data, len);
    self->size += len;
    self->buf [self->size] = 0;
    return 0;
}

//  Text as the inside of a JSON string.
static int
s_put_escaped (zb_transform_t *self, const char *s, size_t len)
{
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s [i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (s_put (self, s + run, i - run) != 0)
            return -1;
        char esc [8];
        int n = c == '"' ? snprintf (esc, sizeof esc, "\\\"")
              : c == '\\' ? snprintf (esc, sizeof esc, "\\\\")
              : c == '\n' ? snprintf (esc, sizeof esc, "\\n")
              : c == '\t' ? snprintf (esc, sizeof esc, "\\t")
              : c == '\r' ? snprintf (esc, sizeof esc, "\\r")
              : snprintf (esc, sizeof esc, "\\u%04x", c);
        if (s_put (self, esc, (size_t) n) != 0)
            return -1;
        run = i + 1;
    }
    return s_put (self, s + run, len - run);
}

//  The value at a path, NULL when the event has none there.
static const msgpack_object *
s_lookup (const var_t *var, const msgpack_object *event)
{
    const msgpack_object *at = event;
    for (size_t k = 0; at && k < var->nkeys; k++) {
        const char *key = var->keys [k];
        if (at->type == MSGPACK_OBJECT_MAP)
            at = zb_map_get (at, key);
        else
        if (at->type == MSGPACK_OBJECT_ARRAY && key [0] >= '0' && key [0] <= '9'
        &&  strspn (key, "0123456789") == strlen (key) && strlen (key) < 10) {
            unsigned long index = strtoul (key, NULL, 10);
            at = index < at->via.array.size ? &at->via.array.ptr [index] : NULL;
        }
        else
            at = NULL;
    }
    return at;
}

//  One placeholder's value into the text.
static int
s_put_value (zb_transform_t *self, const part_t *part, const msgpack_object *value,
             zb_str_t str, char *err, size_t errlen)
{
    //  A string value (or a predefined string): str; anything else: value
    if (!value && !str.ptr) {
        //  Missing: null outside a JSON string, nothing elsewhere
        return self->json && !part->in_string ? s_put (self, "null", 4) : 0;
    }
    if (value && value->type == MSGPACK_OBJECT_STR) {
        str.ptr = value->via.str.ptr;
        str.len = value->via.str.size;
    }
    if (str.ptr) {
        if (!self->json)
            return s_put (self, str.ptr, str.len);
        if (part->in_string)
            return s_put_escaped (self, str.ptr, str.len);
        if (s_put (self, "\"", 1) || s_put_escaped (self, str.ptr, str.len) || s_put (self, "\"", 1))
            return -1;
        return 0;
    }
    char *text = zb_json_text_from_msgpack (value, err, errlen);
    if (!text)
        return -1;
    int rc = self->json && part->in_string ? s_put_escaped (self, text, strlen (text))
                                           : s_put (self, text, strlen (text));
    free (text);
    return rc;
}

int
zb_transform_render (zb_transform_t *self, const msgpack_object *event,
                     const zb_transform_context_t *context, msgpack_packer *pk,
                     char *err, size_t errlen)
{
    self->size = 0;
    if (s_put (self, "", 0) != 0)
        goto oom;
    for (size_t p = 0; p < self->nparts; p++) {
        const part_t *part = &self->parts [p];
        if (part->var < 0) {
            if (s_put (self, part->text, part->len) != 0)
                goto oom;
            continue;
        }
        const var_t *var = &self->vars [part->var];
        const msgpack_object *value = NULL;
        zb_str_t str = { NULL, 0 };
        switch (var->kind) {
            case VAR_PATH:              value = s_lookup (var, event); break;
            case VAR_EVENT:             value = event; break;
            case VAR_RULE_NAME:         str = context->rule_name; break;
            case VAR_RULE_ARN:          str = context->rule_arn; break;
            case VAR_INGESTION_TIME:    str = context->ingestion_time; break;
        }
        err [0] = 0;
        if (s_put_value (self, part, value, str, err, errlen) != 0) {
            if (!err [0])
                goto oom;
            return -1;
        }
    }
    if (!self->json) {
        msgpack_pack_str (pk, self->size);
        msgpack_pack_str_body (pk, self->buf, self->size);
        return 0;
    }
    const char *s = self->buf;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t rest = self->size - (size_t) (s - self->buf);
    while (rest && (s [rest - 1] == ' ' || s [rest - 1] == '\t' || s [rest - 1] == '\n'
                    || s [rest - 1] == '\r'))
        rest--;
    if (rest == 4 && memcmp (s, "null", 4) == 0) {
        msgpack_pack_nil (pk);
        return 0;
    }
    char perr [200];
    json_object *json = zb_json_parse (self->buf, self->size, perr, sizeof perr);
    if (!json) {
        snprintf (err, errlen, "the output is not JSON: %s", perr);
        zb_utf8_trim (err);
        return -1;
    }
    int rc = zb_json_to_msgpack (json, pk, err, errlen);
    json_object_put (json);
    return rc;
oom:
    snprintf (err, errlen, "out of memory");
    return -1;
}

/*  transform.c - EventBridge input transformers (transform.h).

    Compiling splits the template into parts: literal text, and placeholders,
    each marked with whether it sits inside a JSON string (the template is
    scanned as JSON text: '"' opens and closes a string, '\\' escapes inside
    one).

    A JSON template is then compiled once more, into a msgpack skeleton: ops
    that are either literal msgpack bytes (packed once, here), a value slot
    (a placeholder outside a string: the value packed as msgpack, nil when
    missing), or a string slot (a string with placeholders: literal pieces
    and the values' text, concatenated at render time). To find that
    structure without a JSON parser of our own, the template is parsed once
    with json-c with sentinels in place of the placeholders: a string made of
    the one code point U+100000+k for placeholder k outside a string, the
    code point U+F0000+k for one inside a string (both private use). When
    that is not safe (the template spells such code points itself, a
    placeholder sits in an object key, a literal escape runs into a
    placeholder as in "\\u00<x>", nesting too deep, ...) the transformer keeps
    the reference path below.

    Rendering a skeleton packs with msgpack_packer directly; a string
    template writes its text and packs it as one string. Neither touches
    JSON text or json-c: a value's text (a number inside a string, an object
    in a string template) is written here the way json-c would print it.

    The reference path is the original renderer, kept for the transformers
    the skeleton cannot take, for the exact error messages (when the fast
    path finds a value it cannot render, the reference renders again and
    reports), and for the tests and fuzzer that compare the two byte for
    byte: the parts written as JSON text into a buffer, parsed back with
    json-c (via codec.c) and packed. */

#include <json-c/json.h>
#include <math.h>
#include <stdint.h>
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
    size_t *lens;                       //  their lengths
    long *index;                        //  as an array index (decimal, < 10 digits), or -1
    size_t nkeys;
    //  The value in the render under way (when gen is the transformer's)
    uint64_t gen;
    const msgpack_object *value;
    zb_str_t str;
} var_t;

typedef struct {
    const char *text;                   //  literal: into the template copy
    size_t len;
    int var;                            //  -1: literal; else index into vars
    bool in_string;                     //  placeholder inside a JSON string
} part_t;

//  A growing byte buffer; oom is set (and stays set) when it cannot grow
typedef struct {
    char *data;
    size_t size, cap;
    bool oom;
} buf_t;

//  The skeleton of a JSON template
typedef enum {
    OP_BYTES,                           //  literal msgpack: lit [off, off + len)
    OP_VALUE,                           //  a placeholder outside a string
    OP_STRING,                          //  a string with placeholders: pieces [off, off + len)
} op_kind_t;

typedef struct {
    op_kind_t kind;
    size_t off, len;
    int var;                            //  OP_VALUE: index into vars
    int level;                          //  OP_VALUE: nesting level of the value (root = 1)
} op_t;

typedef struct {
    size_t off, len;                    //  literal text: lit [off, off + len)
    int var;                            //  -1: literal; else index into vars
} piece_t;

struct zb_transform_t {
    char *template_text;
    var_t *vars;
    size_t nvars;
    part_t *parts;
    size_t nparts;
    bool json;
    //  The skeleton (JSON templates): empty when the reference path renders
    bool compiled;
    op_t *ops;
    size_t nops;
    piece_t *pieces;
    size_t npieces;
    buf_t lit;                          //  literal msgpack bytes and string pieces
    size_t fallbacks;                   //  fast renders the reference path redid
    uint64_t gen;                       //  renders so far: the values' cache
    //  Render scratch
    buf_t text;                         //  output text (string template, reference path)
    buf_t piece;                        //  one string slot's text
    buf_t out;                          //  the skeleton's msgpack
    uint32_t *seen;                     //  map keys seen (duplicate check)
    size_t seen_cap;
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
    var->lens = (size_t *) calloc (ZB_TRANSFORM_MAX_PATH, sizeof (size_t));
    var->index = (long *) calloc (ZB_TRANSFORM_MAX_PATH, sizeof (long));
    if (!var->keys || !var->lens || !var->index) {
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
        const char *key = var->keys [var->nkeys] = strndup (path + start, end - start);
        if (!key) {
            snprintf (err, errlen, "out of memory");
            return -1;
        }
        var->lens [var->nkeys] = end - start;
        var->index [var->nkeys] = key [0] >= '0' && key [0] <= '9'
                                  && strspn (key, "0123456789") == end - start && end - start < 10
                                ? (long) strtoul (key, NULL, 10) : -1;
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

static int s_compile_skeleton (zb_transform_t *self);

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
    if (rc == 0 && self->json && s_compile_skeleton (self) != 0)
        rc = s_fail (err, errlen, "InputTemplate", "out of memory");
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
        free (self->vars [i].lens);
        free (self->vars [i].index);
    }
    free (self->vars);
    free (self->parts);
    free (self->template_text);
    free (self->ops);
    free (self->pieces);
    free (self->lit.data);
    free (self->text.data);
    free (self->piece.data);
    free (self->out.data);
    free (self->seen);
    free (self);
    *self_p = NULL;
}

bool
zb_transform_is_json (const zb_transform_t *self)
{
    return self->json;
}

bool
zb_transform_compiled (const zb_transform_t *self)
{
    return !self->json || self->compiled;
}

size_t
zb_transform_fallbacks (const zb_transform_t *self)
{
    return self->fallbacks;
}

//  --------------------------------------------------------------------------
//  Buffers

//  Room for len more bytes and a NUL
static int
s_buf_grow (buf_t *buf, size_t len)
{
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < buf->size + len + 1)
        cap *= 2;
    char *grown = (char *) realloc (buf->data, cap);
    if (!grown) {
        buf->oom = true;
        return -1;
    }
    buf->data = grown;
    buf->cap = cap;
    return 0;
}

static inline int
s_buf_put (buf_t *buf, const void *data, size_t len)
{
    if (buf->size + len + 1 > buf->cap && s_buf_grow (buf, len))
        return -1;
    if (len)
        memcpy (buf->data + buf->size, data, len);
    buf->size += len;
    buf->data [buf->size] = 0;
    return 0;
}

//  A msgpack_packer's write callback into a buf_t
static int
s_buf_write (void *data, const char *bytes, size_t len)
{
    return s_buf_put ((buf_t *) data, bytes, len);
}

//  --------------------------------------------------------------------------
//  The skeleton compiler

//  The code points that stand for placeholder k in the sentinel text
#define MARK_IN     0xF0000u            //  + k: inside a string
#define MARK_OUT    0x100000u           //  + k: a string of its own, outside strings
#define MARK_MAX    0xFFFDu             //  placeholders (k < this)

static size_t
s_mark_put (char *out, uint32_t cp)
{
    out [0] = (char) (0xF0 | (cp >> 18));
    out [1] = (char) (0x80 | ((cp >> 12) & 0x3F));
    out [2] = (char) (0x80 | ((cp >> 6) & 0x3F));
    out [3] = (char) (0x80 | (cp & 0x3F));
    return 4;
}

//  The code point of a 4-byte UTF-8 sequence at s (valid UTF-8: json-c checked)
//  when it is a sentinel, else 0
static uint32_t
s_mark_at (const char *s, size_t left)
{
    const unsigned char *u = (const unsigned char *) s;
    if (left < 4 || (u [0] != 0xF3 && u [0] != 0xF4))
        return 0;
    uint32_t cp = ((uint32_t) (u [0] & 0x07) << 18) | ((uint32_t) (u [1] & 0x3F) << 12)
                | ((uint32_t) (u [2] & 0x3F) << 6) | (uint32_t) (u [3] & 0x3F);
    return cp >= MARK_IN ? cp : 0;
}

typedef struct {
    zb_transform_t *self;
    int *part_of;                       //  placeholder k -> its part
    size_t nmarks;
    unsigned char *seen;                //  per placeholder: found in the tree
    msgpack_packer pk;                  //  into self->lit
    size_t bytes_from;                  //  start of the pending OP_BYTES in lit
} compile_t;

static int
s_op_add (zb_transform_t *self, op_t op)
{
    op_t *ops = (op_t *) realloc (self->ops, (self->nops + 1) * sizeof (op_t));
    if (!ops)
        return -1;
    self->ops = ops;
    self->ops [self->nops++] = op;
    return 0;
}

//  Ends the pending literal bytes as an op
static int
s_flush_bytes (compile_t *c)
{
    zb_transform_t *self = c->self;
    if (self->lit.size > c->bytes_from
    &&  s_op_add (self, (op_t) { OP_BYTES, c->bytes_from, self->lit.size - c->bytes_from, -1, 0 }))
        return -1;
    c->bytes_from = self->lit.size;
    return 0;
}

static int
s_piece_add (zb_transform_t *self, piece_t piece)
{
    piece_t *pieces = (piece_t *) realloc (self->pieces, (self->npieces + 1) * sizeof (piece_t));
    if (!pieces)
        return -1;
    self->pieces = pieces;
    self->pieces [self->npieces++] = piece;
    return 0;
}

//  Marks placeholder k found, as the kind of sentinel it was; -1 when that
//  does not fit (found twice, or not the kind its part is)
static int
s_mark_found (compile_t *c, uint32_t cp)
{
    bool in = cp < MARK_OUT;
    uint32_t k = cp - (in ? MARK_IN : MARK_OUT);
    if (k >= c->nmarks || c->seen [k])
        return -1;
    if (c->self->parts [c->part_of [k]].in_string != in)
        return -1;
    c->seen [k] = 1;
    return c->part_of [k];
}

//  A string of the tree: literal, value slot or string slot
static int
s_compile_string (compile_t *c, json_object *json, int level)
{
    zb_transform_t *self = c->self;
    const char *s = json_object_get_string (json);
    size_t len = (size_t) json_object_get_string_len (json);
    //  Exactly one sentinel outside strings: a value slot
    uint32_t cp = s_mark_at (s, len);
    if (len == 4 && cp >= MARK_OUT) {
        int part = s_mark_found (c, cp);
        if (part < 0 || s_flush_bytes (c))
            return -1;
        if (s_op_add (self, (op_t) { OP_VALUE, 0, 0, self->parts [part].var, level }))
            return -1;
        c->bytes_from = self->lit.size;
        return 0;
    }
    bool marks = false;
    for (size_t i = 0; i + 4 <= len && !marks; i++)
        marks = s_mark_at (s + i, len - i) != 0;
    char err [128];
    if (!marks)
        return zb_json_to_msgpack (json, &c->pk, err, sizeof err);
    //  A string slot: its pieces, the literal text kept in lit
    if (s_flush_bytes (c))
        return -1;
    size_t first = self->npieces;
    size_t run = 0;
    for (size_t i = 0; i < len; ) {
        cp = s_mark_at (s + i, len - i);
        if (!cp) {
            i++;
            continue;
        }
        if (cp >= MARK_OUT)
            return -1;          //  an outside-string sentinel inside a string
        int part = s_mark_found (c, cp);
        if (part < 0)
            return -1;
        if (i > run) {
            if (s_piece_add (self, (piece_t) { self->lit.size, i - run, -1 })
            ||  s_buf_put (&self->lit, s + run, i - run))
                return -1;
        }
        if (s_piece_add (self, (piece_t) { 0, 0, self->parts [part].var }))
            return -1;
        i += 4;
        run = i;
    }
    if (len > run) {
        if (s_piece_add (self, (piece_t) { self->lit.size, len - run, -1 })
        ||  s_buf_put (&self->lit, s + run, len - run))
            return -1;
    }
    if (s_op_add (self, (op_t) { OP_STRING, first, self->npieces - first, -1, level }))
        return -1;
    c->bytes_from = self->lit.size;
    return 0;
}

static int
s_compile_node (compile_t *c, json_object *json, int level)
{
    switch (json_object_get_type (json)) {
        case json_type_string:
            return s_compile_string (c, json, level);
        case json_type_array: {
            if (level > ZB_MAX_DEPTH)
                return -1;      //  the reference path refuses it at every render
            size_t n = json_object_array_length (json);
            msgpack_pack_array (&c->pk, n);
            for (size_t i = 0; i < n; i++)
                if (s_compile_node (c, json_object_array_get_idx (json, i), level + 1))
                    return -1;
            return 0;
        }
        case json_type_object: {
            if (level > ZB_MAX_DEPTH)
                return -1;
            msgpack_pack_map (&c->pk, (size_t) json_object_object_length (json));
            json_object_object_foreach (json, key, value) {
                size_t keylen = strlen (key);
                //  A placeholder in a key: its value decides the key, and
                //  duplicate keys may appear at render time: reference path
                for (size_t i = 0; i + 4 <= keylen; i++)
                    if (s_mark_at (key + i, keylen - i))
                        return -1;
                msgpack_pack_str (&c->pk, keylen);
                msgpack_pack_str_body (&c->pk, key, keylen);
                if (s_compile_node (c, value, level + 1))
                    return -1;
            }
            return 0;
        }
        default: {
            //  null, booleans, numbers: packed as the reference path packs
            //  the same literal (json-c parsed it the same way)
            char err [128];
            return zb_json_to_msgpack (json, &c->pk, err, sizeof err);
        }
    }
}

//  Whether the template text spells a sentinel code point itself: raw, or as
//  a \u escape of a high surrogate of planes 15-16 (\uDB80-\uDBFF; any \uDB..
//  is taken as one, which is only too careful)
static bool
s_spells_marks (const char *t, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char u = (unsigned char) t [i];
        if (u == 0xF3 && i + 1 < len && (unsigned char) t [i + 1] >= 0xB0)
            return true;
        if (u == 0xF4)
            return true;
        if (u == '\\' && i + 3 < len && t [i + 1] == 'u' && (t [i + 2] | 0x20) == 'd'
        &&  (t [i + 3] | 0x20) == 'b')
            return true;
    }
    return false;
}

//  Compiles a JSON template's skeleton; leaves self->compiled false (the
//  reference path renders) when it cannot be done safely. -1 only when out
//  of memory.
static int
s_compile_skeleton (zb_transform_t *self)
{
    const char *t = self->template_text;
    size_t tlen = strlen (t);
    if (s_spells_marks (t, tlen))
        return 0;
    size_t nmarks = 0;
    for (size_t p = 0; p < self->nparts; p++)
        nmarks += self->parts [p].var >= 0;
    if (nmarks >= MARK_MAX)
        return 0;
    //  The sentinel text: at most 6 bytes for a placeholder, which takes 3
    char *text = (char *) malloc (tlen * 2 + 8);
    compile_t c = { .self = self, .nmarks = nmarks };
    c.part_of = (int *) calloc (nmarks + 1, sizeof (int));
    c.seen = (unsigned char *) calloc (nmarks + 1, 1);
    int rc = -1;
    json_object *json = NULL;
    if (!text || !c.part_of || !c.seen)
        goto done;
    size_t n = 0, k = 0;
    for (size_t p = 0; p < self->nparts; p++) {
        const part_t *part = &self->parts [p];
        if (part->var < 0) {
            memcpy (text + n, part->text, part->len);
            n += part->len;
            continue;
        }
        c.part_of [k] = (int) p;
        if (part->in_string)
            n += s_mark_put (text + n, MARK_IN + (uint32_t) k);
        else {
            text [n++] = '"';
            n += s_mark_put (text + n, MARK_OUT + (uint32_t) k);
            text [n++] = '"';
        }
        k++;
    }
    text [n] = 0;
    msgpack_packer_init (&c.pk, &self->lit, s_buf_write);
    char perr [128];
    json = zb_json_parse (text, n, perr, sizeof perr);
    if (!json) {
        //  The template "null" (json-c's null is NULL: zb_json_parse refuses it)
        const char *s = text;
        size_t rest = n;
        while (rest && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) {
            s++;
            rest--;
        }
        while (rest && (s [rest - 1] == ' ' || s [rest - 1] == '\t' || s [rest - 1] == '\n'
                        || s [rest - 1] == '\r'))
            rest--;
        if (rest == 4 && memcmp (s, "null", 4) == 0) {
            msgpack_pack_nil (&c.pk);
            if (s_flush_bytes (&c) == 0 && !self->lit.oom)
                self->compiled = true;
        }
        rc = self->lit.oom ? -1 : 0;
        goto done;
    }
    bool ok = s_compile_node (&c, json, 1) == 0 && s_flush_bytes (&c) == 0;
    for (size_t m = 0; ok && m < nmarks; m++)
        ok = c.seen [m];            //  every placeholder found, in a place it can be
    if (self->lit.oom)
        goto done;
    self->compiled = ok;
    rc = 0;
done:
    if (!self->compiled) {
        free (self->ops);
        free (self->pieces);
        self->ops = NULL;
        self->pieces = NULL;
        self->nops = self->npieces = 0;
        self->lit.size = 0;
    }
    json_object_put (json);
    free (text);
    free (c.part_of);
    free (c.seen);
    return rc;
}

//  --------------------------------------------------------------------------
//  Values

//  The value at a path, NULL when the event has none there. A map's first
//  entry with the key (as zb_map_get), an array's item at a decimal key.
static const msgpack_object *
s_lookup (const var_t *var, const msgpack_object *event)
{
    const msgpack_object *at = event;
    for (size_t k = 0; at && k < var->nkeys; k++) {
        if (at->type == MSGPACK_OBJECT_MAP) {
            const msgpack_object_kv *kv = at->via.map.ptr;
            uint32_t n = at->via.map.size;
            const char *key = var->keys [k];
            size_t len = var->lens [k];
            at = NULL;
            for (uint32_t i = 0; i < n; i++)
                if (kv [i].key.type == MSGPACK_OBJECT_STR && kv [i].key.via.str.size == len
                &&  kv [i].key.via.str.ptr [0] == key [0]
                &&  memcmp (kv [i].key.via.str.ptr, key, len) == 0) {
                    at = &kv [i].val;
                    break;
                }
        }
        else
        if (at->type == MSGPACK_OBJECT_ARRAY && var->index [k] >= 0)
            at = (unsigned long) var->index [k] < at->via.array.size
               ? &at->via.array.ptr [var->index [k]] : NULL;
        else
            at = NULL;
    }
    return at;
}

//  A placeholder's value: a msgpack value, a string (the predefined ones), or
//  neither (a missing path)
static const msgpack_object *
s_value_of (const var_t *var, const msgpack_object *event, const zb_transform_context_t *context,
            zb_str_t *str)
{
    str->ptr = NULL;
    str->len = 0;
    const msgpack_object *value = NULL;
    switch (var->kind) {
        case VAR_PATH:              value = s_lookup (var, event); break;
        case VAR_EVENT:             value = event; break;
        case VAR_RULE_NAME:         *str = context->rule_name; break;
        case VAR_RULE_ARN:          *str = context->rule_arn; break;
        case VAR_INGESTION_TIME:    *str = context->ingestion_time; break;
    }
    //  As the reference path: a string with a NULL pointer (msgpack-c may
    //  give one to an empty string) is written as the value ""
    if (value && value->type == MSGPACK_OBJECT_STR && value->via.str.ptr) {
        str->ptr = value->via.str.ptr;
        str->len = value->via.str.size;
        value = NULL;
    }
    return value;
}

//  The same, looked up once per render (self->gen)
static inline const msgpack_object *
s_value (zb_transform_t *self, int index, const msgpack_object *event,
         const zb_transform_context_t *context, zb_str_t *str)
{
    var_t *var = &self->vars [index];
    if (var->gen != self->gen) {
        var->value = s_value_of (var, event, context, &var->str);
        var->gen = self->gen;
    }
    *str = var->str;
    return var->value;
}

//  A map's keys are what json-c can hold: strings of UTF-8 without NUL, no
//  key twice. 0 or -1.
static int
s_keys_ok (zb_transform_t *self, const msgpack_object *map)
{
    uint32_t n = map->via.map.size;
    const msgpack_object_kv *kv = map->via.map.ptr;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *key = &kv [i].key;
        if (key->type != MSGPACK_OBJECT_STR
        ||  !zb_utf8_valid (key->via.str.ptr, key->via.str.size)
        ||  (key->via.str.size && memchr (key->via.str.ptr, 0, key->via.str.size)))
            return -1;
    }
    if (n <= 16) {
        for (uint32_t i = 1; i < n; i++)
            for (uint32_t j = 0; j < i; j++)
                if (kv [i].key.via.str.size == kv [j].key.via.str.size
                &&  (kv [i].key.via.str.size == 0
                     || memcmp (kv [i].key.via.str.ptr, kv [j].key.via.str.ptr,
                                kv [i].key.via.str.size) == 0))
                    return -1;
        return 0;
    }
    //  Larger maps: an open-addressing set of key indexes (+1; 0 is empty)
    size_t cap = 64;
    while (cap < (size_t) n * 2)
        cap *= 2;
    if (cap > self->seen_cap) {
        uint32_t *seen = (uint32_t *) realloc (self->seen, cap * sizeof (uint32_t));
        if (!seen)
            return -1;
        self->seen = seen;
        self->seen_cap = cap;
    }
    memset (self->seen, 0, cap * sizeof (uint32_t));
    for (uint32_t i = 0; i < n; i++) {
        const char *p = kv [i].key.via.str.ptr;
        uint32_t len = kv [i].key.via.str.size;
        uint64_t hash = 14695981039346656037ULL;
        for (uint32_t b = 0; b < len; b++)
            hash = (hash ^ (unsigned char) p [b]) * 1099511628211ULL;
        size_t slot = (size_t) hash & (cap - 1);
        while (self->seen [slot]) {
            const msgpack_object *other = &kv [self->seen [slot] - 1].key;
            if (other->via.str.size == len && (len == 0 || memcmp (other->via.str.ptr, p, len) == 0))
                return -1;
            slot = (slot + 1) & (cap - 1);
        }
        self->seen [slot] = i + 1;
    }
    return 0;
}

//  Doubles as codec.c prints them (and json-c then keeps that text): the
//  shortest of %.15g, %.16g, %.17g that reads back as the same double, ".0"
//  appended when it would look like an integer; a float32 likewise with
//  %.6g to %.9g read back as a float.

//  The common case without printf: a double of at most 15 significant
//  digits, 1e-3 <= |value| < 1e14, is n / 10^k for the least k where that
//  division gives the double back (the division is correctly rounded, as
//  strtod is, and n, 10^k are exact). %.15g prints exactly those digits
//  (the double is within half an ulp of n / 10^k, far less than half a unit
//  of the 15th digit), in fixed notation (exponent -3 to 13), without
//  trailing zeros; and reads back as the same double, so precision 15 is the
//  one chosen. Returns 0 when the value is not such a double.
static size_t
s_format_short (double value, char *out)
{
    static const double s_pow10 [] = {
        1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
        1e16, 1e17
    };
    double magnitude = value < 0 ? -value : value;
    if (!(magnitude >= 1e-3 && magnitude < 1e14))
        return 0;
    for (int k = 0; k <= 17; k++) {
        double scaled = magnitude * s_pow10 [k];
        if (scaled >= 1e15)
            return 0;
        uint64_t n = (uint64_t) (scaled + 0.5);
        if ((double) n / s_pow10 [k] != magnitude)
            continue;
        if (n >= 1000000000000000ULL || (k > 0 && n % 10 == 0))
            return 0;       //  16 digits: not for %.15g; a trailing zero: not the least k
        char digits [24];
        size_t nd = zb_format_u64 (n, digits);
        size_t len = 0;
        if (value < 0)
            out [len++] = '-';
        if (k == 0) {
            memcpy (out + len, digits, nd);
            len += nd;
            memcpy (out + len, ".0", 3);
            return len + 2;
        }
        if (nd > (size_t) k) {
            memcpy (out + len, digits, nd - (size_t) k);
            len += nd - (size_t) k;
            out [len++] = '.';
            memcpy (out + len, digits + nd - (size_t) k, (size_t) k);
            len += (size_t) k;
        }
        else {
            out [len++] = '0';
            out [len++] = '.';
            for (size_t z = nd; z < (size_t) k; z++)
                out [len++] = '0';
            memcpy (out + len, digits, nd);
            len += nd;
        }
        out [len] = 0;
        return len;
    }
    return 0;
}

static size_t
s_format_double (double value, bool float32, char *out, size_t size)
{
    if (!float32) {
        size_t len = s_format_short (value, out);
        if (len)
            return len;
    }
    for (int precision = float32 ? 6 : 15; precision <= (float32 ? 9 : 17); precision++) {
        snprintf (out, size, "%.*g", precision, value);
        if (float32 ? strtof (out, NULL) == (float) value : strtod (out, NULL) == value)
            break;
    }
    if (!strpbrk (out, ".eE"))
        strncat (out, ".0", size - strlen (out) - 1);
    return strlen (out);
}

//  Packs a value as the reference path does: its JSON text parsed back by
//  json-c and packed. Differs from the value itself in floats (a float32
//  becomes the double of its shortest text) and in what it refuses (-1):
//  what JSON cannot hold (bin, ext, NaN, Infinity, invalid UTF-8, non-string,
//  NUL-holding or repeated keys) and containers deeper than ZB_MAX_DEPTH
//  (level: of the value in the whole output, root = 1).
static int
s_pack_value (zb_transform_t *self, const msgpack_object *obj, int level, msgpack_packer *pk)
{
    switch (obj->type) {
        case MSGPACK_OBJECT_NIL:
            return msgpack_pack_nil (pk);
        case MSGPACK_OBJECT_BOOLEAN:
            return obj->via.boolean ? msgpack_pack_true (pk) : msgpack_pack_false (pk);
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            return msgpack_pack_uint64 (pk, obj->via.u64);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            return msgpack_pack_int64 (pk, obj->via.i64);
        case MSGPACK_OBJECT_FLOAT64:
            if (isnan (obj->via.f64) || isinf (obj->via.f64))
                return -1;
            return msgpack_pack_double (pk, obj->via.f64);
        case MSGPACK_OBJECT_FLOAT32: {
            if (isnan (obj->via.f64) || isinf (obj->via.f64))
                return -1;
            char text [40];
            s_format_double ((double) (float) obj->via.f64, true, text, sizeof text);
            return msgpack_pack_double (pk, strtod (text, NULL));
        }
        case MSGPACK_OBJECT_STR:
            if (!zb_utf8_valid (obj->via.str.ptr, obj->via.str.size))
                return -1;
            if (msgpack_pack_str (pk, obj->via.str.size))
                return -1;
            return msgpack_pack_str_body (pk, obj->via.str.ptr, obj->via.str.size);
        case MSGPACK_OBJECT_ARRAY:
            if (level > ZB_MAX_DEPTH || msgpack_pack_array (pk, obj->via.array.size))
                return -1;
            for (uint32_t i = 0; i < obj->via.array.size; i++)
                if (s_pack_value (self, &obj->via.array.ptr [i], level + 1, pk))
                    return -1;
            return 0;
        case MSGPACK_OBJECT_MAP:
            if (level > ZB_MAX_DEPTH || s_keys_ok (self, obj)
            ||  msgpack_pack_map (pk, obj->via.map.size))
                return -1;
            for (uint32_t i = 0; i < obj->via.map.size; i++) {
                const msgpack_object *key = &obj->via.map.ptr [i].key;
                if (msgpack_pack_str (pk, key->via.str.size)
                ||  msgpack_pack_str_body (pk, key->via.str.ptr, key->via.str.size)
                ||  s_pack_value (self, &obj->via.map.ptr [i].val, level + 1, pk))
                    return -1;
            }
            return 0;
        default:
            return -1;      //  bin, ext
    }
}

//  A string the way json-c prints it: ", \ and \b \f \n \r \t escaped, other
//  control characters as \u00xx, '/' as is (JSON_C_TO_STRING_NOSLASHESCAPE).
static int
s_text_string (buf_t *buf, const char *s, size_t len)
{
    if (len == 0)
        return s_buf_put (buf, "\"\"", 2);     //  s may be NULL (msgpack-c's empty string)
    if (s_buf_put (buf, "\"", 1))
        return -1;
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s [i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (s_buf_put (buf, s + run, i - run))
            return -1;
        char esc [8] = { '\\', 0 };
        size_t n = 2;
        switch (c) {
            case '"':   esc [1] = '"'; break;
            case '\\':  esc [1] = '\\'; break;
            case '\b':  esc [1] = 'b'; break;
            case '\f':  esc [1] = 'f'; break;
            case '\n':  esc [1] = 'n'; break;
            case '\r':  esc [1] = 'r'; break;
            case '\t':  esc [1] = 't'; break;
            default:
                memcpy (esc + 1, "u00", 3);
                esc [4] = "0123456789abcdef" [c >> 4];
                esc [5] = "0123456789abcdef" [c & 15];
                n = 6;
        }
        if (s_buf_put (buf, esc, n))
            return -1;
        run = i + 1;
    }
    if (s_buf_put (buf, s + run, len - run))
        return -1;
    return s_buf_put (buf, "\"", 1);
}

//  A value's JSON text as zb_json_text_from_msgpack writes it (json-c,
//  compact), appended to buf; -1 where that refuses the value (what JSON
//  cannot hold, containers deeper than ZB_MAX_DEPTH: depth, root = 1).
static int
s_text_value (zb_transform_t *self, buf_t *buf, const msgpack_object *obj, int depth)
{
    char text [40];
    size_t n;
    switch (obj->type) {
        case MSGPACK_OBJECT_NIL:
            return s_buf_put (buf, "null", 4);
        case MSGPACK_OBJECT_BOOLEAN:
            return obj->via.boolean ? s_buf_put (buf, "true", 4) : s_buf_put (buf, "false", 5);
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            n = zb_format_u64 (obj->via.u64, text);
            return s_buf_put (buf, text, n);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            text [0] = '-';
            n = zb_format_u64 (obj->via.i64 < 0 ? (uint64_t) 0 - (uint64_t) obj->via.i64
                                               : (uint64_t) obj->via.i64, text + 1);
            if (obj->via.i64 >= 0)
                return s_buf_put (buf, text + 1, n);
            return s_buf_put (buf, text, n + 1);
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            if (isnan (obj->via.f64) || isinf (obj->via.f64))
                return -1;
            n = obj->type == MSGPACK_OBJECT_FLOAT32
              ? s_format_double ((double) (float) obj->via.f64, true, text, sizeof text)
              : s_format_double (obj->via.f64, false, text, sizeof text);
            return s_buf_put (buf, text, n);
        case MSGPACK_OBJECT_STR:
            if (!zb_utf8_valid (obj->via.str.ptr, obj->via.str.size))
                return -1;
            return s_text_string (buf, obj->via.str.ptr, obj->via.str.size);
        case MSGPACK_OBJECT_ARRAY:
            if (depth > ZB_MAX_DEPTH || s_buf_put (buf, "[", 1))
                return -1;
            for (uint32_t i = 0; i < obj->via.array.size; i++)
                if ((i && s_buf_put (buf, ",", 1))
                ||  s_text_value (self, buf, &obj->via.array.ptr [i], depth + 1))
                    return -1;
            return s_buf_put (buf, "]", 1);
        case MSGPACK_OBJECT_MAP:
            if (depth > ZB_MAX_DEPTH || s_keys_ok (self, obj) || s_buf_put (buf, "{", 1))
                return -1;
            for (uint32_t i = 0; i < obj->via.map.size; i++) {
                const msgpack_object *key = &obj->via.map.ptr [i].key;
                if ((i && s_buf_put (buf, ",", 1))
                ||  s_text_string (buf, key->via.str.ptr, key->via.str.size)
                ||  s_buf_put (buf, ":", 1)
                ||  s_text_value (self, buf, &obj->via.map.ptr [i].val, depth + 1))
                    return -1;
            }
            return s_buf_put (buf, "}", 1);
        default:
            return -1;
    }
}

//  --------------------------------------------------------------------------
//  Rendering: the fast paths. -1 when the value cannot be rendered (or out of
//  memory): the reference path then renders, and says why.

//  A string template: the text, packed as one string
static int
s_render_text (zb_transform_t *self, const msgpack_object *event,
               const zb_transform_context_t *context, msgpack_packer *pk)
{
    buf_t *text = &self->text;
    text->size = 0;
    for (size_t p = 0; p < self->nparts; p++) {
        const part_t *part = &self->parts [p];
        if (part->var < 0) {
            if (s_buf_put (text, part->text, part->len))
                return -1;
            continue;
        }
        zb_str_t str;
        const msgpack_object *value = s_value (self, part->var, event, context, &str);
        if (str.ptr ? s_buf_put (text, str.ptr, str.len)
                    : value && s_text_value (self, text, value, 1))
            return -1;
    }
    msgpack_pack_str (pk, text->size);
    msgpack_pack_str_body (pk, text->data ? text->data : "", text->size);
    return 0;
}

//  A JSON template: the skeleton, packed into self->out, then to pk at once
static int
s_render_skeleton (zb_transform_t *self, const msgpack_object *event,
                   const zb_transform_context_t *context, msgpack_packer *pk)
{
    buf_t *out = &self->out;
    out->size = 0;
    out->oom = false;
    msgpack_packer opk;
    msgpack_packer_init (&opk, out, s_buf_write);
    for (size_t o = 0; o < self->nops; o++) {
        const op_t *op = &self->ops [o];
        if (op->kind == OP_BYTES) {
            if (s_buf_put (out, self->lit.data + op->off, op->len))
                return -1;
            continue;
        }
        if (op->kind == OP_VALUE) {
            zb_str_t str;
            const msgpack_object *value = s_value (self, op->var, event, context, &str);
            if (str.ptr) {
                if (!zb_utf8_valid (str.ptr, str.len)
                ||  msgpack_pack_str (&opk, str.len) || msgpack_pack_str_body (&opk, str.ptr, str.len))
                    return -1;
            }
            else
            if (!value) {
                if (msgpack_pack_nil (&opk))
                    return -1;
            }
            else
            if (s_pack_value (self, value, op->level, &opk))
                return -1;
            continue;
        }
        //  OP_STRING: the pieces' text, a string value without its quotes
        buf_t *piece = &self->piece;
        piece->size = 0;
        for (size_t p = op->off; p < op->off + op->len; p++) {
            const piece_t *pc = &self->pieces [p];
            if (pc->var < 0) {
                if (s_buf_put (piece, self->lit.data + pc->off, pc->len))
                    return -1;
                continue;
            }
            zb_str_t str;
            const msgpack_object *value = s_value (self, pc->var, event, context, &str);
            if (str.ptr) {
                if (!zb_utf8_valid (str.ptr, str.len) || s_buf_put (piece, str.ptr, str.len))
                    return -1;
            }
            else
            if (value && s_text_value (self, piece, value, 1))
                return -1;
        }
        if (msgpack_pack_str (&opk, piece->size)
        ||  msgpack_pack_str_body (&opk, piece->data ? piece->data : "", piece->size))
            return -1;
    }
    if (out->oom)
        return -1;
    return pk->callback (pk->data, out->data, out->size);
}
//  Rendering

static int
s_put (zb_transform_t *self, const char *data, size_t len)
{
    return s_buf_put (&self->text, data, len);
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
zb_transform_render_reference (zb_transform_t *self, const msgpack_object *event,
                               const zb_transform_context_t *context, msgpack_packer *pk,
                               char *err, size_t errlen)
{
    self->text.size = 0;
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
        msgpack_pack_str (pk, self->text.size);
        msgpack_pack_str_body (pk, self->text.data, self->text.size);
        return 0;
    }
    const char *s = self->text.data;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t rest = self->text.size - (size_t) (s - self->text.data);
    while (rest && (s [rest - 1] == ' ' || s [rest - 1] == '\t' || s [rest - 1] == '\n'
                    || s [rest - 1] == '\r'))
        rest--;
    if (rest == 4 && memcmp (s, "null", 4) == 0) {
        msgpack_pack_nil (pk);
        return 0;
    }
    char perr [200];
    json_object *json = zb_json_parse (self->text.data, self->text.size, perr, sizeof perr);
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

int
zb_transform_render (zb_transform_t *self, const msgpack_object *event,
                     const zb_transform_context_t *context, msgpack_packer *pk,
                     char *err, size_t errlen)
{
    if (!self->json || self->compiled) {
        self->gen++;
        int rc = self->json ? s_render_skeleton (self, event, context, pk)
                            : s_render_text (self, event, context, pk);
        if (rc == 0)
            return 0;
        //  The reference path says why (and renders, should the fast path
        //  have refused what it should not: counted, a bug the tests catch)
        rc = zb_transform_render_reference (self, event, context, pk, err, errlen);
        if (rc == 0)
            self->fallbacks++;
        return rc;
    }
    return zb_transform_render_reference (self, event, context, pk, err, errlen);
}

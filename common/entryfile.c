/*  entryfile.c - PutEvents entries from JSON lines.

    Each line is parsed with the strict parser of codec.h and repacked as a
    msgpack entry map in the wire's key order (source, detail-type, detail,
    resources, time). The entry is packed into a scratch buffer first and
    appended to the caller's buffer only when it is complete, so a rejected
    line leaves nothing behind. */

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "entryfile.h"

struct zb_entryfile_t {
    FILE *file;
    bool owned;                 //  we opened it (not stdin)
    char *name;                 //  for messages
    char *line;                 //  getline buffer, reused
    size_t capacity;
    size_t lineno;
    json_object *json;          //  the current line, kept for info->detail_type
    msgpack_sbuffer scratch;
    msgpack_packer pk;
    char *key_prefix;           //  for entries without a key, or NULL
};

zb_entryfile_t *
zb_entryfile_open (const char *path, char *err, size_t errlen)
{
    assert (path);
    zb_entryfile_t *self = (zb_entryfile_t *) calloc (1, sizeof (zb_entryfile_t));
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    if (strcmp (path, "-") == 0) {
        self->file = stdin;
        self->name = strdup ("stdin");
    }
    else {
        self->file = fopen (path, "r");
        if (!self->file) {
            snprintf (err, errlen, "cannot open %s: %s", path, strerror (errno));
            free (self);
            return NULL;
        }
        self->owned = true;
        self->name = strdup (path);
    }
    msgpack_sbuffer_init (&self->scratch);
    msgpack_packer_init (&self->pk, &self->scratch, msgpack_sbuffer_write);
    return self;
}

void
zb_entryfile_destroy (zb_entryfile_t **self_p)
{
    assert (self_p);
    zb_entryfile_t *self = *self_p;
    if (!self)
        return;
    if (self->owned)
        fclose (self->file);
    if (self->json)
        json_object_put (self->json);
    msgpack_sbuffer_destroy (&self->scratch);
    free (self->key_prefix);
    free (self->line);
    free (self->name);
    free (self);
    *self_p = NULL;
}

void
zb_entryfile_set_key_prefix (zb_entryfile_t *self, const char *prefix)
{
    assert (self);
    free (self->key_prefix);
    self->key_prefix = prefix? strdup (prefix): NULL;
    assert (!prefix || self->key_prefix);
}

typedef enum {
    F_SOURCE, F_DETAIL_TYPE, F_DETAIL, F_RESOURCES, F_TIME, F_KEY, F_COUNT
} field_t;

//  PutEvents spelling, then envelope spelling
static const char *const s_fields [F_COUNT][2] = {
    { "Source",     "source" },
    { "DetailType", "detail-type" },
    { "Detail",     "detail" },
    { "Resources",  "resources" },
    { "Time",       "time" },
    { "IdempotencyKey", "idempotency-key" },
};

//  Envelope keys the broker sets: present in consumer output, not sent back
static const char *const s_stamped [] = { "version", "id", "account", "region" };

static bool
s_blank (const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (line [i] != ' ' && line [i] != '\t')
            return false;
    return true;
}

static void
s_pack_str (msgpack_packer *pk, json_object *str)
{
    msgpack_pack_str_with_body (pk, json_object_get_string (str),
                                (size_t) json_object_get_string_len (str));
}

//  A key for a message: its first 60 bytes (cut at a character boundary),
//  control characters written as \u00XX, so the message stays one line.
static void
s_quote_key (char *out, size_t size, const char *key)
{
    size_t len = strlen (key);
    if (len > 60) {
        len = 60;
        while (len > 0 && ((unsigned char) key [len] & 0xc0) == 0x80)
            len--;              //  key [len] continues a character: cut before it
    }
    size_t used = 0;
    for (size_t i = 0; i < len && used + 7 < size; i++) {
        unsigned char c = (unsigned char) key [i];
        if (c < 0x20 || c == 0x7f)
            used += (size_t) snprintf (out + used, size - used, "\\u%04x", c);
        else
            out [used++] = (char) c;
    }
    out [used] = '\0';
}

//  Check one line's object and pack it into self->scratch.
//  0, or -1 with the reason (without the "line N: ") in err.
static int
s_pack_entry (zb_entryfile_t *self, json_object *obj, zb_entryinfo_t *info,
              char *err, size_t errlen)
{
    json_object *value [F_COUNT] = { NULL };
    const char *given [F_COUNT] = { NULL };     //  spelling used in the line
    char unknown [256] = "";
    size_t nunknown = 0;

    json_object_object_foreach (obj, key, val) {
        bool known = false;
        for (int f = 0; f < F_COUNT && !known; f++)
            for (int spelling = 0; spelling < 2 && !known; spelling++)
                if (strcmp (key, s_fields [f][spelling]) == 0) {
                    if (given [f]) {
                        snprintf (err, errlen, "%s given twice (%s and %s)",
                                  s_fields [f][0], given [f], key);
                        return -1;
                    }
                    given [f] = key;
                    value [f] = val;
                    known = true;
                }
        for (size_t i = 0; i < sizeof s_stamped / sizeof s_stamped [0] && !known; i++)
            known = strcmp (key, s_stamped [i]) == 0;
        if (!known) {
            char quoted [80];
            s_quote_key (quoted, sizeof quoted, key);
            size_t used = strlen (unknown);
            snprintf (unknown + used, sizeof unknown - used, "%s\"%s\"",
                      nunknown? ", ": "", quoted);
            nunknown++;
        }
    }
    if (nunknown) {
        snprintf (err, errlen, "unknown key%s %s (an entry has Source, DetailType, Detail, "
                  "Resources, Time, IdempotencyKey)", nunknown > 1? "s": "", unknown);
        return -1;
    }
    //  Types are checked here; presence and content (lengths, characters, the
    //  time format) are the broker's to judge, per entry, like any client's.
    for (int f = F_SOURCE; f < F_COUNT; f++)
        if ((f <= F_DETAIL_TYPE || f == F_KEY) && value [f]
        &&  !json_object_is_type (value [f], json_type_string)) {
            snprintf (err, errlen, "%s is not a string", given [f]);
            return -1;
        }
    //  Detail as in PutEvents: a string holding a JSON object; or the object itself
    json_object *detail = value [F_DETAIL];
    json_object *parsed = NULL;
    if (detail && json_object_is_type (detail, json_type_string)) {
        char jerr [200] = "";
        parsed = zb_json_parse (json_object_get_string (detail),
                                (size_t) json_object_get_string_len (detail), jerr, sizeof jerr);
        if (!parsed) {
            //  json-c's null is a NULL object: valid JSON, but not an object
            if (*jerr)
                snprintf (err, errlen, "%s is not valid JSON: %s", given [F_DETAIL], jerr);
            else
                snprintf (err, errlen, "%s is not a JSON object", given [F_DETAIL]);
            return -1;
        }
        detail = parsed;
    }
    if (detail && !json_object_is_type (detail, json_type_object)) {
        snprintf (err, errlen, "%s is not a JSON object", given [F_DETAIL]);
        if (parsed)
            json_object_put (parsed);
        return -1;
    }
    json_object *resources = value [F_RESOURCES];
    if (resources) {
        bool ok = json_object_is_type (resources, json_type_array);
        size_t n = ok? json_object_array_length (resources): 0;
        for (size_t i = 0; i < n && ok; i++)
            ok = json_object_is_type (json_object_array_get_idx (resources, i), json_type_string);
        if (!ok) {
            snprintf (err, errlen, "%s is not an array of strings", given [F_RESOURCES]);
            if (parsed)
                json_object_put (parsed);
            return -1;
        }
    }
    json_object *time = value [F_TIME];
    if (time && !json_object_is_type (time, json_type_string)) {
        snprintf (err, errlen, "%s is not a string", given [F_TIME]);
        if (parsed)
            json_object_put (parsed);
        return -1;
    }

    msgpack_sbuffer_clear (&self->scratch);
    msgpack_packer *pk = &self->pk;
    size_t nkeys = 0;
    for (int f = 0; f < F_COUNT; f++)
        nkeys += value [f] != NULL;
    bool generate_key = !value [F_KEY] && self->key_prefix;
    msgpack_pack_map (pk, nkeys + (generate_key? 1: 0));
    if (value [F_SOURCE]) {
        msgpack_pack_str_with_body (pk, "source", 6);
        s_pack_str (pk, value [F_SOURCE]);
    }
    if (value [F_DETAIL_TYPE]) {
        msgpack_pack_str_with_body (pk, "detail-type", 11);
        s_pack_str (pk, value [F_DETAIL_TYPE]);
    }
    if (detail) {
        msgpack_pack_str_with_body (pk, "detail", 6);
        char perr [200];
        int rc = zb_json_to_msgpack (detail, pk, perr, sizeof perr);
        if (parsed)
            json_object_put (parsed);
        if (rc != 0) {
            snprintf (err, errlen, "%s: %s", given [F_DETAIL], perr);
            return -1;
        }
    }
    if (resources) {
        size_t n = json_object_array_length (resources);
        msgpack_pack_str_with_body (pk, "resources", 9);
        msgpack_pack_array (pk, n);
        for (size_t i = 0; i < n; i++)
            s_pack_str (pk, json_object_array_get_idx (resources, i));
    }
    if (time) {
        msgpack_pack_str_with_body (pk, "time", 4);
        s_pack_str (pk, time);
    }
    if (value [F_KEY]) {
        msgpack_pack_str_with_body (pk, "idempotency-key", 15);
        s_pack_str (pk, value [F_KEY]);
    }
    else
    if (generate_key) {
        char key [160];
        int len = snprintf (key, sizeof key, "%.100s-%zu", self->key_prefix, self->lineno);
        msgpack_pack_str_with_body (pk, "idempotency-key", 15);
        msgpack_pack_str_with_body (pk, key, (size_t) len);
    }
    if (value [F_DETAIL_TYPE]) {
        info->detail_type.ptr = json_object_get_string (value [F_DETAIL_TYPE]);
        info->detail_type.len = (size_t) json_object_get_string_len (value [F_DETAIL_TYPE]);
    }
    return 0;
}

int
zb_entryfile_next (zb_entryfile_t *self, msgpack_sbuffer *out, zb_entryinfo_t *info,
                   char *err, size_t errlen)
{
    assert (self);
    assert (out);
    assert (info);
    if (self->json) {
        json_object_put (self->json);
        self->json = NULL;
    }
    while (true) {
        errno = 0;
        ssize_t n = getline (&self->line, &self->capacity, self->file);
        if (n == -1) {
            if (ferror (self->file)) {
                snprintf (err, errlen, "cannot read %s after line %zu: %s", self->name,
                          self->lineno, strerror (errno? errno: EIO));
                clearerr (self->file);
                return -2;
            }
            return 0;
        }
        self->lineno++;
        size_t len = (size_t) n;
        if (len && self->line [len - 1] == '\n')
            len--;
        if (len && self->line [len - 1] == '\r')
            len--;
        info->line = self->lineno;
        info->detail_type.ptr = NULL;
        info->detail_type.len = 0;
        if (len > ZB_ENTRYFILE_MAX_LINE) {
            snprintf (err, errlen, "line %zu: longer than %d bytes (%zu)", self->lineno,
                      ZB_ENTRYFILE_MAX_LINE, len);
            return -1;
        }
        if (s_blank (self->line, len))
            continue;

        char jerr [200] = "";
        json_object *json = zb_json_parse (self->line, len, jerr, sizeof jerr);
        if (!json && *jerr) {
            snprintf (err, errlen, "line %zu: not valid JSON: %s", self->lineno, jerr);
            return -1;
        }
        if (!json_object_is_type (json, json_type_object)) {      //  NULL: JSON null
            snprintf (err, errlen, "line %zu: not a JSON object (an entry is an object with "
                      "Source, DetailType and Detail)", self->lineno);
            if (json)
                json_object_put (json);
            return -1;
        }
        char reason [400];
        if (s_pack_entry (self, json, info, reason, sizeof reason) != 0) {
            snprintf (err, errlen, "line %zu: %s", self->lineno, reason);
            json_object_put (json);
            return -1;
        }
        self->json = json;          //  info->detail_type points into it
        msgpack_sbuffer_write (out, self->scratch.data, self->scratch.size);
        return 1;
    }
}

int
zb_entryfile_pack_text (const char *text, size_t len, msgpack_sbuffer *out,
                        char *err, size_t errlen)
{
    assert (text);
    assert (out);
    char jerr [200] = "";
    json_object *json = zb_json_parse (text, len, jerr, sizeof jerr);
    if (!json && *jerr) {
        snprintf (err, errlen, "not valid JSON: %s", jerr);
        return -1;
    }
    if (!json_object_is_type (json, json_type_object)) {      //  NULL: JSON null
        snprintf (err, errlen, "not a JSON object (an entry is an object with "
                  "Source, DetailType and Detail)");
        if (json)
            json_object_put (json);
        return -1;
    }
    //  A file of no lines, for s_pack_entry's scratch buffer and packer
    zb_entryfile_t self = { .file = NULL };
    msgpack_sbuffer_init (&self.scratch);
    msgpack_packer_init (&self.pk, &self.scratch, msgpack_sbuffer_write);
    zb_entryinfo_t info = { 0 };
    int rc = s_pack_entry (&self, json, &info, err, errlen);
    if (rc == 0)
        msgpack_sbuffer_write (out, self.scratch.data, self.scratch.size);
    msgpack_sbuffer_destroy (&self.scratch);
    json_object_put (json);
    return rc;
}

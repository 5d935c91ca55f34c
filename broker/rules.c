/*  rules.c - the broker's named rules (rules.h).

    The rules sit in an array sorted by name (at most max_rules of them, a few
    hundred by default), their patterns in one zb_patterns_t under the rule's
    name. The file is {"version": 1, "rules": [{"name": ..., "pattern": ...,
    "transform": ...}, ...]} with pattern and transform as the JSON text the
    user gave, kept as strings. */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "event.h"
#include "pattern.h"
#include "rules.h"

#define RULES_FILE_MAX  (64 * 1024 * 1024)  //  refuse to load anything bigger
#define ZB_ERRLEN       512

struct zb_rules_t {
    char *path;                         //  NULL: not persisted
    size_t max_rules;
    char *account;
    char *region;
    zb_patterns_t *patterns;
    zb_rule_t **rules;                  //  sorted by name
    size_t size;
    const char **names;                 //  match scratch: max_rules names
};

//  The index of name, or where it would go (then *found is false).
static size_t
s_find (zb_rules_t *self, const char *name, size_t len, bool *found)
{
    size_t lo = 0, hi = self->size;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *other = self->rules [mid]->name;
        size_t other_len = strlen (other);
        int cmp = memcmp (other, name, len < other_len ? len : other_len);
        if (cmp == 0)
            cmp = other_len < len ? -1 : other_len > len ? 1 : 0;
        if (cmp == 0) {
            *found = true;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static void
s_rule_free (zb_rule_t **rule_p)
{
    zb_rule_t *rule = *rule_p;
    if (!rule)
        return;
    free (rule->pattern);
    free (rule->transform);
    zb_transform_destroy (&rule->transformer);
    free (rule);
    *rule_p = NULL;
}

//  --------------------------------------------------------------------------
//  The file

//  Write all of buf to fd. 0, or -1 with errno.
static int
s_write_all (int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write (fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t) n;
    }
    return 0;
}

static int
s_save (zb_rules_t *self, char *err, size_t errlen)
{
    if (!self->path)
        return 0;
    json_object *root = json_object_new_object ();
    json_object *list = json_object_new_array ();
    if (!root || !list) {
        json_object_put (root);
        json_object_put (list);
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    json_object_object_add (root, "version", json_object_new_int (1));
    json_object_object_add (root, "rules", list);
    for (size_t i = 0; i < self->size; i++) {
        zb_rule_t *rule = self->rules [i];
        json_object *item = json_object_new_object ();
        json_object_array_add (list, item);
        json_object_object_add (item, "name", json_object_new_string (rule->name));
        json_object_object_add (item, "pattern",
                                json_object_new_string_len (rule->pattern, (int) rule->pattern_len));
        if (rule->transform)
            json_object_object_add (item, "transform",
                                    json_object_new_string_len (rule->transform, (int) rule->transform_len));
    }
    const char *text = json_object_to_json_string_ext (root, JSON_C_TO_STRING_PRETTY
                                                             | JSON_C_TO_STRING_NOSLASHESCAPE);
    char tmp [4096];
    snprintf (tmp, sizeof tmp, "%s.tmp", self->path);
    int rc = -1;
    int fd = text ? open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    if (fd < 0)
        snprintf (err, errlen, "cannot write %s: %s", tmp, text ? strerror (errno) : "out of memory");
    else
    if (s_write_all (fd, text, strlen (text)) != 0 || s_write_all (fd, "\n", 1) != 0
    ||  fsync (fd) != 0) {
        snprintf (err, errlen, "cannot write %s: %s", tmp, strerror (errno));
        close (fd);
        unlink (tmp);
    }
    else
    if (close (fd) != 0 || rename (tmp, self->path) != 0) {
        snprintf (err, errlen, "cannot replace %s: %s", self->path, strerror (errno));
        unlink (tmp);
    }
    else {
        //  The rename is durable once the directory is
        char dir [4096];
        snprintf (dir, sizeof dir, "%s", self->path);
        int dfd = open (dirname (dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync (dfd);
            close (dfd);
        }
        rc = 0;
    }
    json_object_put (root);
    zb_utf8_trim (err);
    return rc;
}

//  Put one rule without saving (loading, and the first step of a put).
//  *old receives the rule it replaced (the caller frees it or puts it back).
static int
s_put (zb_rules_t *self, const char *name, size_t name_len, const char *pattern, size_t pattern_len,
       const char *transform, size_t transform_len, zb_rule_t **old, const char **code,
       char *err, size_t errlen)
{
    *old = NULL;
    if (!zb_rule_name_ok (name, name_len)) {
        *code = "InvalidArgument";
        snprintf (err, errlen, "name: a rule name is 1 to %d characters of A-Z a-z 0-9 . - _",
                  ZB_RULE_NAME_MAX);
        return -1;
    }
    bool found;
    size_t at = s_find (self, name, name_len, &found);
    if (!found && self->size >= self->max_rules) {
        *code = "LimitExceeded";
        snprintf (err, errlen, "the broker already has its maximum of %zu rules (max-rules)",
                  self->max_rules);
        return -1;
    }
    zb_rule_t *rule = (zb_rule_t *) calloc (1, sizeof (zb_rule_t));
    if (!rule)
        goto oom;
    memcpy (rule->name, name, name_len);
    rule->topic_len = (size_t) snprintf (rule->topic, sizeof rule->topic, "%s%s",
                                         ZB_RULE_TOPIC_PREFIX, rule->name);
    rule->arn_len = (size_t) snprintf (rule->arn, sizeof rule->arn, "arn:zbridge:events:%s:%s:rule/%s",
                                       self->region, self->account, rule->name);
    rule->pattern = strndup (pattern, pattern_len);
    rule->pattern_len = pattern_len;
    if (!rule->pattern)
        goto oom;
    if (transform) {
        char terr [256];
        rule->transformer = zb_transform_new (transform, transform_len, terr, sizeof terr);
        if (!rule->transformer) {
            *code = "InvalidArgument";
            snprintf (err, errlen, "transform: %s", terr);
            zb_utf8_trim (err);
            s_rule_free (&rule);
            return -1;
        }
        rule->transform = strndup (transform, transform_len);
        rule->transform_len = transform_len;
        if (!rule->transform)
            goto oom;
    }
    char perr [256];
    if (zb_patterns_add (self->patterns, rule->name, pattern, pattern_len, perr, sizeof perr) != 0) {
        *code = "InvalidEventPattern";
        snprintf (err, errlen, "pattern: %s", perr);
        zb_utf8_trim (err);
        s_rule_free (&rule);
        return -1;
    }
    if (found) {
        *old = self->rules [at];
        self->rules [at] = rule;
        return 0;
    }
    memmove (self->rules + at + 1, self->rules + at, (self->size - at) * sizeof (zb_rule_t *));
    self->rules [at] = rule;
    self->size++;
    return 1;
oom:
    s_rule_free (&rule);
    *code = "InternalFailure";
    snprintf (err, errlen, "out of memory");
    return -1;
}

//  Undo s_put: put old back (or remove the new rule when there was none).
static void
s_unput (zb_rules_t *self, const char *name, size_t name_len, zb_rule_t *old)
{
    bool found;
    size_t at = s_find (self, name, name_len, &found);
    assert (found);
    zb_rule_t *rule = self->rules [at];
    if (old) {
        char perr [256];
        //  It compiled before, so it compiles again (unless memory runs out)
        if (zb_patterns_add (self->patterns, old->name, old->pattern, old->pattern_len,
                             perr, sizeof perr) != 0)
            zb_patterns_remove (self->patterns, old->name);
        self->rules [at] = old;
    }
    else {
        zb_patterns_remove (self->patterns, rule->name);
        memmove (self->rules + at, self->rules + at + 1, (self->size - at - 1) * sizeof (zb_rule_t *));
        self->size--;
    }
    s_rule_free (&rule);
}

static int
s_load (zb_rules_t *self, char *err, size_t errlen)
{
    FILE *file = fopen (self->path, "rb");
    if (!file) {
        if (errno == ENOENT)
            return 0;
        snprintf (err, errlen, "cannot read %s: %s", self->path, strerror (errno));
        return -1;
    }
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    if (fstat (fileno (file), &st) == 0 && st.st_size >= 0 && st.st_size <= RULES_FILE_MAX) {
        text = (char *) malloc ((size_t) st.st_size + 1);
        if (text)
            len = fread (text, 1, (size_t) st.st_size, file);
    }
    fclose (file);
    if (!text) {
        snprintf (err, errlen, "cannot read %s: too big or out of memory", self->path);
        return -1;
    }
    char perr [200];
    json_object *root = zb_json_parse (text, len, perr, sizeof perr);
    free (text);
    json_object *list = NULL;
    if (!root || !json_object_object_get_ex (root, "rules", &list)
    ||  !json_object_is_type (list, json_type_array)) {
        snprintf (err, errlen, "%s is not a rules file ({\"rules\": [...]}): %s", self->path,
                  root ? "no \"rules\" array" : perr);
        json_object_put (root);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < json_object_array_length (list); i++) {
        json_object *item = json_object_array_get_idx (list, i);
        json_object *name = NULL, *pattern = NULL, *transform = NULL;
        json_object_object_get_ex (item, "name", &name);
        json_object_object_get_ex (item, "pattern", &pattern);
        json_object_object_get_ex (item, "transform", &transform);
        if (!json_object_is_type (name, json_type_string)
        ||  !json_object_is_type (pattern, json_type_string)
        ||  (transform && !json_object_is_type (transform, json_type_string))) {
            snprintf (err, errlen, "%s: rule %zu needs \"name\" and \"pattern\" strings", self->path, i);
            rc = -1;
            break;
        }
        const char *code;
        char rerr [ZB_ERRLEN];
        zb_rule_t *old;
        if (s_put (self, json_object_get_string (name), (size_t) json_object_get_string_len (name),
                   json_object_get_string (pattern), (size_t) json_object_get_string_len (pattern),
                   transform ? json_object_get_string (transform) : NULL,
                   transform ? (size_t) json_object_get_string_len (transform) : 0,
                   &old, &code, rerr, sizeof rerr) < 0) {
            snprintf (err, errlen, "%s: rule %zu (%.64s): %s", self->path, i,
                      json_object_get_string (name), rerr);
            rc = -1;
        }
        s_rule_free (&old);
    }
    json_object_put (root);
    zb_utf8_trim (err);
    return rc;
}

//  --------------------------------------------------------------------------

zb_rules_t *
zb_rules_new (const char *path, size_t max_rules, size_t max_pattern_size,
              const char *account, const char *region, char *err, size_t errlen)
{
    zb_rules_t *self = (zb_rules_t *) calloc (1, sizeof (zb_rules_t));
    if (!self)
        goto oom;
    self->max_rules = max_rules ? max_rules : ZB_DEFAULT_MAX_RULES;
    self->path = path ? strdup (path) : NULL;
    self->account = strdup (account ? account : "");
    self->region = strdup (region ? region : "");
    self->patterns = zb_patterns_new ();
    self->rules = (zb_rule_t **) calloc (self->max_rules, sizeof (zb_rule_t *));
    self->names = (const char **) calloc (self->max_rules, sizeof (char *));
    if ((path && !self->path) || !self->account || !self->region || !self->patterns
    ||  !self->rules || !self->names)
        goto oom;
    zb_patterns_set_max_size (self->patterns, max_pattern_size);
    if (self->path && s_load (self, err, errlen) != 0) {
        zb_rules_destroy (&self);
        return NULL;
    }
    return self;
oom:
    zb_rules_destroy (&self);
    snprintf (err, errlen, "out of memory");
    return NULL;
}

void
zb_rules_destroy (zb_rules_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zb_rules_t *self = *self_p;
    for (size_t i = 0; i < self->size; i++)
        s_rule_free (&self->rules [i]);
    free (self->rules);
    free (self->names);
    zb_patterns_destroy (&self->patterns);
    free (self->path);
    free (self->account);
    free (self->region);
    free (self);
    *self_p = NULL;
}

int
zb_rules_put (zb_rules_t *self, const char *name, size_t name_len,
              const char *pattern, size_t pattern_len,
              const char *transform, size_t transform_len,
              const char **code, char *err, size_t errlen)
{
    zb_rule_t *old;
    int rc = s_put (self, name, name_len, pattern, pattern_len, transform, transform_len,
                    &old, code, err, errlen);
    if (rc < 0)
        return -1;
    char serr [ZB_ERRLEN];
    if (s_save (self, serr, sizeof serr) != 0) {
        s_unput (self, name, name_len, old);
        *code = "InternalFailure";
        snprintf (err, errlen, "the rule was not stored: %s", serr);
        zb_utf8_trim (err);
        return -1;
    }
    s_rule_free (&old);
    return rc;
}

int
zb_rules_delete (zb_rules_t *self, const char *name, size_t name_len, char *err, size_t errlen)
{
    bool found;
    size_t at = s_find (self, name, name_len, &found);
    if (!found)
        return -1;
    zb_rule_t *rule = self->rules [at];
    memmove (self->rules + at, self->rules + at + 1, (self->size - at - 1) * sizeof (zb_rule_t *));
    self->size--;
    if (s_save (self, err, errlen) != 0) {
        memmove (self->rules + at + 1, self->rules + at, (self->size - at) * sizeof (zb_rule_t *));
        self->rules [at] = rule;
        self->size++;
        return -2;
    }
    zb_patterns_remove (self->patterns, rule->name);
    s_rule_free (&rule);
    return 0;
}

zb_rule_t *
zb_rules_get (zb_rules_t *self, const char *name, size_t name_len)
{
    bool found;
    size_t at = s_find (self, name, name_len, &found);
    return found ? self->rules [at] : NULL;
}

size_t
zb_rules_size (zb_rules_t *self)
{
    return self->size;
}

zb_rule_t *
zb_rules_at (zb_rules_t *self, size_t index)
{
    return index < self->size ? self->rules [index] : NULL;
}

//  The matched names to rules
static size_t
s_matched (zb_rules_t *self, size_t n, zb_rule_t **out, size_t max)
{
    if (n > self->max_rules)
        n = self->max_rules;
    size_t count = 0;
    for (size_t i = 0; i < n && count < max; i++) {
        zb_rule_t *rule = zb_rules_get (self, self->names [i], strlen (self->names [i]));
        if (rule)
            out [count++] = rule;
    }
    return count;
}

size_t
zb_rules_match (zb_rules_t *self, const msgpack_object *event, zb_rule_t **out, size_t max)
{
    if (self->size == 0)
        return 0;
    return s_matched (self, zb_patterns_match (self->patterns, event, self->names, self->max_rules),
                      out, max);
}

size_t
zb_rules_match_packed (zb_rules_t *self, const void *data, size_t size, zb_rule_t **out, size_t max)
{
    if (self->size == 0)
        return 0;
    return s_matched (self, zb_patterns_match_packed (self->patterns, data, size, self->names,
                                                      self->max_rules), out, max);
}

const char *
zb_rules_where (zb_rules_t *self)
{
    return self->path ? self->path : "memory";
}

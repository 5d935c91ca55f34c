/*  auth.c - CURVE, the allow directory, authorization per key and the rate
    limit; see auth.h and docs/SECURITY.md. */

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <string.h>
#include <sys/stat.h>

#include "auth.h"
#include "curve.h"
#include "decode.h"

#define Z85_KEY_LEN         40
#define AUTH_MAX_BUCKETS    65536       //  rate-limit buckets kept at once
#define AUTH_MAX_PEERS      10000       //  control connections remembered
#define AUTH_MAX_NAMES      10000       //  names per list of one client
#define AUTH_DESCRIBE       128

//  One name of an authorization list: exact, or a prefix ("store-*", "*")
typedef struct {
    char *text;
    size_t len;
    bool prefix;
} name_t;

typedef struct {
    name_t *items;
    size_t count;
} names_t;

struct zb_policy_t {
    char *name;                         //  the config section's name
    char key [Z85_KEY_LEN + 1];         //  "" for "default"
    names_t sources;
    names_t detail_types;
    names_t topics;
    bool rules;                         //  may put and delete broker rules
};

typedef struct {
    double tokens;
    int64_t last_us;
} bucket_t;

struct zb_auth_t {
    bool curve;
    bool verbose;
    char public_txt [Z85_KEY_LEN + 1];  //  the broker's keys
    char secret_txt [Z85_KEY_LEN + 1];
    char *allow_dir;
    zactor_t *zauth;
    zhashx_t *allowed;                  //  Z85 key -> itself: the directory's keys
    uint64_t signature;                 //  of the directory when last loaded
    bool have_signature;
    int64_t last_rescan_us;             //  s_notice_added

    //  Authorization: NULL table = everyone may do everything
    zb_policy_t **policies;
    size_t npolicies;
    zhashx_t *by_key;                   //  Z85 key -> policy
    zb_policy_t *fallback;              //  "default", or the empty policy

    //  Rate limit
    uint64_t rate;
    uint64_t burst;
    zhashx_t *buckets;                  //  client name -> bucket_t
    bucket_t overflow;                  //  shared when the table is full

    zhashx_t *peers;                    //  control identity (hex) -> key

    msgpack_zone zone;                  //  REPLAY bodies
    bool zone_ready;
    zb_auth_stats_t stats;
    char describe [AUTH_DESCRIBE];
};

//  --------------------------------------------------------------------------
//  Names

static void
s_names_free (names_t *names)
{
    for (size_t i = 0; i < names->count; i++)
        free (names->items [i].text);
    free (names->items);
    names->items = NULL;
    names->count = 0;
}

//  Add "name", "prefix*" or "*". 0, or -1 with err.
static int
s_names_add (names_t *names, const char *value, char *err, size_t errlen)
{
    size_t len = strlen (value);
    if (len == 0 || len > 256 || !zb_utf8_valid (value, len) || zb_utf8_has_control (value, len)) {
        snprintf (err, errlen, "'%s' is not a name (1 to 256 bytes of UTF-8, no control "
                  "characters)", value);
        return -1;
    }
    const char *star = strchr (value, '*');
    if (star && star != value + len - 1) {
        snprintf (err, errlen, "'%s': '*' may only end a name (a prefix, e.g. store-*)", value);
        return -1;
    }
    if (names->count >= AUTH_MAX_NAMES) {
        snprintf (err, errlen, "more than %d names", AUTH_MAX_NAMES);
        return -1;
    }
    name_t *items = (name_t *) realloc (names->items, (names->count + 1) * sizeof (name_t));
    if (!items) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    names->items = items;
    name_t *name = &names->items [names->count];
    name->prefix = star != NULL;
    name->len = star ? len - 1 : len;
    name->text = strndup (value, name->len);
    if (!name->text) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    names->count++;
    return 0;
}

//  True when text is one of the names or starts with one of the prefixes.
static bool
s_names_match (const names_t *names, const char *text, size_t len)
{
    for (size_t i = 0; i < names->count; i++) {
        const name_t *n = &names->items [i];
        if (n->prefix ? (len >= n->len && memcmp (text, n->text, n->len) == 0)
                      : (len == n->len && memcmp (text, n->text, len) == 0))
            return true;
    }
    return false;
}

//  True when every name starting with prefix is allowed: one of the allowed
//  prefixes is a prefix of it.
static bool
s_names_cover (const names_t *names, const char *prefix, size_t len)
{
    for (size_t i = 0; i < names->count; i++) {
        const name_t *n = &names->items [i];
        if (n->prefix && len >= n->len && memcmp (prefix, n->text, n->len) == 0)
            return true;
    }
    return false;
}

//  --------------------------------------------------------------------------
//  The authorization table

static void
s_policy_destroy (zb_policy_t **self_p)
{
    zb_policy_t *self = *self_p;
    if (self) {
        free (self->name);
        s_names_free (&self->sources);
        s_names_free (&self->detail_types);
        s_names_free (&self->topics);
        free (self);
        *self_p = NULL;
    }
}

static bool
s_z85_key (const char *text)
{
    static const char alphabet [] =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    if (strlen (text) != Z85_KEY_LEN)
        return false;
    for (const char *p = text; *p; p++)
        if (!strchr (alphabet, *p))
            return false;
    return true;
}

//  One client of the "authorization" section. 0, or -1 with err.
static int
s_policy_load (zb_auth_t *self, zconfig_t *section, zb_policy_t *policy, char *err, size_t errlen)
{
    const char *name = zconfig_name (section);
    bool is_default = streq (name, "default");
    const char *key = NULL;
    const char *cert = NULL;
    char reason [512];
    for (zconfig_t *item = zconfig_child (section); item; item = zconfig_next (item)) {
        const char *k = zconfig_name (item);
        const char *v = zconfig_value (item) ? zconfig_value (item) : "";
        if (zconfig_child (item)) {
            snprintf (err, errlen, "authorization/%s/%s has nested items; expected a value", name, k);
            return -1;
        }
        names_t *list = streq (k, "source") ? &policy->sources
                      : streq (k, "detail-type") ? &policy->detail_types
                      : streq (k, "topic") ? &policy->topics : NULL;
        if (list) {
            if (s_names_add (list, v, reason, sizeof reason) == -1) {
                snprintf (err, errlen, "authorization/%s/%s: %s", name, k, reason);
                return -1;
            }
        }
        else
        if (streq (k, "rules")) {
            if (!streq (v, "true") && !streq (v, "false")) {
                snprintf (err, errlen, "authorization/%s/rules: '%s' is not true or false", name, v);
                return -1;
            }
            policy->rules = streq (v, "true");
        }
        else
        if (streq (k, "key") && !is_default)
            key = v;
        else
        if (streq (k, "cert") && !is_default)
            cert = v;
        else {
            snprintf (err, errlen, "unknown key authorization/%s/%s (known: %ssource, "
                      "detail-type, topic, rules)", name, k, is_default ? "" : "key, cert, ");
            return -1;
        }
    }
    if (is_default)
        return 0;
    if (!key == !cert) {
        snprintf (err, errlen, "authorization/%s needs exactly one of key (the client's "
                  "Z85 public key, in quotes) or cert (its public certificate file)", name);
        return -1;
    }
    if (key) {
        if (!s_z85_key (key)) {
            snprintf (err, errlen, "authorization/%s/key: '%s' is not a Z85 public key "
                      "(40 characters; quote it: it may hold '#')", name, key);
            return -1;
        }
        memcpy (policy->key, key, Z85_KEY_LEN + 1);
    }
    else {
        //  A relative path is in the allow directory
        char path [4096];
        if (cert [0] != '/' && self->allow_dir)
            snprintf (path, sizeof path, "%s/%s", self->allow_dir, cert);
        else
            snprintf (path, sizeof path, "%s", cert);
        if (zb_curve_load (path, false, policy->key, NULL, reason, sizeof reason) == -1) {
            snprintf (err, errlen, "authorization/%s/cert: %s", name, reason);
            return -1;
        }
    }
    if (zhashx_lookup (self->by_key, policy->key)) {
        snprintf (err, errlen, "authorization/%s: key %s is given twice", name, policy->key);
        return -1;
    }
    zhashx_insert (self->by_key, policy->key, policy);
    return 0;
}

static int
s_table_load (zb_auth_t *self, zconfig_t *section, char *err, size_t errlen)
{
    self->by_key = zhashx_new ();
    assert (self->by_key);
    size_t count = 0;
    for (zconfig_t *c = zconfig_child (section); c; c = zconfig_next (c))
        count++;
    //  One more: the empty policy of keys without an entry when no "default"
    self->policies = (zb_policy_t **) calloc (count + 1, sizeof (zb_policy_t *));
    assert (self->policies);
    for (zconfig_t *c = zconfig_child (section); c; c = zconfig_next (c)) {
        zb_policy_t *policy = (zb_policy_t *) zmalloc (sizeof (zb_policy_t));
        assert (policy);
        policy->name = strdup (zconfig_name (c));
        assert (policy->name);
        self->policies [self->npolicies++] = policy;
        if (zconfig_value (c) && *zconfig_value (c)) {
            snprintf (err, errlen, "authorization/%s has a value; expected nested items "
                      "(key or cert, source, detail-type, topic)", policy->name);
            return -1;
        }
        if (s_policy_load (self, c, policy, err, errlen) == -1)
            return -1;
        if (streq (policy->name, "default")) {
            if (self->fallback) {
                snprintf (err, errlen, "authorization/default is given twice");
                return -1;
            }
            self->fallback = policy;
        }
    }
    if (!self->fallback) {
        zb_policy_t *none = (zb_policy_t *) zmalloc (sizeof (zb_policy_t));
        assert (none);
        none->name = strdup ("(no entry)");
        assert (none->name);
        self->policies [self->npolicies++] = none;
        self->fallback = none;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  The allow directory

//  FNV-1a over bytes
static uint64_t
s_fnv (uint64_t hash, const void *data, size_t len)
{
    const uint8_t *p = (const uint8_t *) data;
    for (size_t i = 0; i < len; i++) {
        hash ^= p [i];
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

static bool
s_is_secret (const char *path)
{
    size_t len = strlen (path);
    return len >= 7 && streq (path + len - 7, "_secret");
}

//  The directory's signature: every file's path, size, mtime (ns) and inode,
//  and the directory's own mtime. Loads the keys into allowed when given.
//  Files are what zcertstore's disk loader reads: regular files, in
//  subdirectories too, not ending in _secret, not starting with '.'.
//  false when the directory cannot be read.
static bool
s_scan (zb_auth_t *self, uint64_t *signature, zhashx_t *allowed)
{
    struct stat st;
    if (stat (self->allow_dir, &st) == -1 || !S_ISDIR (st.st_mode))
        return false;
    uint64_t hash = 0xcbf29ce484222325ULL;
    hash = s_fnv (hash, &st.st_mtim, sizeof st.st_mtim);
    zdir_t *dir = zdir_new (self->allow_dir, NULL);
    if (!dir)
        return false;
    zfile_t **files = zdir_flatten (dir);
    for (size_t i = 0; files && files [i]; i++) {
        const char *path = zfile_filename (files [i], NULL);
        if (!zfile_is_regular (files [i]) || s_is_secret (path) || stat (path, &st) == -1)
            continue;
        hash = s_fnv (hash, path, strlen (path) + 1);
        hash = s_fnv (hash, &st.st_size, sizeof st.st_size);
        hash = s_fnv (hash, &st.st_mtim, sizeof st.st_mtim);
        hash = s_fnv (hash, &st.st_ino, sizeof st.st_ino);
        if (allowed) {
            zcert_t *cert = zcert_load (path);
            if (cert) {
                const char *pub = zcert_public_txt (cert);
                if (pub && s_z85_key (pub))
                    zhashx_update (allowed, pub, (void *) "");
                zcert_destroy (&cert);
            }
        }
    }
    zdir_flatten_free (&files);
    zdir_destroy (&dir);
    *signature = hash;
    return true;
}

//  --------------------------------------------------------------------------
//  Construction

bool
zb_auth_endpoint_safe (const char *endpoint)
{
    //  Transports that can reach beyond the machine; the others (ipc, inproc,
    //  and names libzmq does not know, whose bind fails) are local
    static const char *network [] = {
        "tcp://", "ws://", "wss://", "pgm://", "epgm://", "norm://", "udp://", "tipc://",
        "vmci://", NULL };
    bool remote = false;
    for (int i = 0; network [i] && !remote; i++)
        remote = strncmp (endpoint, network [i], strlen (network [i])) == 0;
    if (!remote)
        return true;
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return false;               //  only tcp is ever loopback here
    const char *host = endpoint + 6;
    //  tcp://source;host:port binds host
    const char *semi = strchr (host, ';');
    if (semi)
        host = semi + 1;
    if (strncmp (host, "127.", 4) == 0) {
        //  127.a.b.c: digits and dots up to the port
        const char *p = host + 4;
        while (*p && *p != ':') {
            if (!((*p >= '0' && *p <= '9') || *p == '.'))
                return false;
            p++;
        }
        return *p == ':';
    }
    //  (a host name is an interface name to libzmq's bind: not a loopback)
    return strncmp (host, "[::1]:", 6) == 0;
}

zb_auth_t *
zb_auth_new (const zb_auth_config_t *config, bool *usage, char *err, size_t errlen)
{
    assert (config);
    assert (usage);
    *usage = true;
    zb_auth_t *self = (zb_auth_t *) zmalloc (sizeof (zb_auth_t));
    assert (self);
    self->verbose = config->verbose;
    self->rate = config->rate_limit;
    self->burst = config->rate_burst ? config->rate_burst : config->rate_limit;
    self->zone_ready = msgpack_zone_init (&self->zone, 4096);
    self->buckets = zhashx_new ();
    self->peers = zhashx_new ();
    assert (self->zone_ready && self->buckets && self->peers);
    zhashx_set_destructor (self->buckets, (zhashx_destructor_fn *) zstr_free);
    zhashx_set_duplicator (self->peers, (zhashx_duplicator_fn *) strdup);
    zhashx_set_destructor (self->peers, (zhashx_destructor_fn *) zstr_free);
    if (!config->curve_cert != !config->curve_allow) {
        snprintf (err, errlen, "%s needs %s as well (CURVE takes the broker's secret "
                  "certificate and the directory of allowed client certificates)",
                  config->curve_cert ? "curve-cert" : "curve-allow",
                  config->curve_cert ? "curve-allow" : "curve-cert");
        goto fail;
    }
    if (config->curve_cert) {
        if (!zsys_has_curve ()) {
            *usage = false;
            snprintf (err, errlen, "this libzmq has no CURVE support (built without libsodium)");
            goto fail;
        }
        if (zb_curve_load (config->curve_cert, true, self->public_txt, self->secret_txt,
                           err, errlen) == -1)
            goto fail;
        self->curve = true;
        self->allow_dir = strdup (config->curve_allow);
        assert (self->allow_dir);
        self->allowed = zhashx_new ();
        assert (self->allowed);
        if (!s_scan (self, &self->signature, self->allowed)) {
            snprintf (err, errlen, "curve-allow: %s is not a readable directory", self->allow_dir);
            goto fail;
        }
        self->have_signature = true;
        self->stats.keys = zhashx_size (self->allowed);
    }
    if (config->authorization) {
        if (!self->curve) {
            snprintf (err, errlen, "%s: the authorization section needs CURVE (curve-cert "
                      "and curve-allow): without it clients have no key",
                      config->config_path ? config->config_path : "config");
            goto fail;
        }
        char reason [600];
        if (s_table_load (self, config->authorization, reason, sizeof reason) == -1) {
            snprintf (err, errlen, "%s: %s", config->config_path ? config->config_path : "config",
                      reason);
            goto fail;
        }
    }
    if (self->curve) {
        //  zauth answers the ZAP requests of every socket of the process
        *usage = false;
        self->zauth = zactor_new (zauth, NULL);
        if (!self->zauth) {
            snprintf (err, errlen, "cannot start the ZAP handler (zauth)");
            goto fail;
        }
        if (self->verbose) {
            zstr_send (self->zauth, "VERBOSE");
            zsock_wait (self->zauth);
        }
        zstr_sendx (self->zauth, "CURVE", self->allow_dir, NULL);
        zsock_wait (self->zauth);
    }
    return self;
fail:
    zb_auth_destroy (&self);
    return NULL;
}

void
zb_auth_destroy (zb_auth_t **self_p)
{
    assert (self_p);
    zb_auth_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->zauth);
    zhashx_destroy (&self->allowed);
    zhashx_destroy (&self->by_key);
    for (size_t i = 0; i < self->npolicies; i++)
        s_policy_destroy (&self->policies [i]);
    free (self->policies);
    zhashx_destroy (&self->buckets);
    zhashx_destroy (&self->peers);
    if (self->zone_ready)
        msgpack_zone_destroy (&self->zone);
    free (self->allow_dir);
    memset (self->secret_txt, 0, sizeof self->secret_txt);
    free (self);
    *self_p = NULL;
}

bool
zb_auth_curve (zb_auth_t *self)
{
    assert (self);
    return self->curve;
}

const char *
zb_auth_describe (zb_auth_t *self)
{
    assert (self);
    if (!self->curve)
        snprintf (self->describe, sizeof self->describe, "off");
    else
        snprintf (self->describe, sizeof self->describe, "curve (%zu keys allowed, %s)",
                  zhashx_size (self->allowed),
                  self->by_key ? "authorization table" : "no authorization table");
    return self->describe;
}

void
zb_auth_server_apply (zb_auth_t *self, zsock_t *sock, const char *domain)
{
    assert (self);
    if (!self->curve)
        return;
    zsock_set_zap_domain (sock, domain);
    zsock_set_curve_server (sock, 1);
    zsock_set_curve_publickey (sock, self->public_txt);
    zsock_set_curve_secretkey (sock, self->secret_txt);
}

//  --------------------------------------------------------------------------
//  Requests

#define AUTH_RESCAN_US  100000          //  at most one early rescan per 100 ms

//  zauth let in a key we do not know yet: it was added to the directory after
//  our last look (zauth reloads its store at the handshake). Look again now,
//  at most every 100 ms, and take in the additions only; the tick handles
//  removals (and cuts connections).
static void
s_notice_added (zb_auth_t *self, const char *key)
{
    int64_t now = zclock_usecs ();
    if (now - self->last_rescan_us < AUTH_RESCAN_US)
        return;
    self->last_rescan_us = now;
    zhashx_t *now_allowed = zhashx_new ();
    assert (now_allowed);
    uint64_t signature;
    if (s_scan (self, &signature, now_allowed) && zhashx_lookup (now_allowed, key)) {
        zhashx_update (self->allowed, key, (void *) "");
        self->stats.keys = zhashx_size (self->allowed);
    }
    zhashx_destroy (&now_allowed);
}

static const zb_policy_t *
s_policy (zb_auth_t *self, const char *key)
{
    if (!self->by_key || !key)
        return NULL;
    zb_policy_t *policy = (zb_policy_t *) zhashx_lookup (self->by_key, key);
    return policy ? policy : self->fallback;
}

int
zb_auth_client (zb_auth_t *self, zmq_msg_t *identity, zmq_msg_t *frame,
                zb_client_t *client, char *err, size_t errlen)
{
    assert (self);
    client->key = NULL;
    client->policy = NULL;
    client->identity = zmq_msg_data (identity);
    client->identity_len = zmq_msg_size (identity);
    if (!self->curve)
        return 0;
    const char *key = frame ? zmq_msg_gets (frame, "User-Id") : NULL;
    if (key && !zhashx_lookup (self->allowed, key))
        s_notice_added (self, key);
    if (!key || !zhashx_lookup (self->allowed, key)) {
        self->stats.denied++;
        snprintf (err, errlen, "client key %s is not allowed (any more): it is not in the "
                  "broker's curve-allow directory", key ? key : "(none)");
        return -1;
    }
    client->key = key;
    client->policy = s_policy (self, key);
    return 0;
}

uint64_t
zb_auth_rate_limit (zb_auth_t *self)
{
    assert (self);
    return self->rate;
}

size_t
zb_auth_admit (zb_auth_t *self, const zb_client_t *client, size_t count)
{
    assert (self);
    if (self->rate == 0 || count == 0)
        return count;
    //  The bucket's name: the key, or the connection's routing id in hex
    char name [2 * 256 + 2];
    if (client->key)
        snprintf (name, sizeof name, "k%s", client->key);
    else {
        name [0] = 'i';
        size_t len = client->identity_len < 255 ? client->identity_len : 255;
        const uint8_t *id = (const uint8_t *) client->identity;
        for (size_t i = 0; i < len; i++)
            snprintf (name + 1 + 2 * i, 3, "%02x", id [i]);
        name [1 + 2 * len] = 0;
    }
    int64_t now = zclock_usecs ();
    bucket_t *bucket = (bucket_t *) zhashx_lookup (self->buckets, name);
    if (!bucket) {
        if (zhashx_size (self->buckets) < AUTH_MAX_BUCKETS)
            bucket = (bucket_t *) malloc (sizeof (bucket_t));
        if (bucket) {
            *bucket = (bucket_t) { (double) self->burst, now };
            zhashx_insert (self->buckets, name, bucket);
        }
        else {
            //  Table full (more than 65,536 clients within a refill time):
            //  the newcomers share one bucket
            bucket = &self->overflow;
            if (bucket->last_us == 0)
                *bucket = (bucket_t) { (double) self->burst, now };
        }
    }
    double tokens = bucket->tokens + (double) (now - bucket->last_us) * (double) self->rate / 1e6;
    if (tokens > (double) self->burst)
        tokens = (double) self->burst;
    bucket->last_us = now;
    size_t admitted = tokens >= (double) count ? count : (size_t) tokens;
    bucket->tokens = tokens - (double) admitted;
    self->stats.throttled += count - admitted;
    return admitted;
}

zb_code_t
zb_auth_entry (const zb_client_t *client, zb_str_t source, zb_str_t detail_type,
               char *err, size_t errlen)
{
    const zb_policy_t *policy = client->policy;
    if (!policy)
        return ZB_OK;
    if (!s_names_match (&policy->sources, source.ptr, source.len)) {
        snprintf (err, errlen, "source '%.*s' is not one this client (%s) may publish",
                  (int) (source.len > 128 ? 128 : source.len), source.ptr, policy->name);
        return ZB_E_NOT_AUTHORIZED_SOURCE;
    }
    if (!s_names_match (&policy->detail_types, detail_type.ptr, detail_type.len)) {
        snprintf (err, errlen, "detail-type '%.*s' is not one this client (%s) may publish",
                  (int) detail_type.len, detail_type.ptr, policy->name);
        return ZB_E_NOT_AUTHORIZED_DETAIL_TYPE;
    }
    return ZB_OK;
}

bool
zb_auth_subscription (zb_auth_t *self, zmq_msg_t *msg, const char **key)
{
    assert (self);
    *key = NULL;
    if (!self->curve)
        return true;
    *key = zmq_msg_gets (msg, "User-Id");
    const uint8_t *data = (const uint8_t *) zmq_msg_data (msg);
    size_t size = zmq_msg_size (msg);
    if (size == 0 || data [0] != 1 || !self->by_key)
        return true;                    //  unsubscriptions, or no table
    const char *topic = (const char *) data + 1;
    size_t len = size - 1;
    static const char heartbeat [] = "$heartbeat";
    if (len == sizeof heartbeat && memcmp (topic, heartbeat, sizeof heartbeat) == 0)
        return true;                    //  "$heartbeat\0", the bus's own
    const zb_policy_t *policy = s_policy (self, *key);
    if (!policy)
        return false;                   //  no key: cannot be (CURVE always has one)
    if (len > 0 && topic [len - 1] == 0 && !memchr (topic, 0, len - 1))
        return s_names_match (&policy->topics, topic, len - 1);
    return s_names_cover (&policy->topics, topic, len);
}

//  The strings of an array value, checked one by one. false at the first
//  name the policy does not allow (copied into err).
static bool
s_replay_names (const zb_policy_t *policy, const msgpack_object *value, bool prefixes,
                char *err, size_t errlen)
{
    if (!value || value->type != MSGPACK_OBJECT_ARRAY)
        return true;                    //  replay.c answers the type error
    for (uint32_t i = 0; i < value->via.array.size; i++) {
        const msgpack_object *o = &value->via.array.ptr [i];
        if (o->type != MSGPACK_OBJECT_STR)
            continue;
        const char *p = o->via.str.ptr;
        size_t n = o->via.str.size;
        if (prefixes ? !s_names_cover (&policy->topics, p, n) : !s_names_match (&policy->topics, p, n)) {
            snprintf (err, errlen, "%s '%.*s' is not one this client (%s) may read",
                      prefixes ? "prefix" : "topic", (int) (n > 128 ? 128 : n), p, policy->name);
            return false;
        }
    }
    return true;
}

int
zb_auth_replay (zb_auth_t *self, const zb_client_t *client, zmq_msg_t *body,
                char *err, size_t errlen)
{
    assert (self);
    const zb_policy_t *policy = client->policy;
    if (!policy)
        return 0;
    msgpack_object root;
    char reason [256];
    int rc = 0;
    if (zb_msgpack_decode (zmq_msg_data (body), zmq_msg_size (body), 3, &self->zone, &root,
                           reason, sizeof reason) != 0 || root.type != MSGPACK_OBJECT_MAP)
        goto done;                      //  replay.c answers it
    const msgpack_object *topics = zb_map_get (&root, "topics");
    const msgpack_object *prefixes = zb_map_get (&root, "prefixes");
    bool some = (topics && topics->type == MSGPACK_OBJECT_ARRAY && topics->via.array.size)
             || (prefixes && prefixes->type == MSGPACK_OBJECT_ARRAY && prefixes->via.array.size);
    if (!some) {
        //  Every topic
        if (!s_names_cover (&policy->topics, "", 0)) {
            snprintf (err, errlen, "a replay of every topic needs topic = * (client %s); "
                      "ask for the topics it may read", policy->name);
            rc = -1;
        }
    }
    else
    if (!s_replay_names (policy, topics, false, err, errlen)
    ||  !s_replay_names (policy, prefixes, true, err, errlen))
        rc = -1;
done:
    msgpack_zone_clear (&self->zone);
    return rc;
}

static void
s_hex (const void *data, size_t len, char *out)
{
    const uint8_t *p = (const uint8_t *) data;
    if (len > 255)
        len = 255;
    for (size_t i = 0; i < len; i++)
        snprintf (out + 2 * i, 3, "%02x", p [i]);
    out [2 * len] = 0;
}

void
zb_auth_remember_peer (zb_auth_t *self, const zb_client_t *client)
{
    assert (self);
    if (!self->curve || !client->key)
        return;
    char hex [2 * 255 + 1];
    s_hex (client->identity, client->identity_len, hex);
    if (zhashx_size (self->peers) >= AUTH_MAX_PEERS && !zhashx_lookup (self->peers, hex))
        zhashx_purge (self->peers);     //  old connections: most are gone
    zhashx_update (self->peers, hex, (void *) client->key);
}

//  --------------------------------------------------------------------------
//  The directory watcher

static int
s_unhex (const char *hex, uint8_t *out)
{
    size_t len = strlen (hex) / 2;
    for (size_t i = 0; i < len; i++) {
        unsigned int byte;
        if (sscanf (hex + 2 * i, "%2x", &byte) != 1)
            return -1;
        out [i] = (uint8_t) byte;
    }
    return (int) len;
}

//  Forget the buckets that have refilled: a full bucket is what a new one is.
static void
s_buckets_purge (zb_auth_t *self)
{
    if (self->rate == 0 || zhashx_size (self->buckets) == 0)
        return;
    int64_t now = zclock_usecs ();
    zlistx_t *idle = zlistx_new ();
    assert (idle);
    for (bucket_t *b = (bucket_t *) zhashx_first (self->buckets); b;
         b = (bucket_t *) zhashx_next (self->buckets))
        if (b->tokens + (double) (now - b->last_us) * (double) self->rate / 1e6
            >= (double) self->burst)
            zlistx_add_end (idle, (void *) zhashx_cursor (self->buckets));
    for (const char *name = (const char *) zlistx_first (idle); name;
         name = (const char *) zlistx_next (idle))
        zhashx_delete (self->buckets, name);
    zlistx_destroy (&idle);
    if (self->overflow.last_us && zhashx_size (self->buckets) < AUTH_MAX_BUCKETS / 2)
        self->overflow.last_us = 0;
}

int
zb_auth_tick (zb_auth_t *self, zb_auth_peer_fn *close_peer, void *arg)
{
    assert (self);
    s_buckets_purge (self);
    if (!self->curve)
        return 0;
    uint64_t signature = 0;
    bool readable = s_scan (self, &signature, NULL);
    if (readable && self->have_signature && signature == self->signature)
        return 0;
    zhashx_t *allowed = zhashx_new ();
    assert (allowed);
    if (readable)
        readable = s_scan (self, &signature, allowed);
    if (!readable)
        fprintf (stderr, "zb-broker: curve-allow directory %s cannot be read: no key is "
                 "allowed until it can\n", self->allow_dir);
    self->signature = signature;
    self->have_signature = readable;
    //  zauth's own store notices only some changes (count, size, newest
    //  mtime in seconds): make it reload whatever changed
    zstr_sendx (self->zauth, "CURVE", self->allow_dir, NULL);
    zsock_wait (self->zauth);
    self->stats.reloads++;
    size_t removed = 0, added = 0;
    for (void *v = zhashx_first (self->allowed); v; v = zhashx_next (self->allowed))
        if (!zhashx_lookup (allowed, (const char *) zhashx_cursor (self->allowed)))
            removed++;
    for (void *v = zhashx_first (allowed); v; v = zhashx_next (allowed))
        if (!zhashx_lookup (self->allowed, (const char *) zhashx_cursor (allowed)))
            added++;
    zhashx_destroy (&self->allowed);
    self->allowed = allowed;
    self->stats.keys = zhashx_size (allowed);
    fprintf (stderr, "zb-broker: curve-allow %s reloaded: %zu keys allowed (%zu added, "
             "%zu removed)\n", self->allow_dir, zhashx_size (allowed), added, removed);
    if (removed == 0)
        return 0;
    //  The control connections of removed keys: their replays end now
    zlistx_t *gone = zlistx_new ();
    assert (gone);
    for (const char *key = (const char *) zhashx_first (self->peers); key;
         key = (const char *) zhashx_next (self->peers))
        if (!zhashx_lookup (allowed, key))
            zlistx_add_end (gone, (void *) zhashx_cursor (self->peers));
    for (const char *hex = (const char *) zlistx_first (gone); hex;
         hex = (const char *) zlistx_next (gone)) {
        uint8_t identity [256];
        int len = s_unhex (hex, identity);
        if (len > 0 && close_peer)
            close_peer (arg, identity, (size_t) len);
        zhashx_delete (self->peers, hex);
    }
    zlistx_destroy (&gone);
    return 1;
}

void
zb_auth_stats (zb_auth_t *self, zb_auth_stats_t *stats)
{
    assert (self);
    *stats = self->stats;
}

void
zb_auth_count_forbidden (zb_auth_t *self)
{
    assert (self);
    self->stats.forbidden_subscriptions++;
}

int
zb_auth_rules (const zb_client_t *client, char *err, size_t errlen)
{
    if (!client->policy || client->policy->rules)
        return 0;
    snprintf (err, errlen, "this client (%s) may not put or delete rules "
              "(authorization/%s/rules is not true)", client->policy->name, client->policy->name);
    return -1;
}

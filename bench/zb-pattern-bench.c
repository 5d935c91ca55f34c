/*  zb-pattern-bench - how fast the event-pattern matcher (common/pattern.h)
    filters store events, decoding included, and how that grows with the
    number of rules; every match set checked against the reference matcher.

    The data set: N store events (default 200,000), generated from a fixed
    seed, each the packed msgpack envelope the broker publishes (the nine
    keys of docs/PROTOCOL.md; detail: order id, store, channel, customer
    with address, client ip (IPv4 or IPv6), an array of 1-5 line items,
    amounts, payment, promo, flags), about 900 bytes each.

    For each operator type (exact, prefix, suffix, ignore-case, numeric,
    cidr, exists, anything-but, wildcard, $or mix, arrays of objects) it
    compiles a rule set of 5 rules, then one of 10,000 (the same 5 plus
    9,995 more specific ones), and for each set:
    - CHECKS: for every event (sets of up to 100 rules) or an evenly spaced
      sample (--check, default 1,000 events, for larger sets), the names the
      matcher returns equal the rules that the reference matcher
      (tests/support/pattern_ref.c, slow and written separately) says
      match. Any difference is printed and the program exits 1;
    - TIMES: single thread, for every event: zb_patterns_match_packed on
      the packed event, and msgpack_unpack of it (zone cleared, as the
      consumers do) then zb_patterns_match. The fastest of --runs runs
      (default 3) is kept: the least disturbed. The runs of the sets of
      one kind alternate (5 rules, 10,000 rules, 5 rules, ...), so that a
      change of the machine's load weighs on both sides of the ratio.

    The rules are made so that an event matches few of them (the 9,995 name
    specific customers, orders, SKUs, flags...), so that events/s measures
    the cost of looking, not of listing matches. Two rows measure what
    scales by nature: anything-but-all (10,000 rules that each match almost
    every event: the cost of listing ~10,000 names per event) and
    wildcard-infix ("*...*" wildcards, tried one by one).

    Prints markdown: the detail per rule set, then the summary with the
    targets of docs/BENCHMARKS.md. */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <msgpack.h>

#include "../common/pattern.h"
#include "../common/zb.h"
#include "../tests/support/pattern_ref.h"

static const char *prog = "zb-pattern-bench";
static bool break_check = false;       //  --break-check: the check must fail

static void
usage (FILE *out)
{
    fprintf (out,
        "usage: %s [-e EVENTS] [-r COUNTS] [-k KINDS] [-c CHECK] [-n RUNS] [-s SEED] [-q]\n"
        "Generates store events (packed msgpack envelopes, ~900 bytes), compiles rule sets of\n"
        "each operator type, checks the matcher's match sets against the reference matcher\n"
        "(exit 1 on any difference) and times decoding + matching, single thread.\n"
        "Prints markdown tables on stdout.\n"
        "  -e, --events N     events in the data set (default 200000)\n"
        "  -r, --rules LIST   rule counts, comma-separated (default 5,10000)\n"
        "  -k, --kinds LIST   operator types, comma-separated (default all: exact,prefix,\n"
        "                     suffix,ignore-case,numeric,cidr,exists,anything-but,wildcard,\n"
        "                     mixed-or,array,anything-but-all,wildcard-infix)\n"
        "  -c, --check N      events checked against the reference for sets of more than\n"
        "                     100 rules, evenly spaced (default 1000; 0: every event);\n"
        "                     smaller sets are checked on every event\n"
        "  -n, --runs N       timed runs per rule set, the fastest is kept (default 3)\n"
        "  -s, --seed N       seed of the data set and rules (default 20261126)\n"
        "  -q, --quick        a quick correctness run: 1000 events, 5 and 200 rules,\n"
        "                     every event checked, one timed run\n"
        "      --break-check  flip one answer of the reference, and exit 0 only when the\n"
        "                     check caught it (the test suite proves the check with it)\n"
        "  -h, --help         this help\n"
        "  -V, --version      print the version\n"
        "Examples:\n"
        "  %s\n"
        "  %s -k exact,anything-but -e 50000\n", prog, prog, prog);
}

static double
now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

//  --------------------------------------------------------------------------
//  Random numbers: xorshift64, seeded

static uint64_t rng;

static void
s_seed (uint64_t seed)
{
    rng = seed * 0x9E3779B97F4A7C15ULL | 1;
}

static uint32_t
s_rand (uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t) ((rng >> 11) % n);
}

#define N_OF(a) (sizeof (a) / sizeof ((a) [0]))
#define PICK(a) ((a) [s_rand (N_OF (a))])

//  --------------------------------------------------------------------------
//  The data set

static const char *first_names [] = {
    "Sylvara", "Orin", "Maelis", "Tamsin", "Corvin", "Ysolde", "Aldric", "Brisa", "Cael", "Dorian",
    "Elowen", "Fenwick", "Galen", "Hester", "Idris", "Juniper", "Kestrel", "Lark", "Merrin", "Nyssa",
    "Osric", "Perrin", "Quilla", "Rowan", "Saoirse", "Tobin", "Una", "Vesper", "Wren", "Xander",
    "Yara", "Zephyr" };
static const char *last_names [] = {
    "Moonbrook", "Ashdown", "Fairweather", "Holloway", "Quill", "Blackwood", "Thornbury", "Larkspur",
    "Ravensworth", "Hawthorne", "Wilder", "Oakhart", "Penhallow", "Greaves", "Marlow", "Stroud",
    "Vance", "Winslow", "Calloway", "Delacroix", "Everly", "Fenn", "Gale", "Harrow" };
static const char *domains [] = { "example.com", "mail.example", "shop.test", "corp.example.org" };
static const char *tiers [] = { "bronze", "bronze", "bronze", "silver", "silver", "gold", "platinum" };
static const struct { const char *city, *country; } cities [] = {
    { "Lyon", "FR" }, { "Paris", "FR" }, { "Lille", "FR" }, { "Berlin", "DE" }, { "Hamburg", "DE" },
    { "Munich", "DE" }, { "Madrid", "ES" }, { "Sevilla", "ES" }, { "Porto", "PT" }, { "Lisbon", "PT" },
    { "Milan", "IT" }, { "Turin", "IT" }, { "Dublin", "IE" }, { "Cork", "IE" }, { "Leeds", "GB" },
    { "Bristol", "GB" }, { "Boston", "US" }, { "Denver", "US" }, { "Austin", "US" }, { "Seattle", "US" },
    { "Sydney", "AU" }, { "Perth", "AU" } };
static const char *streets [] = { "Rue des Lilas", "Hauptstrasse", "Calle Mayor", "Via Roma", "High Street",
                                  "Main Street", "Oak Avenue", "Harbour Road", "Station Lane", "Mill Way" };
static const char *regions [] = { "eu-west-1", "eu-west-1", "eu-central-1", "us-east-1", "us-west-2",
                                  "ap-southeast-2" };
static const char *accounts [] = { "123456789012", "210987654321", "000000000042" };
static const struct { const char *name; const char *nouns [4]; } categories [] = {
    { "Books", { "Novel", "Atlas", "Cookbook", "Guide" } },
    { "Monitors", { "Monitor", "Display", "Screen", "Panel" } },
    { "Camera", { "Camera", "Lens", "Tripod", "Flash" } },
    { "Tablets", { "Tablet", "Stylus", "Case", "Charger" } },
    { "Shoes", { "Sneaker", "Boot", "Sandal", "Loafer" } },
    { "Speakers", { "Speaker", "Soundbar", "Subwoofer", "Amp" } },
    { "Groceries", { "Coffee", "Tea", "Olive Oil", "Pasta" } },
    { "Toys", { "Puzzle", "Kite", "Robot", "Blocks" } },
    { "Garden", { "Hose", "Rake", "Planter", "Lamp" } },
    { "Kitchen", { "Kettle", "Pan", "Knife", "Lamp" } },
    { "Sports", { "Racket", "Ball", "Helmet", "Bottle" } },
    { "Office", { "Notebook", "Pen", "Stapler", "Lamp" } } };
static const char *adjectives [] = { "Compact", "Deluxe", "Classic", "Smart", "Eco", "Pro", "Mini",
                                     "Vintage", "Ultra", "Travel" };
static const char *channels [] = { "in-store", "in-store", "in-store", "online", "online", "mobile", "phone" };
static const char *methods [] = { "card", "card", "card", "card", "cash", "voucher", "wallet" };
static const char *currencies [] = { "EUR", "EUR", "USD", "GBP" };
static const char *promos [] = { "BLACKFRIDAY25", "WELCOME10", "LOYALTY5", "SPRING-SALE" };

#define N_STORES        400
#define N_CUSTOMERS     200000
#define N_SKUS          100000
#define N_FLAGS         20000

static void
s_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body (pk, s, strlen (s));
}

static void
s_kv (msgpack_packer *pk, const char *key, const char *value)
{
    s_str (pk, key);
    s_str (pk, value);
}

static void
s_kv_double (msgpack_packer *pk, const char *key, double value)
{
    s_str (pk, key);
    msgpack_pack_double (pk, value);
}

static void
s_kv_int (msgpack_packer *pk, const char *key, int64_t value)
{
    s_str (pk, key);
    msgpack_pack_int64 (pk, value);
}

static void
s_uuid (char *buf, size_t size)
{
    snprintf (buf, size, "%08x-%04x-4%03x-%04x-%08x%04x", s_rand (0xFFFFFFFF), s_rand (0x10000),
              s_rand (0x1000), 0x8000 | s_rand (0x4000), s_rand (0xFFFFFFFF), s_rand (0x10000));
}

static void
s_pack_event (msgpack_packer *pk)
{
    char buf [160];
    uint32_t kind = s_rand (20);
    const char *detail_type = kind < 13? "sales-events": kind < 17? "inventory-events": "returns-events";
    bool has_customer = kind < 13 || kind >= 17;
    const char *region = PICK (regions), *account = PICK (accounts);
    uint32_t store = s_rand (N_STORES);
    uint32_t store_city = store % N_OF (cities);

    msgpack_pack_map (pk, 9);
    s_kv (pk, "version", "0");
    s_uuid (buf, sizeof (buf));
    s_kv (pk, "id", buf);
    s_kv (pk, "detail-type", detail_type);
    s_kv (pk, "source", (const char *[]) { "store.pos", "store.web", "store.warehouse" } [s_rand (3)]);
    s_kv (pk, "account", account);
    snprintf (buf, sizeof (buf), "2026-11-%02uT%02u:%02u:%02u.%03uZ", 20 + s_rand (10), s_rand (24),
              s_rand (60), s_rand (60), s_rand (1000));
    s_kv (pk, "time", buf);
    s_kv (pk, "region", region);
    s_str (pk, "resources");
    msgpack_pack_array (pk, 1);
    snprintf (buf, sizeof (buf), "arn:zb:store:%s:%s:store/store_%04u", region, account, store);
    s_str (pk, buf);

    s_str (pk, "detail");
    uint32_t n_flags = s_rand (4);
    msgpack_pack_map (pk, 8 + (has_customer? 2: 0) + (n_flags? 1: 0));
    snprintf (buf, sizeof (buf), "ORD-%06x%06x", s_rand (0x1000000), s_rand (0x1000000));
    s_kv (pk, "order_id", buf);
    s_str (pk, "store");
    msgpack_pack_map (pk, 4);
    snprintf (buf, sizeof (buf), "store_%04u", store);
    s_kv (pk, "id", buf);
    snprintf (buf, sizeof (buf), "%s %s", cities [store_city].city, store % 3? "Central": "Riverside");
    s_kv (pk, "name", buf);
    s_kv (pk, "city", cities [store_city].city);
    s_kv (pk, "country", cities [store_city].country);
    s_kv (pk, "channel", PICK (channels));
    s_str (pk, "ip");
    uint32_t ip = s_rand (10);
    if (ip < 5)
        snprintf (buf, sizeof (buf), "10.%u.%u.%u", s_rand (256), s_rand (256), 1 + s_rand (254));
    else
    if (ip < 7)
        snprintf (buf, sizeof (buf), "192.168.%u.%u", s_rand (256), 1 + s_rand (254));
    else
    if (ip < 8)
        snprintf (buf, sizeof (buf), "172.%u.%u.%u", 16 + s_rand (16), s_rand (256), 1 + s_rand (254));
    else
        snprintf (buf, sizeof (buf), "2001:db8:%x:%x::%x", s_rand (0x10000), s_rand (0x100), 1 + s_rand (0xFFFF));
    s_str (pk, buf);

    if (has_customer) {
        s_str (pk, "customer");
        msgpack_pack_map (pk, 6);
        uint32_t customer = s_rand (N_CUSTOMERS);
        snprintf (buf, sizeof (buf), "C-%06u", customer);
        s_kv (pk, "id", buf);
        const char *first = first_names [customer % N_OF (first_names)];
        const char *last = last_names [customer / N_OF (first_names) % N_OF (last_names)];
        snprintf (buf, sizeof (buf), "%s %s", first, last);
        s_kv (pk, "name", buf);
        char lower [64];
        snprintf (lower, sizeof (lower), "%s.%s%u", first, last, customer % 100);
        for (char *c = lower; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char) (*c + 32);
        snprintf (buf, sizeof (buf), "%s@%s", lower, domains [customer % N_OF (domains)]);
        s_kv (pk, "email", buf);
        s_kv (pk, "tier", tiers [customer % N_OF (tiers)]);
        s_kv_int (pk, "loyalty_points", customer % 7 == 0? 0: (int64_t) s_rand (20000));
        s_str (pk, "address");
        msgpack_pack_map (pk, 4);
        snprintf (buf, sizeof (buf), "%u %s", 1 + customer % 180, streets [customer % N_OF (streets)]);
        s_kv (pk, "street", buf);
        uint32_t city = customer % N_OF (cities);
        s_kv (pk, "city", cities [city].city);
        snprintf (buf, sizeof (buf), "%05u", customer * 7 % 100000);
        s_kv (pk, "postcode", buf);
        s_kv (pk, "country", cities [city].country);
    }

    s_str (pk, "items");
    uint32_t n_items = 1 + s_rand (4);
    msgpack_pack_array (pk, n_items);
    int64_t subtotal = 0;
    for (uint32_t i = 0; i < n_items; i++) {
        uint32_t sku = s_rand (N_SKUS);
        uint32_t cat = sku % N_OF (categories);
        msgpack_pack_map (pk, 5);
        snprintf (buf, sizeof (buf), "SKU-%06u", sku);
        s_kv (pk, "sku", buf);
        snprintf (buf, sizeof (buf), "%s %s", adjectives [sku / 16 % N_OF (adjectives)],
                  categories [cat].nouns [sku / 7 % 4]);
        s_kv (pk, "name", buf);
        s_kv (pk, "category", categories [cat].name);
        uint32_t qty = 1 + (s_rand (4)? s_rand (3): s_rand (10));
        s_kv_int (pk, "qty", qty);
        int64_t price = 99 + (int64_t) (sku * 37 % 49900);
        s_kv_double (pk, "unit_price", (double) price / 100.0);
        subtotal += price * qty;
    }

    if (has_customer) {
        s_str (pk, "payment");
        const char *method = PICK (methods);
        bool card = !strcmp (method, "card");
        msgpack_pack_map (pk, card? 3: 2);
        s_kv (pk, "method", method);
        if (card) {
            snprintf (buf, sizeof (buf), "%04u", s_rand (10000));
            s_kv (pk, "card_last4", buf);
        }
        s_str (pk, "approved");
        (s_rand (20)? msgpack_pack_true: msgpack_pack_false) (pk);
    }
    s_str (pk, "amounts");
    msgpack_pack_map (pk, 5);
    int64_t tax = subtotal / 5, shipping = s_rand (3)? 0: 499;
    s_kv_double (pk, "subtotal", (double) subtotal / 100.0);
    s_kv_double (pk, "tax", (double) tax / 100.0);
    s_kv_double (pk, "shipping", (double) shipping / 100.0);
    s_kv_double (pk, "total", (double) (subtotal + tax + shipping) / 100.0);
    s_kv (pk, "currency", PICK (currencies));
    s_str (pk, "promo");
    if (s_rand (5))
        msgpack_pack_nil (pk);
    else
        s_str (pk, PICK (promos));
    if (n_flags) {
        s_str (pk, "flags");
        msgpack_pack_map (pk, n_flags);
        for (uint32_t i = 0; i < n_flags; i++) {
            //  Keys of one map are distinct
            snprintf (buf, sizeof (buf), "flag_%u", i * (N_FLAGS / 3) + s_rand (N_FLAGS / 3));
            s_str (pk, buf);
            msgpack_pack_true (pk);
        }
    }
    s_str (pk, "note");
    s_str (pk, s_rand (7)? "": "leave at the back door");
}

//  --------------------------------------------------------------------------
//  Rule sets: rule i of a set, i < 5 the common ones (the same in every
//  set), then specific ones that each match few events

typedef void (*s_make_fn) (char *out, size_t size, int i);

static void
s_exact (char *out, size_t size, int i)
{
    static const char *common [] = {
        "{\"detail\": {\"store\": {\"id\": [\"store_0007\"]}}}",
        "{\"detail-type\": [\"returns-events\"], \"region\": [\"eu-west-1\"]}",
        "{\"detail\": {\"customer\": {\"tier\": [\"platinum\"]}}}",
        "{\"detail\": {\"payment\": {\"method\": [\"voucher\"]}, \"channel\": [\"online\"]}}",
        "{\"detail\": {\"items\": {\"category\": [\"Books\"]}, \"promo\": [null]}}",
    };
    if (i < 5)
        snprintf (out, size, "%s", common [i]);
    else
    if (i % 4)
        snprintf (out, size, "{\"detail\": {\"customer\": {\"id\": [\"C-%06u\"]}}}", s_rand (N_CUSTOMERS));
    else
        snprintf (out, size, "{\"detail\": {\"items\": {\"sku\": [\"SKU-%06u\", \"SKU-%06u\"]}}}",
                  s_rand (N_SKUS), s_rand (N_SKUS));
}

static void
s_prefix (char *out, size_t size, int i)
{
    static const char *common [] = {
        "{\"resources\": [{\"prefix\": \"arn:zb:store:eu-west-1:\"}]}",
        "{\"detail\": {\"customer\": {\"email\": [{\"prefix\": \"sylvara.\"}]}}}",
        "{\"detail\": {\"order_id\": [{\"prefix\": \"ORD-0\"}]}}",
        "{\"detail\": {\"items\": {\"sku\": [{\"prefix\": \"SKU-00\"}]}}}",
        "{\"detail\": {\"ip\": [{\"prefix\": \"192.168.\"}]}}",
    };
    if (i < 5)
        snprintf (out, size, "%s", common [i]);
    else
    if (i % 2)
        snprintf (out, size, "{\"detail\": {\"order_id\": [{\"prefix\": \"ORD-%0*x\"}]}}",
                  4 + i % 3, s_rand (1u << (4 * (4 + i % 3))));
    else
        snprintf (out, size, "{\"detail\": {\"items\": {\"sku\": [{\"prefix\": \"SKU-%05u\"}]}}}",
                  s_rand (N_SKUS / 10));
}

static void
s_suffix (char *out, size_t size, int i)
{
    static const char *common [] = {
        "{\"detail\": {\"customer\": {\"email\": [{\"suffix\": \"@example.com\"}]}}}",
        "{\"resources\": [{\"suffix\": \"/store_0042\"}]}",
        "{\"detail\": {\"items\": {\"name\": [{\"suffix\": \" Lamp\"}]}}}",
        "{\"detail\": {\"order_id\": [{\"suffix\": \"ff\"}]}}",
        "{\"detail\": {\"customer\": {\"address\": {\"postcode\": [{\"suffix\": \"00\"}]}}}}",
    };
    if (i < 5)
        snprintf (out, size, "%s", common [i]);
    else
    if (i % 2)
        snprintf (out, size, "{\"detail\": {\"order_id\": [{\"suffix\": \"%05x\"}]}}", s_rand (0x100000));
    else
        snprintf (out, size, "{\"detail\": {\"customer\": {\"id\": [{\"suffix\": \"%05u\"}]}}}",
                  s_rand (100000));
}

static void
s_ignore_case (char *out, size_t size, int i)
{
    static const char *common [] = {
        "{\"detail\": {\"items\": {\"category\": [{\"equals-ignore-case\": \"BOOKS\"}]}}}",
        "{\"detail\": {\"customer\": {\"address\": {\"city\": [{\"equals-ignore-case\": \"LYON\"}]}}}}",
        "{\"detail\": {\"channel\": [{\"equals-ignore-case\": \"ONLINE\"}]}}",
        "{\"detail\": {\"payment\": {\"method\": [{\"equals-ignore-case\": \"Voucher\"}]}}}",
        "{\"detail\": {\"customer\": {\"name\": [{\"equals-ignore-case\": \"sylvara moonbrook\"}]}}}",
    };
    if (i < 5) {
        snprintf (out, size, "%s", common [i]);
        return;
    }
    //  A customer's e-mail in capitals
    uint32_t customer = s_rand (N_CUSTOMERS);
    char email [96];
    snprintf (email, sizeof (email), "%s.%s%u@%s", first_names [customer % N_OF (first_names)],
              last_names [customer / N_OF (first_names) % N_OF (last_names)], customer % 100,
              domains [customer % N_OF (domains)]);
    for (char *c = email; *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char) (*c - 32);
    snprintf (out, size, "{\"detail\": {\"customer\": {\"email\": [{\"equals-ignore-case\": \"%s\"}]}}}", email);
}

static void
s_numeric (char *out, size_t size, int i)
{
    static const char *common [] = {
        "{\"detail\": {\"amounts\": {\"total\": [{\"numeric\": [\">\", 1500]}]}}}",
        "{\"detail\": {\"items\": {\"qty\": [{\"numeric\": [\">=\", 8]}]}}}",
        "{\"detail\": {\"amounts\": {\"total\": [{\"numeric\": [\">=\", 0, \"<\", 50]}]}}}",
        "{\"detail\": {\"customer\": {\"loyalty_points\": [{\"numeric\": [\"=\", 0]}]}}}",
        "{\"detail\": {\"items\": {\"unit_price\": [{\"numeric\": [\"<\", 5]}]}}}",
    };
    if (i < 5)
        snprintf (out, size, "%s", common [i]);
    else
    if (i % 2) {
        uint32_t cents = s_rand (300000);
        snprintf (out, size, "{\"detail\": {\"amounts\": {\"total\": [{\"numeric\": [\">=\", %u.%02u, \"<\", %u.%02u]}]}}}",
                  cents / 100, cents % 100, (cents + 10) / 100, (cents + 10) % 100);
    }
    else
        snprintf (out, size, "{\"detail\": {\"customer\": {\"loyalty_points\": [{\"numeric\": [\"=\", %u]}]}}}",
                  1 + s_rand (19999));
}

static void
s_cidr (char *out, size_t size, int i)
{
    static const char *common [] = {
        "{\"detail\": {\"ip\": [{\"cidr\": \"10.0.0.0/8\"}]}}",
        "{\"detail\": {\"ip\": [{\"cidr\": \"192.168.0.0/16\"}]}}",
        "{\"detail\": {\"ip\": [{\"cidr\": \"172.16.0.0/12\"}]}}",
        "{\"detail\": {\"ip\": [{\"cidr\": \"2001:db8::/32\"}]}}",
        "{\"detail\": {\"ip\": [{\"cidr\": \"10.20.0.0/16\"}]}}",
    };
    if (i < 5)
        snprintf (out, size, "%s", common [i]);
    else
    if (i % 4)
        snprintf (out, size, "{\"detail\": {\"ip\": [{\"cidr\": \"10.%u.%u.0/24\"}]}}", s_rand (256), s_rand (256));
    else
        snprintf (out, size, "{\"detail\": {\"ip\": [{\"cidr\": \"2001:db8:%x::/48\"}]}}", s_rand (0x10000));
}

static void
s_exists (char *out, size_t size, int i)
{
    static const char *common [] = {
        "{\"detail\": {\"customer\": {\"id\": [{\"exists\": true}]}}}",
        "{\"detail\": {\"payment\": {\"card_last4\": [{\"exists\": true}]}}}",
        "{\"detail\": {\"promo\": [{\"exists\": true}], \"channel\": [\"mobile\"]}}",
        "{\"detail\": {\"customer\": {\"address\": {\"postcode\": [{\"exists\": true}]}}}}",
        "{\"detail\": {\"flags\": {\"flag_7\": [{\"exists\": true}]}}}",
    };
    if (i < 5)
        snprintf (out, size, "%s", common [i]);
    else
        snprintf (out, size, "{\"detail\": {\"flags\": {\"flag_%u\": [{\"exists\": true}]}}}", s_rand (N_FLAGS));
}

static void
s_anything_but (char *out, size_t size, int i)
{
    static const char *common [] = {
        "{\"detail-type\": [\"sales-events\"], \"detail\": {\"channel\": [{\"anything-but\": [\"in-store\", \"phone\"]}]}}",
        "{\"detail\": {\"items\": {\"category\": [{\"anything-but\": [\"Groceries\", \"Books\", \"Toys\"]}]}}}",
        "{\"detail\": {\"payment\": {\"method\": [{\"anything-but\": {\"prefix\": \"ca\"}}]}}}",
        "{\"detail\": {\"customer\": {\"tier\": [{\"anything-but\": {\"equals-ignore-case\": [\"BRONZE\", \"silver\"]}}]}}}",
        "{\"detail\": {\"amounts\": {\"currency\": [{\"anything-but\": \"EUR\"}]}, \"promo\": [{\"anything-but\": {\"suffix\": \"10\"}}]}}",
    };
    if (i < 5) {
        snprintf (out, size, "%s", common [i]);
        return;
    }
    //  A customer's orders, but not from some stores / SKUs / with some
    //  e-mails: each rule's exclusions are its own
    uint32_t customer = s_rand (N_CUSTOMERS);
    switch (i % 3) {
        case 0:
            snprintf (out, size, "{\"detail\": {\"customer\": {\"id\": [\"C-%06u\"]}, \"store\": {\"id\": "
                      "[{\"anything-but\": [\"store_%04u\", \"store_%04u\"]}]}}}",
                      customer, s_rand (N_STORES), s_rand (N_STORES));
            break;
        case 1:
            snprintf (out, size, "{\"detail\": {\"customer\": {\"id\": [\"C-%06u\"]}, \"items\": {\"sku\": "
                      "[{\"anything-but\": {\"prefix\": \"SKU-%03u\"}}]}}}", customer, s_rand (1000));
            break;
        default:
            snprintf (out, size, "{\"detail\": {\"customer\": {\"id\": [\"C-%06u\"]}, \"order_id\": "
                      "[{\"anything-but\": {\"suffix\": [\"%03x\", \"%03x\"]}}]}}",
                      customer, s_rand (0x1000), s_rand (0x1000));
            break;
    }
}

static void
s_anything_but_all (char *out, size_t size, int i)
{
    //  Every rule matches every event but a few: listing the matches is the work
    snprintf (out, size, "{\"detail\": {\"store\": {\"id\": [{\"anything-but\": [\"store_%04u\", \"x%d\"]}]}}}",
              s_rand (N_STORES), i);
}

static void
s_wildcard (char *out, size_t size, int i)
{
    static const char *common [] = {
        "{\"detail\": {\"customer\": {\"email\": [{\"wildcard\": \"*@example.com\"}]}}}",
        "{\"resources\": [{\"wildcard\": \"arn:zb:store:*:store/store_00*\"}]}",
        "{\"detail\": {\"items\": {\"name\": [{\"wildcard\": \"*Lamp*\"}]}}}",
        "{\"detail\": {\"order_id\": [{\"wildcard\": \"ORD-*a\"}]}}",
        "{\"detail\": {\"customer\": {\"name\": [{\"wildcard\": \"S* M*\"}]}}}",
    };
    if (i < 5)
        snprintf (out, size, "%s", common [i]);
    else
    if (i % 2)
        snprintf (out, size, "{\"detail\": {\"order_id\": [{\"wildcard\": \"ORD-%04x*%x\"}]}}",
                  s_rand (0x10000), s_rand (16));
    else
        snprintf (out, size, "{\"detail\": {\"customer\": {\"email\": [{\"wildcard\": \"*%u@%s\"}]}}}",
                  s_rand (100), domains [s_rand (N_OF (domains))]);
}

static void
s_wildcard_infix (char *out, size_t size, int i)
{
    if (i < 5)
        s_wildcard (out, size, i);
    else
        snprintf (out, size, "{\"detail\": {\"customer\": {\"email\": [{\"wildcard\": \"*.%c%s%u@*\"}]}}}",
                  last_names [s_rand (N_OF (last_names))][0] + 32, last_names [s_rand (N_OF (last_names))] + 1,
                  s_rand (100));
}

static void
s_mixed_or (char *out, size_t size, int i)
{
    static const char *common [] = {
        "{\"detail-type\": [\"sales-events\"], \"$or\": [{\"detail\": {\"amounts\": {\"total\": [{\"numeric\": [\">\", 1000]}]}}},"
        " {\"detail\": {\"customer\": {\"tier\": [\"platinum\"]}}}]}",
        "{\"detail\": {\"$or\": [{\"channel\": [\"mobile\"]}, {\"payment\": {\"method\": [\"wallet\"]}}], \"store\": {\"country\": [\"FR\"]}}}",
        "{\"$or\": [{\"region\": [{\"prefix\": \"us-\"}]}, {\"detail\": {\"ip\": [{\"cidr\": \"2001:db8::/32\"}]}}]}",
        "{\"detail\": {\"$or\": [{\"promo\": [\"WELCOME10\"]}, {\"customer\": {\"loyalty_points\": [{\"numeric\": [\">=\", 19000]}]}},"
        " {\"items\": {\"category\": [\"Toys\"], \"qty\": [{\"numeric\": [\">=\", 5]}]}}]}}",
        "{\"source\": [\"store.web\"], \"detail\": {\"$or\": [{\"amounts\": {\"shipping\": [0]}}, {\"note\": [{\"exists\": false}]}]}}",
    };
    if (i < 5) {
        snprintf (out, size, "%s", common [i]);
        return;
    }
    uint32_t cents = 200000 + s_rand (100000);
    snprintf (out, size, "{\"detail\": {\"$or\": [{\"customer\": {\"id\": [\"C-%06u\"]}}, {\"order_id\": [{\"prefix\": \"ORD-%05x\"}]},"
              " {\"store\": {\"id\": [\"store_%04u\"]}, \"amounts\": {\"total\": [{\"numeric\": [\">\", %u.%02u]}]}}]}}",
              s_rand (N_CUSTOMERS), s_rand (0x100000), s_rand (N_STORES), cents / 100, cents % 100);
}

static void
s_array (char *out, size_t size, int i)
{
    static const char *common [] = {
        "{\"detail\": {\"items\": {\"category\": [\"Books\"], \"qty\": [{\"numeric\": [\">=\", 3]}]}}}",
        "{\"detail\": {\"items\": {\"sku\": [{\"prefix\": \"SKU-00\"}], \"unit_price\": [{\"numeric\": [\"<\", 50]}]}}}",
        "{\"detail\": {\"items\": {\"category\": [\"Toys\"], \"name\": [{\"prefix\": \"Smart\"}]}}}",
        "{\"detail\": {\"items\": {\"name\": [{\"suffix\": \"Lamp\"}], \"qty\": [1]}}}",
        "{\"detail\": {\"items\": {\"category\": [\"Groceries\"]}, \"channel\": [\"online\"]}}",
    };
    if (i < 5)
        snprintf (out, size, "%s", common [i]);
    else
        snprintf (out, size, "{\"detail\": {\"items\": {\"sku\": [\"SKU-%06u\"], \"qty\": [{\"numeric\": [\">=\", 2]}]}}}",
                  s_rand (N_SKUS));
}

typedef struct {
    const char *name;
    s_make_fn make;
    bool deterministic;         //  the <= 2x target applies
    bool fast;                  //  the >= 1,000,000 events/s target applies
} s_kind_t;

static const s_kind_t kinds [] = {
    { "exact", s_exact, true, true },
    { "prefix", s_prefix, true, true },
    { "suffix", s_suffix, true, true },
    { "ignore-case", s_ignore_case, true, false },
    { "numeric", s_numeric, true, true },
    { "cidr", s_cidr, true, false },
    { "exists", s_exists, true, false },
    { "anything-but", s_anything_but, true, false },
    { "wildcard", s_wildcard, false, false },
    { "mixed-or", s_mixed_or, false, false },
    { "array", s_array, false, false },
    { "anything-but-all", s_anything_but_all, false, false },
    { "wildcard-infix", s_wildcard_infix, false, false },
};
#define N_KINDS (sizeof (kinds) / sizeof (kinds [0]))

//  --------------------------------------------------------------------------
//  Running

typedef struct {
    const char *data;           //  all events, packed back to back
    size_t *offsets;            //  n + 1
    size_t n;
} s_events_t;

typedef struct {
    double events_per_s;        //  msgpack_unpack + zb_patterns_match
    double packed_per_s;        //  zb_patterns_match_packed
    double matched_per_event;
    double build_ms;
    size_t checked;
    bool ok;
} s_result_t;

static bool
s_in_list (const char *list, const char *name)
{
    if (!list)
        return true;
    size_t len = strlen (name);
    for (const char *p = list; *p; ) {
        const char *end = strchr (p, ',');
        size_t n = end? (size_t) (end - p): strlen (p);
        if (n == len && !memcmp (p, name, n))
            return true;
        p += n + (end? 1: 0);
    }
    return false;
}

static bool
s_unpack (const s_events_t *events, size_t e, msgpack_zone *zone, msgpack_object *obj)
{
    size_t off = 0;
    msgpack_zone_clear (zone);
    return msgpack_unpack (events->data + events->offsets [e], events->offsets [e + 1] - events->offsets [e],
                           &off, zone, obj) == MSGPACK_UNPACK_SUCCESS;
}

//  Matcher against reference on the events to check; false on any difference.
static bool
s_check (const s_kind_t *kind, zb_patterns_t *set, pattern_ref_t **refs, char **texts, int n_rules,
         const s_events_t *events, size_t check, size_t *checked)
{
    msgpack_zone zone;
    msgpack_zone_init (&zone, 4096);
    pattern_ref_event_t *ref_event = pattern_ref_event_new ();
    const char **names = malloc ((size_t) n_rules * sizeof (char *));
    bool *got = calloc ((size_t) n_rules, sizeof (bool));
    if (!ref_event || !names || !got) {
        fprintf (stderr, "%s: out of memory\n", prog);
        exit (1);
    }
    size_t step = check == 0 || check >= events->n? 1: events->n / check;
    size_t differences = 0;
    *checked = 0;
    for (size_t e = 0; e < events->n && differences < 5; e += step) {
        msgpack_object obj;
        if (!s_unpack (events, e, &zone, &obj) || pattern_ref_event_load (ref_event, &obj)) {
            fprintf (stderr, "%s: event %zu cannot be decoded or flattened\n", prog, e);
            exit (1);
        }
        size_t n = zb_patterns_match (set, &obj, names, (size_t) n_rules);
        if (n > (size_t) n_rules) {
            fprintf (stderr, "%s: %s: event %zu: %zu matches for %d rules\n", prog, kind->name, e, n, n_rules);
            differences++;
            continue;
        }
        memset (got, 0, (size_t) n_rules * sizeof (bool));
        for (size_t k = 0; k < n; k++) {
            int rule = atoi (names [k]);
            if (got [rule]) {
                fprintf (stderr, "%s: %s: event %zu: rule %d reported twice\n", prog, kind->name, e, rule);
                differences++;
            }
            got [rule] = true;
        }
        //  The packed walk: the same set
        size_t n_packed = zb_patterns_match_packed (set, events->data + events->offsets [e],
                                                    events->offsets [e + 1] - events->offsets [e],
                                                    names, (size_t) n_rules);
        bool same = n_packed == n;
        for (size_t k = 0; k < n_packed && same; k++)
            same = got [atoi (names [k])];
        if (!same) {
            fprintf (stderr, "%s: %s, %d rules, event %zu: zb_patterns_match_packed differs (%zu names, %zu)\n",
                     prog, kind->name, n_rules, e, n_packed, n);
            differences++;
        }
        for (int r = 0; r < n_rules && differences < 5; r++) {
            bool expected = pattern_ref_match (refs [r], ref_event);
            if (break_check && e == 0 && r == 0)
                expected = !expected;
            if (got [r] == expected)
                continue;
            differences++;
            fprintf (stderr, "%s: %s, %d rules, event %zu: the matcher says %s, the reference %s\n"
                     "  rule %d: %s\n  event: ", prog, kind->name, n_rules, e,
                     got [r]? "match": "no match", expected? "match": "no match", r, texts [r]);
            msgpack_object_print (stderr, obj);
            fprintf (stderr, "\n");
        }
        (*checked)++;
    }
    free (got);
    free (names);
    pattern_ref_event_destroy (&ref_event);
    msgpack_zone_destroy (&zone);
    return differences == 0;
}

//  One rule set, compiled and checked, ready to be timed
typedef struct {
    zb_patterns_t *set;
    int n_rules;
    const char **names;
    msgpack_zone zone;
    s_result_t result;
} s_setup_t;

static void
s_setup (s_setup_t *setup, const s_kind_t *kind, int n_rules, const s_events_t *events, size_t check,
         uint64_t seed)
{
    s_result_t result = { 0, 0, 0, 0, 0, true };
    zb_patterns_t *set = zb_patterns_new ();
    pattern_ref_t **refs = calloc ((size_t) n_rules, sizeof (pattern_ref_t *));
    char **texts = calloc ((size_t) n_rules, sizeof (char *));
    const char **names = malloc ((size_t) n_rules * sizeof (char *));
    if (!set || !refs || !texts || !names) {
        fprintf (stderr, "%s: out of memory\n", prog);
        exit (1);
    }
    //  The same rules whatever the set size: seeded by the kind's rank
    s_seed (seed ^ (0x51ED270B7A3C9F1DULL * (uint64_t) (kind - kinds + 1)));
    for (int i = 0; i < n_rules; i++) {
        char pattern [1024], name [16], err [512];
        kind->make (pattern, sizeof (pattern), i);
        snprintf (name, sizeof (name), "%d", i);
        if (zb_patterns_add (set, name, pattern, strlen (pattern), err, sizeof (err))) {
            fprintf (stderr, "%s: rule %s rejected: %s\n", prog, pattern, err);
            exit (1);
        }
        texts [i] = strdup (pattern);
        refs [i] = pattern_ref_new (pattern, strlen (pattern), err, sizeof (err));
        if (!texts [i] || !refs [i]) {
            fprintf (stderr, "%s: rule %s: %s\n", prog, pattern, texts [i]? err: "out of memory");
            exit (1);
        }
    }
    msgpack_zone_init (&setup->zone, 4096);
    msgpack_object obj;
    //  The first match builds the index
    double start = now_s ();
    s_unpack (events, 0, &setup->zone, &obj);
    zb_patterns_match (set, &obj, names, (size_t) n_rules);
    result.build_ms = (now_s () - start) * 1e3;

    result.ok = s_check (kind, set, refs, texts, n_rules, events, n_rules <= 100? 0: check, &result.checked);
    for (int i = 0; i < n_rules; i++) {
        pattern_ref_destroy (&refs [i]);
        free (texts [i]);
    }
    free (refs);
    free (texts);
    setup->set = set;
    setup->n_rules = n_rules;
    setup->names = names;
    setup->result = result;
}

//  One timed run of both ways over every event; the fastest run is kept
static void
s_time (s_setup_t *setup, const s_kind_t *kind, const s_events_t *events, bool first)
{
    s_result_t *result = &setup->result;
    size_t n_rules = (size_t) setup->n_rules;
    size_t matched_packed = 0;
    double start = now_s ();
    for (size_t e = 0; e < events->n; e++)
        matched_packed += zb_patterns_match_packed (setup->set, events->data + events->offsets [e],
                                                    events->offsets [e + 1] - events->offsets [e],
                                                    setup->names, n_rules);
    double took = now_s () - start;
    if (first || events->n / took > result->packed_per_s)
        result->packed_per_s = (double) events->n / took;
    size_t matched = 0;
    start = now_s ();
    for (size_t e = 0; e < events->n; e++) {
        size_t off = 0;
        msgpack_object obj;
        msgpack_zone_clear (&setup->zone);
        if (msgpack_unpack (events->data + events->offsets [e], events->offsets [e + 1] - events->offsets [e],
                            &off, &setup->zone, &obj) != MSGPACK_UNPACK_SUCCESS) {
            fprintf (stderr, "%s: event %zu cannot be decoded\n", prog, e);
            exit (1);
        }
        matched += zb_patterns_match (setup->set, &obj, setup->names, n_rules);
    }
    took = now_s () - start;
    if (first || events->n / took > result->events_per_s)
        result->events_per_s = (double) events->n / took;
    result->matched_per_event = (double) matched / (double) events->n;
    if (matched != matched_packed) {
        fprintf (stderr, "%s: %s, %d rules: %zu matches, %zu packed\n", prog, kind->name, setup->n_rules,
                 matched, matched_packed);
        result->ok = false;
    }
}

static void
s_teardown (s_setup_t *setup)
{
    msgpack_zone_destroy (&setup->zone);
    free (setup->names);
    zb_patterns_destroy (&setup->set);
}

//  Decoding alone: the floor under every row
static double
s_decode_only (const s_events_t *events, int runs)
{
    msgpack_zone zone;
    msgpack_zone_init (&zone, 4096);
    double best = 0;
    size_t sum = 0;
    for (int run = 0; run < runs; run++) {
        double start = now_s ();
        for (size_t e = 0; e < events->n; e++) {
            msgpack_object obj;
            if (!s_unpack (events, e, &zone, &obj))
                exit (1);
            sum += obj.via.map.size;
        }
        double took = now_s () - start;
        if (run == 0 || took < best)
            best = took;
    }
    msgpack_zone_destroy (&zone);
    if (sum == 0)
        printf ("(no events)\n");
    return (double) events->n / best;
}

static void
s_thousands (char *out, size_t size, double value)
{
    char digits [32];
    snprintf (digits, sizeof (digits), "%.0f", value);
    size_t len = strlen (digits), k = 0;
    for (size_t i = 0; i < len && k + 2 < size; i++) {
        if (i && (len - i) % 3 == 0)
            out [k++] = ',';
        out [k++] = digits [i];
    }
    out [k] = 0;
}

int
main (int argc, char **argv)
{
    long n_events = 200000;
    const char *rule_list = "5,10000";
    const char *kind_list = NULL;
    long check = 1000;
    int runs = 3;
    uint64_t seed = 20261126;
    bool quick = false;
    static struct option options [] = {
        { "events", required_argument, NULL, 'e' },
        { "rules", required_argument, NULL, 'r' },
        { "kinds", required_argument, NULL, 'k' },
        { "check", required_argument, NULL, 'c' },
        { "runs", required_argument, NULL, 'n' },
        { "seed", required_argument, NULL, 's' },
        { "quick", no_argument, NULL, 'q' },
        { "break-check", no_argument, NULL, 'B' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    bool rules_given = false, events_given = false;
    int opt;
    while ((opt = getopt_long (argc, argv, ":e:r:k:c:n:s:qhV", options, NULL)) != -1) {
        char *end = NULL;
        switch (opt) {
            case 'e':
                n_events = strtol (optarg, &end, 10);
                if (*end || n_events < 1 || n_events > 10000000) {
                    fprintf (stderr, "%s: --events takes a number from 1 to 10000000\n", prog);
                    return 2;
                }
                events_given = true;
                break;
            case 'r': rule_list = optarg; rules_given = true; break;
            case 'k': kind_list = optarg; break;
            case 'c':
                check = strtol (optarg, &end, 10);
                if (*end || check < 0) {
                    fprintf (stderr, "%s: --check takes a number of events (0: all)\n", prog);
                    return 2;
                }
                break;
            case 'n':
                runs = (int) strtol (optarg, &end, 10);
                if (*end || runs < 1 || runs > 100) {
                    fprintf (stderr, "%s: --runs takes a number from 1 to 100\n", prog);
                    return 2;
                }
                break;
            case 's':
                seed = strtoull (optarg, &end, 10);
                if (*end || !*optarg) {
                    fprintf (stderr, "%s: --seed takes a number\n", prog);
                    return 2;
                }
                break;
            case 'q': quick = true; break;
            case 'B': break_check = true; break;
            case 'h': usage (stdout); return 0;
            case 'V': printf ("%s %s\n", prog, ZB_VERSION); return 0;
            default:
                fprintf (stderr, "%s: bad option or missing value: %s\n", prog, argv [optind - 1]);
                usage (stderr);
                return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "%s: unexpected argument %s\n", prog, argv [optind]);
        return 2;
    }
    if (quick) {
        if (!events_given)
            n_events = 1000;
        if (!rules_given)
            rule_list = "5,200";
        check = 0;
        runs = 1;
    }
    if (kind_list) {
        //  Check the names first, so that a typo does not print an empty table
        for (const char *p = kind_list; *p; ) {
            const char *end = strchr (p, ',');
            size_t n = end? (size_t) (end - p): strlen (p);
            bool known = false;
            for (size_t i = 0; i < N_KINDS; i++)
                known |= strlen (kinds [i].name) == n && !memcmp (kinds [i].name, p, n);
            if (!known) {
                fprintf (stderr, "%s: unknown kind %.*s\n", prog, (int) n, p);
                return 2;
            }
            p += n + (end? 1: 0);
        }
    }
    int counts [8];
    int n_counts = 0;
    for (const char *p = rule_list; *p; ) {
        char *end;
        long count = strtol (p, &end, 10);
        if (n_counts == 8 || count < 5 || count > 1000000 || (*end && *end != ',')) {
            fprintf (stderr, "%s: --rules takes up to 8 counts from 5 to 1000000, comma-separated\n", prog);
            return 2;
        }
        counts [n_counts++] = (int) count;
        p = *end? end + 1: end;
    }

    //  The data set, packed back to back
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    s_events_t events = { NULL, calloc ((size_t) n_events + 1, sizeof (size_t)), (size_t) n_events };
    if (!events.offsets) {
        fprintf (stderr, "%s: out of memory\n", prog);
        return 1;
    }
    s_seed (seed);
    for (size_t i = 0; i < events.n; i++) {
        events.offsets [i] = sbuf.size;
        s_pack_event (&pk);
    }
    events.offsets [events.n] = sbuf.size;
    events.data = sbuf.data;

    printf ("%s: %zu store events, %.0f bytes of msgpack on average (seed %llu); "
            "decoding included, single thread, fastest of %d run%s\n\n",
            prog, events.n, (double) sbuf.size / (double) events.n, (unsigned long long) seed,
            runs, runs > 1? "s": "");
    double decode = s_decode_only (&events, runs);
    char text [32];
    s_thousands (text, sizeof (text), decode);
    printf ("Decoding alone (msgpack_unpack, no matching): %s events/s\n\n", text);

    printf ("| operator | rules | events/s, unpack + match | ns/event | events/s, match_packed | ns/event | matched/event | index build ms | events checked |\n");
    printf ("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    fflush (stdout);
    s_result_t results [N_KINDS][8];
    bool all_ok = true;
    for (size_t k = 0; k < N_KINDS; k++) {
        if (!s_in_list (kind_list, kinds [k].name))
            continue;
        //  Every set of the kind compiled and checked first, then timed in
        //  rounds (each set once per round), so that a change of the
        //  machine's load weighs on every set of the kind alike
        s_setup_t setups [8];
        for (int c = 0; c < n_counts; c++)
            s_setup (&setups [c], &kinds [k], counts [c], &events, (size_t) check, seed);
        for (int run = 0; run < runs; run++)
            for (int c = 0; c < n_counts; c++)
                s_time (&setups [c], &kinds [k], &events, run == 0);
        for (int c = 0; c < n_counts; c++) {
            s_result_t *r = &results [k][c];
            *r = setups [c].result;
            s_teardown (&setups [c]);
            all_ok &= r->ok;
            char packed [32];
            s_thousands (text, sizeof (text), r->events_per_s);
            s_thousands (packed, sizeof (packed), r->packed_per_s);
            printf ("| %s | %d | %s | %.0f | %s | %.0f | %.2f | %.1f | %zu%s |\n", kinds [k].name, counts [c], text,
                    1e9 / r->events_per_s, packed, 1e9 / r->packed_per_s, r->matched_per_event, r->build_ms,
                    r->checked, r->ok? "": " **DIFFER**");
            fflush (stdout);
        }
    }

    //  Summary: first count against last, for both ways of decoding
    if (n_counts >= 2) {
        printf ("\n| operator | decoding | events/s, %d rules | events/s, %d rules | slowdown | target |\n",
                counts [0], counts [n_counts - 1]);
        printf ("|---|---|---:|---:|---:|---|\n");
        for (size_t k = 0; k < N_KINDS; k++) {
            if (!s_in_list (kind_list, kinds [k].name))
                continue;
            for (int way = 0; way < 2; way++) {
                double lo = way? results [k][0].packed_per_s: results [k][0].events_per_s;
                double hi = way? results [k][n_counts - 1].packed_per_s: results [k][n_counts - 1].events_per_s;
                double slowdown = lo / hi;
                char a [32], b [32], target [160] = "";
                s_thousands (a, sizeof (a), lo);
                s_thousands (b, sizeof (b), hi);
                if (kinds [k].fast)
                    snprintf (target, sizeof (target), ">= 1,000,000/s with %d rules: %s; ", counts [0],
                              lo >= 1e6? "met": "**missed**");
                if (kinds [k].deterministic)
                    snprintf (target + strlen (target), sizeof (target) - strlen (target), "<= 2x: %s",
                              slowdown <= 2.0? "met": "**missed**");
                else
                    snprintf (target + strlen (target), sizeof (target) - strlen (target), "(none)");
                printf ("| %s | %s | %s | %s | %.2fx | %s |\n", kinds [k].name,
                        way? "match_packed": "unpack + match", a, b, slowdown, target);
            }
        }
    }
    printf ("\nMatch sets: %s\n", all_ok? "every checked event agrees with the reference matcher"
                                         : "DIFFERENCES from the reference matcher (see stderr)");
    msgpack_sbuffer_destroy (&sbuf);
    free (events.offsets);
    if (break_check) {
        printf ("--break-check: the flipped answer was %s\n", all_ok? "NOT caught": "caught");
        return all_ok? 1: 0;
    }
    return all_ok? 0: 1;
}

/*
 * akm.report._squidscan: one streaming pass over a Squid access log in the native format.
 *
 * This is the one place that decides what a valid line is (akm.report.squidlog explains the rules and
 * the reasons a line is rejected): every line is split, checked, and either counted under the reason it
 * is rejected for, with its first few lines kept as samples, or attributed to a group (client address,
 * login, domain, period bucket) whose requests, bytes, denied requests and their bytes, and first and
 * last time are summed in a hash table. The groups are written as CSV for DuckDB, which makes every
 * figure of the report from them and never reads the log. The table is flushed to the CSV whenever it
 * holds `flush_groups` groups, so memory stays bounded whatever the log; DuckDB sums the partial groups
 * again. Besides the groups, the counted lines are tallied per day (between the caller's `days`, the
 * midnights inside the period): requests, bytes and denied requests, a few numbers per day, so the
 * figures per day cost no more groups.
 *
 * Fields are separated by single spaces; the elapsed time is right-aligned in six columns, so it is the
 * first non-empty one of columns 1..5 (else column 6) and the other fields follow it.
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define MAX_COLUMNS 20
#define MAX_PADDING 5
#define MAX_LINE 65536
#define MAX_TIME 253402300800LL /* 10000-01-01T00:00:00Z: Python's datetime stops before it */
#define SAMPLES 3
#define SAMPLE_BYTES 240
#define WINDOW ((off_t)64 << 20)

/* The reasons a line is not counted, in the order they are checked (akm.report.squidlog.REASONS). */
enum reason {
    R_TOO_LONG, R_CONTROL, R_TOO_FEW, R_TOO_MANY, R_TIME, R_ELAPSED, R_ADDRESS, R_STATUS, R_SIZE, R_HUGE, R_URL,
    R_COUNT
};
static const char *REASON_NAMES[R_COUNT] = {
    "too-long", "control-character", "too-few-fields", "too-many-fields", "bad-time", "bad-elapsed",
    "bad-address", "bad-status", "bad-size", "size-too-large", "bad-url",
};

typedef struct {
    const char *p;
    size_t n;
} span;

typedef struct {
    uint64_t hash;
    size_t at;
    uint32_t len;
} name;

/* The distinct values of one field (clients or domains): value -> small integer id. */
typedef struct {
    uint32_t *slots; /* id + 1; 0 is empty */
    size_t capacity;
    name *items;
    size_t count, allocated;
    char *arena;
    size_t arena_used, arena_size;
} names;

#define EMPTY 0 /* client ids in cells are counted from 1 */

/* One group, keyed by the ids of its client and domain and by its period bucket. A client is the
 * address alone, or the address, a space and the login (neither can hold a space), so one look-up
 * finds both. The bucket is the number of the caller's boundaries (the starts and ends of grants) at
 * or before the request's time: no group straddles a boundary, so a grant covers all of a group or
 * none of it. Byte sums are unsigned 64-bit; a sum that would wrap is written out first (a partial
 * group, summed again by DuckDB in 128 bits). */
typedef struct {
    uint32_t ip, domain, bucket, unused;
    uint64_t requests, denied_requests, bytes, denied_bytes;
    int64_t first, last;
} cell;

typedef struct {
    cell *cells;
    size_t capacity, count;
} groups;

/* A request waiting for its group: the groups' table is far bigger than the caches, so the cells of a
 * batch of requests are prefetched together and then updated. */
typedef struct {
    uint32_t ip, domain, bucket, denied;
    uint64_t bytes;
    int64_t time;
} pending;

#define BATCH 32

/* The counted requests of one day: bytes in 128 bits (lo, hi), as a day can pass 2^64 bytes. */
typedef struct {
    int64_t requests, denied;
    uint64_t lo, hi;
} tally;

/* The first lines of one reason: their number in the file (counted from 1 in this worker's part),
 * their first SAMPLE_BYTES bytes, their length, and where the user field is in them (-1: not found). */
typedef struct {
    int64_t line;
    size_t length;
    int32_t used, user_at, user_len;
    char text[SAMPLE_BYTES];
} sample;

typedef struct {
    names clients, domains;
    groups g;
    pending batch[BATCH];
    int batched;
    FILE *out;
    int64_t physical, lines, outside, reasons[R_COUNT];
    int flushes, spills;
    sample samples[R_COUNT][SAMPLES];
    int64_t since, until;
    int has_since, has_until;
    const int64_t *boundaries;
    size_t nboundaries;
    const int64_t *days;
    size_t ndays;
    tally *tallies; /* ndays + 1: before the first of `days`, then from each of them */
    size_t flush_groups;
    char *client, *domain; /* room for a client and a domain after replacing invalid UTF-8 */
} scan;

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    return h;
}

/* A hash of p[0..n): eight bytes at a time, the last eight (overlapping) read as one word. */
static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n, w = 0;
    if (n < 8) {
        memcpy(&w, p, n);
        return mix(h ^ w);
    }
    for (size_t i = 0; i + 8 < n; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x87C37B91114253D5ull;
        h ^= h >> 29;
    }
    memcpy(&w, p + n - 8, 8);
    return mix(h ^ w);
}

/* memcmp(a, b, n) == 0 for the short values of a log, without a call. */
static int same(const char *a, const char *b, size_t n)
{
    uint64_t x, y;
    if (n < 8) {
        for (; n; a++, b++, n--)
            if (*a != *b)
                return 0;
        return 1;
    }
    for (size_t i = 0; i + 8 < n; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y)
            return 0;
    }
    memcpy(&x, a + n - 8, 8);
    memcpy(&y, b + n - 8, 8);
    return x == y;
}

static int names_init(names *d)
{
    memset(d, 0, sizeof(*d));
    d->capacity = 1 << 10;
    d->slots = calloc(d->capacity, sizeof(uint32_t));
    d->allocated = 1 << 9;
    d->items = malloc(d->allocated * sizeof(name));
    d->arena_size = 1 << 16;
    d->arena = malloc(d->arena_size);
    return d->slots && d->items && d->arena ? 0 : -1;
}

static void names_free(names *d)
{
    free(d->slots);
    free(d->items);
    free(d->arena);
}

static void names_clear(names *d)
{
    memset(d->slots, 0, d->capacity * sizeof(uint32_t));
    d->count = 0;
    d->arena_used = 0;
}

static int names_grow(names *d)
{
    size_t capacity = d->capacity * 2;
    uint32_t *slots = calloc(capacity, sizeof(uint32_t));
    if (!slots)
        return -1;
    for (size_t i = 0; i < d->count; i++) {
        size_t s = d->items[i].hash & (capacity - 1);
        while (slots[s])
            s = (s + 1) & (capacity - 1);
        slots[s] = (uint32_t)(i + 1);
    }
    free(d->slots);
    d->slots = slots;
    d->capacity = capacity;
    return 0;
}

#define ABSENT (-2)

/* The id of value p[0..n): found, or added if it is new and `add` is set (else ABSENT); -1 when out of
 * memory. */
static int64_t names_id(names *d, const char *p, size_t n, int add)
{
    uint64_t h = hash_bytes(p, n);
    size_t s = h & (d->capacity - 1);
    for (;;) {
        uint32_t e = d->slots[s];
        if (!e)
            break;
        name *item = &d->items[e - 1];
        if (item->hash == h && item->len == n && same(d->arena + item->at, p, n))
            return e - 1;
        s = (s + 1) & (d->capacity - 1);
    }
    if (!add)
        return ABSENT;
    if (d->count == d->allocated) {
        name *items = realloc(d->items, 2 * d->allocated * sizeof(name));
        if (!items)
            return -1;
        d->items = items;
        d->allocated *= 2;
    }
    while (d->arena_used + n > d->arena_size) {
        char *arena = realloc(d->arena, 2 * d->arena_size);
        if (!arena)
            return -1;
        d->arena = arena;
        d->arena_size *= 2;
    }
    memcpy(d->arena + d->arena_used, p, n);
    d->items[d->count] = (name){h, d->arena_used, (uint32_t)n};
    d->arena_used += n;
    d->slots[s] = (uint32_t)(++d->count);
    if (2 * d->count > d->capacity && names_grow(d) < 0)
        return -1;
    return (int64_t)d->count - 1;
}

/* A zero-filled (that is, empty) table, mapped so the kernel zeroes pages as they are first touched,
 * with huge pages where it allows them: each request touches a random cell, and with 4 KiB pages the
 * page walks cost as much as the cache misses. */
static int groups_init(groups *t, size_t capacity)
{
    t->capacity = capacity;
    t->count = 0;
    size_t bytes = capacity * sizeof(cell);
    t->cells = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (t->cells == MAP_FAILED) {
        t->cells = NULL;
        return -1;
    }
    madvise(t->cells, bytes, MADV_HUGEPAGE);
    return 0;
}

static void groups_free(groups *t)
{
    if (t->cells)
        munmap(t->cells, t->capacity * sizeof(cell));
    t->cells = NULL;
}

static size_t cell_slot(uint32_t ip, uint32_t domain, uint32_t bucket, size_t capacity)
{
    uint64_t h = mix(((uint64_t)ip << 32 | bucket) ^ mix((uint64_t)domain));
    return h & (capacity - 1);
}

static int groups_grow(groups *t)
{
    groups bigger;
    if (groups_init(&bigger, t->capacity * 2) < 0)
        return -1;
    for (size_t i = 0; i < t->capacity; i++) {
        cell *c = &t->cells[i];
        if (c->ip == EMPTY)
            continue;
        size_t s = cell_slot(c->ip, c->domain, c->bucket, bigger.capacity);
        while (bigger.cells[s].ip != EMPTY)
            s = (s + 1) & (bigger.capacity - 1);
        bigger.cells[s] = *c;
    }
    bigger.count = t->count;
    groups_free(t);
    *t = bigger;
    return 0;
}

static void cell_reset(cell *c)
{
    c->requests = c->denied_requests = c->bytes = c->denied_bytes = 0;
    c->first = INT64_MAX;
    c->last = INT64_MIN;
}

/* The group of these ids, created with zero sums if it is new; NULL when out of memory. */
static cell *groups_find(groups *t, uint32_t ip, uint32_t domain, uint32_t bucket)
{
    if (4 * (t->count + 1) > 3 * t->capacity && groups_grow(t) < 0)
        return NULL;
    size_t s = cell_slot(ip, domain, bucket, t->capacity);
    for (;;) {
        cell *c = &t->cells[s];
        if (c->ip == EMPTY) {
            c->ip = ip;
            c->domain = domain;
            c->bucket = bucket;
            cell_reset(c);
            t->count++;
            return c;
        }
        if (c->ip == ip && c->domain == domain && c->bucket == bucket)
            return c;
        s = (s + 1) & (t->capacity - 1);
    }
}

static void put_quoted(FILE *out, const char *p, size_t n)
{
    fputc('"', out);
    for (const char *quote; (quote = memchr(p, '"', n)) != NULL; n -= quote + 1 - p, p = quote + 1) {
        fwrite(p, 1, quote + 1 - p, out);
        fputc('"', out);
    }
    fwrite(p, 1, n, out);
    fputc('"', out);
}

/* Write one group as a CSV line: address, login (empty: none), domain, bucket, requests, bytes, denied
 * requests, denied bytes, first and last time. */
static void put_cell(scan *sc, const cell *c)
{
    const name *client = &sc->clients.items[c->ip - 1];
    const char *address = sc->clients.arena + client->at;
    const char *space = memchr(address, ' ', client->len);
    size_t address_len = space ? (size_t)(space - address) : client->len;
    put_quoted(sc->out, address, address_len);
    fputc(',', sc->out);
    if (space)
        put_quoted(sc->out, space + 1, client->len - address_len - 1);
    fputc(',', sc->out);
    put_quoted(sc->out, sc->domains.arena + sc->domains.items[c->domain].at, sc->domains.items[c->domain].len);
    fprintf(sc->out, ",%u,%llu,%llu,%llu,%llu,%lld,%lld\n", c->bucket, (unsigned long long)c->requests,
            (unsigned long long)c->bytes, (unsigned long long)c->denied_requests,
            (unsigned long long)c->denied_bytes, (long long)c->first, (long long)c->last);
}

/* Write every group and start afresh: the values' ids are only valid until here. */
static int groups_flush(scan *sc)
{
    groups *t = &sc->g;
    if (t->count)
        sc->flushes++;
    for (size_t i = 0; i < t->capacity; i++) {
        cell *c = &t->cells[i];
        if (c->ip == EMPTY)
            continue;
        put_cell(sc, c);
        c->ip = EMPTY;
    }
    t->count = 0;
    names_clear(&sc->clients);
    names_clear(&sc->domains);
    return ferror(sc->out) ? -1 : 0;
}

/* Add the batched requests to their groups. */
static int drain(scan *sc)
{
    for (int i = 0; i < sc->batched; i++) {
        pending *r = &sc->batch[i];
        cell *g = groups_find(&sc->g, r->ip, r->domain, r->bucket);
        if (!g)
            return -1;
        uint64_t bytes;
        if (__builtin_add_overflow(g->bytes, r->bytes, &bytes)) {
            /* denied bytes are a part of the bytes: they cannot wrap first */
            put_cell(sc, g);
            sc->spills++;
            cell_reset(g);
            bytes = r->bytes;
        }
        g->requests++;
        g->bytes = bytes;
        if (r->denied) {
            g->denied_requests++;
            g->denied_bytes += r->bytes;
        }
        if (r->time < g->first)
            g->first = r->time;
        if (r->time > g->last)
            g->last = r->time;
    }
    sc->batched = 0;
    if (sc->g.count >= sc->flush_groups && groups_flush(sc) < 0)
        return -1;
    return 0;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int all_digits(span s)
{
    for (size_t i = 0; i < s.n; i++)
        if (!is_digit(s.p[i]))
            return 0;
    return 1;
}

/* %ts.%03tu: 1 to 12 digits, a dot and three digits, before the year 10000. */
static int parse_time(span s, int64_t *seconds)
{
    if (s.n < 5 || s.n > 16 || s.p[s.n - 4] != '.' || !is_digit(s.p[s.n - 3]) || !is_digit(s.p[s.n - 2]) ||
        !is_digit(s.p[s.n - 1]))
        return 0;
    int64_t v = 0;
    for (size_t i = 0; i < s.n - 4; i++) {
        if (!is_digit(s.p[i]))
            return 0;
        v = v * 10 + (s.p[i] - '0');
    }
    *seconds = v;
    return v < MAX_TIME;
}

/* %6tr: whole milliseconds, 1 to 18 digits, negative when the clock went back. */
static int good_elapsed(span s)
{
    if (s.n && s.p[0] == '-') {
        s.p++;
        s.n--;
    }
    return s.n >= 1 && s.n <= 18 && all_digits(s);
}

/* ACTION/NNN: an upper-case letter, then upper-case letters, digits and underscores, a slash and three
 * digits (TCP_MISS/200, NONE_NONE/000). */
static int good_status(span s)
{
    if (s.n < 5 || s.p[s.n - 4] != '/' || !(s.p[0] >= 'A' && s.p[0] <= 'Z'))
        return 0;
    for (size_t i = 1; i < s.n - 4; i++) {
        char c = s.p[i];
        if (!((c >= 'A' && c <= 'Z') || is_digit(c) || c == '_'))
            return 0;
    }
    return is_digit(s.p[s.n - 3]) && is_digit(s.p[s.n - 2]) && is_digit(s.p[s.n - 1]);
}

/* A dotted quad of decimal numbers 0-255 without leading zeros. */
static int good_quad(span s)
{
    const char *p = s.p, *end = s.p + s.n;
    for (int group = 0; group < 4; group++) {
        if (group && (p == end || *p++ != '.'))
            return 0;
        if (p == end || !is_digit(*p))
            return 0;
        unsigned value = (unsigned)(*p++ - '0');
        for (int more = 0; value && more < 2 && p < end && is_digit(*p); more++)
            value = value * 10 + (unsigned)(*p++ - '0');
        if (value > 255 || (p < end && is_digit(*p)))
            return 0;
    }
    return p == end;
}

/* A dotted quad, or an IPv6 address as inet_pton reads it (no zone). */
static int good_address(span s)
{
    if (good_quad(s))
        return 1;
    char text[INET6_ADDRSTRLEN];
    unsigned char binary[16];
    if (s.n == 0 || s.n >= sizeof(text) || !memchr(s.p, ':', s.n))
        return 0;
    memcpy(text, s.p, s.n);
    text[s.n] = '\0';
    return inet_pton(AF_INET6, text, binary) == 1;
}

/* A size in bytes: digits only. Returns 1, 0 (not digits) or -1 (more than 2^63 - 1, more than Squid
 * can write: the byte sums stay exact however many such lines there are). */
static int parse_size(span s, uint64_t *value)
{
    if (!s.n || !all_digits(s))
        return 0;
    while (s.n > 1 && s.p[0] == '0') {
        s.p++;
        s.n--;
    }
    if (s.n > 19)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < s.n; i++)
        v = v * 10 + (uint64_t)(s.p[i] - '0');
    if (v > (uint64_t)INT64_MAX)
        return -1;
    *value = v;
    return 1;
}

static int contains(span s, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= s.n; i++)
        if (s.p[i] == needle[0] && memcmp(s.p + i, needle, m) == 0)
            return 1;
    return 0;
}

/* Copy p[0..n) to out as UTF-8 that any document can hold: each maximal ill-formed subsequence (as
 * Python's "replace" error handler cuts them) and each of U+FFFE and U+FFFF becomes U+FFFD. `out`
 * needs 3 * n bytes. Returns the bytes written. */
static size_t replace_invalid(const unsigned char *p, size_t n, char *out)
{
    static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    size_t i = 0, o = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) {
            out[o++] = (char)c;
            i++;
            continue;
        }
        size_t need;
        unsigned char low = 0x80, high = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                low = 0xA0;
            else if (c == 0xED)
                high = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                low = 0x90;
            else if (c == 0xF4)
                high = 0x8F;
        } else {
            need = 0;
        }
        size_t j = i + 1, got = 0;
        while (need && got < need && j < n) {
            unsigned char b = p[j];
            if (got == 0 ? (b < low || b > high) : (b < 0x80 || b > 0xBF))
                break;
            j++;
            got++;
        }
        int noncharacter = need == 2 && got == 2 && c == 0xEF && p[i + 1] == 0xBF && p[i + 2] >= 0xBE;
        if (need && got == need && !noncharacter) {
            memcpy(out + o, p + i, j - i);
            o += j - i;
        } else {
            memcpy(out + o, replacement, 3);
            o += 3;
        }
        i = need ? j : i + 1;
    }
    return o;
}

/* Whether the word w has an upper-case ASCII letter in one of its bytes. */
static int upper_in(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t low = w & ~highs;
    uint64_t from_a = low + (0x80 - 'A') * ones, after_z = low + (0x80 - 'Z' - 1) * ones;
    return (from_a & ~after_z & ~w & highs) != 0;
}

/* Whether p[0..n) has an upper-case ASCII letter (eight bytes at a time, the last eight overlapping). */
static int has_upper(const char *p, size_t n)
{
    uint64_t w = 0;
    if (n < 8) {
        memcpy(&w, p, n);
        return upper_in(w);
    }
    for (size_t i = 0; i + 8 < n; i += 8) {
        memcpy(&w, p + i, 8);
        if (upper_in(w))
            return 1;
    }
    memcpy(&w, p + n - 8, 8);
    return upper_in(w);
}

/* A field as it is kept: itself when it is ASCII (and, if `lower`, has no upper-case letter), else a
 * copy in `room` (3 * s.n bytes) with invalid UTF-8 replaced and ASCII letters in lower case. */
static span kept(span s, int ascii, int lower, char *room)
{
    if (ascii && !(lower && has_upper(s.p, s.n)))
        return s;
    size_t n = ascii ? (memcpy(room, s.p, s.n), s.n) : replace_invalid((const unsigned char *)s.p, s.n, room);
    if (lower)
        for (size_t i = 0; i < n; i++)
            if (room[i] >= 'A' && room[i] <= 'Z')
                room[i] += 'a' - 'A';
    return (span){room, n};
}

static void reject(scan *sc, enum reason r, const char *line, size_t n, span user)
{
    int64_t seen = sc->reasons[r]++;
    if (seen >= SAMPLES)
        return;
    sample *s = &sc->samples[r][seen];
    s->line = sc->physical;
    s->length = n;
    s->used = (int32_t)(n < SAMPLE_BYTES ? n : SAMPLE_BYTES);
    memcpy(s->text, line, (size_t)s->used);
    s->user_at = -1;
    s->user_len = 0;
    if (user.p && user.p - line < s->used) {
        s->user_at = (int32_t)(user.p - line);
        s->user_len = (int32_t)(user.n < (size_t)(s->used - s->user_at) ? user.n : (size_t)(s->used - s->user_at));
    }
}

/* The number of the n increasing times at or before t. */
static uint32_t count_at_or_before(const int64_t *times, size_t n, int64_t t)
{
    size_t low = 0, high = n;
    while (low < high) {
        size_t middle = (low + high) / 2;
        if (times[middle] <= t)
            low = middle + 1;
        else
            high = middle;
    }
    return (uint32_t)low;
}

/* Add a counted request to the tally of its day. */
static void tally_add(scan *sc, int64_t t, uint64_t bytes, int denied)
{
    tally *day = &sc->tallies[count_at_or_before(sc->days, sc->ndays, t)];
    day->requests++;
    day->denied += denied;
    day->lo += bytes;
    if (day->lo < bytes)
        day->hi++;
}

/* One line without its newline. Returns -1 only when out of memory or the output cannot be written. */
static int take_line(scan *sc, const char *line, size_t n, const char *limit)
{
    sc->physical++;
    if (n && line[n - 1] == '\r')
        n--;
    if (!n)
        return 0;
    sc->lines++;
    span none = {NULL, 0};
    if (n > MAX_LINE) {
        reject(sc, R_TOO_LONG, line, n, none);
        return 0;
    }
    span c[MAX_COLUMNS];
    int columns = 0;
    int odd = 0; /* a byte below 0x20, 0x7F or a byte >= 0x80 somewhere in the line */
    const char *start = line;
    for (size_t base = 0; base < n; base += 16) {
        uint32_t spaces = 0;
#ifdef __SSE2__
        /* 16 bytes at a time; past the line's end too while that is still inside the mapped window */
        if (line + base + 16 <= limit) {
            __m128i v = _mm_loadu_si128((const __m128i *)(line + base));
            uint32_t inside = base + 16 <= n ? 0xFFFF : (1u << (n - base)) - 1;
            spaces = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(' '))) & inside;
            /* signed: bytes >= 0x80 are below 0x20 too */
            odd |= (_mm_movemask_epi8(_mm_cmplt_epi8(v, _mm_set1_epi8(' '))) |
                    _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(0x7F)))) &
                   inside;
        } else
#endif
        {
            size_t stop = base + 16 < n ? base + 16 : n;
            for (size_t i = base; i < stop; i++) {
                unsigned char ch = (unsigned char)line[i];
                spaces |= (uint32_t)(ch == ' ') << (i - base);
                odd |= ch < 0x20 || ch >= 0x7F;
            }
        }
        while (spaces) {
            const char *space = line + base + __builtin_ctz(spaces);
            spaces &= spaces - 1;
            if (columns < MAX_COLUMNS)
                c[columns] = (span){start, (size_t)(space - start)};
            columns++;
            start = space + 1;
        }
    }
    if (columns < MAX_COLUMNS)
        c[columns] = (span){start, (size_t)(line + n - start)};
    columns++;
    int pad = MAX_PADDING + 1;
    for (int k = 1; k <= MAX_PADDING; k++)
        if (k < columns && c[k].n) {
            pad = k;
            break;
        }
#define FIELD(offset) (pad + (offset) < columns ? c[pad + (offset)] : none)
    span elapsed = FIELD(0), ip = FIELD(1), st = FIELD(2), size = FIELD(3), method = FIELD(4), url = FIELD(5),
         user = FIELD(6), hier = FIELD(7), after = FIELD(9);
#undef FIELD
    int ascii = 1;
    if (odd) {
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)line[i];
            if (ch < 0x20 || ch == 0x7F) {
                reject(sc, R_CONTROL, line, n, user);
                return 0;
            }
            ascii &= ch < 0x80;
        }
    }
    if (!hier.p) {
        reject(sc, R_TOO_FEW, line, n, user);
        return 0;
    }
    if (after.p) {
        for (const char *q = after.p; q < line + n; q++)
            if (*q != ' ') {
                reject(sc, R_TOO_MANY, line, n, user);
                return 0;
            }
    }
    /* The client (address, a space and the login if there is one) is looked up first: an address
     * already counted needs no second check. No valid address is INET6_ADDRSTRLEN long. */
    span client = ip;
    int64_t ip_id = ABSENT;
    if (ip.n < INET6_ADDRSTRLEN) {
        if (!(user.n == 0 || (user.n == 1 && user.p[0] == '-'))) {
            span login = kept(user, ascii, 0, sc->client + ip.n + 1);
            memcpy(sc->client, ip.p, ip.n);
            sc->client[ip.n] = ' ';
            if (login.p != sc->client + ip.n + 1)
                memcpy(sc->client + ip.n + 1, login.p, login.n);
            client = (span){sc->client, ip.n + 1 + login.n};
        }
        ip_id = names_id(&sc->clients, client.p, client.n, 0);
    }
    int64_t ts;
    if (!parse_time(c[0], &ts)) {
        reject(sc, R_TIME, line, n, user);
        return 0;
    }
    if (!good_elapsed(elapsed)) {
        reject(sc, R_ELAPSED, line, n, user);
        return 0;
    }
    if (ip_id == ABSENT && !good_address(ip)) {
        reject(sc, R_ADDRESS, line, n, user);
        return 0;
    }
    if (!good_status(st)) {
        reject(sc, R_STATUS, line, n, user);
        return 0;
    }
    uint64_t bytes = 0;
    int sized = parse_size(size, &bytes);
    if (sized <= 0) {
        reject(sc, sized ? R_HUGE : R_SIZE, line, n, user);
        return 0;
    }
    span target = none;
    if (method.n == 7 && memcmp(method.p, "CONNECT", 7) == 0) {
        target = url;
    } else if (contains(url, "://")) {
        /* the third '/'-separated part: host[:port] of scheme://host[:port]/path */
        const char *q = url.p, *url_end = url.p + url.n;
        int slashes = 0;
        while (q < url_end && slashes < 2) {
            if (*q == '/')
                slashes++;
            q++;
        }
        const char *host_end = memchr(q, '/', url_end - q);
        if (!host_end)
            host_end = url_end;
        target.p = q;
        target.n = slashes == 2 ? (size_t)(host_end - q) : 0;
    }
    /* the host: without user@, then [IPv6 literal] with its brackets, or a name without :port */
    span domain = target;
    if (domain.n) {
        const char *at = memrchr(domain.p, '@', domain.n);
        if (at) {
            domain.n -= at + 1 - domain.p;
            domain.p = at + 1;
        }
        if (domain.n && domain.p[0] == '[') {
            const char *close = memchr(domain.p, ']', domain.n);
            domain.n = close && close - domain.p > 1 ? (size_t)(close + 1 - domain.p) : 0;
        } else {
            const char *colon = memchr(domain.p, ':', domain.n);
            if (colon)
                domain.n = colon - domain.p;
        }
    }
    if (!domain.n) {
        reject(sc, R_URL, line, n, user);
        return 0;
    }
    if ((sc->has_since && ts < sc->since) || (sc->has_until && ts >= sc->until)) {
        sc->outside++;
        return 0;
    }
    span site = kept(domain, ascii, 1, sc->domain);
    if (ip_id == ABSENT)
        ip_id = names_id(&sc->clients, client.p, client.n, 1);
    int64_t domain_id = names_id(&sc->domains, site.p, site.n, 1);
    if (ip_id < 0 || domain_id < 0)
        return -1;
    pending *r = &sc->batch[sc->batched++];
    uint32_t bucket = sc->nboundaries ? count_at_or_before(sc->boundaries, sc->nboundaries, ts) : 0;
    *r = (pending){(uint32_t)ip_id + 1, (uint32_t)domain_id, bucket, contains(st, "DENIED"), bytes, ts};
    tally_add(sc, ts, bytes, (int)r->denied);
    __builtin_prefetch(&sc->g.cells[cell_slot(r->ip, r->domain, r->bucket, sc->g.capacity)], 1);
    if (sc->batched == BATCH && drain(sc) < 0)
        return -1;
    return 0;
}

/* Read the lines of [start, end) of the file (whole lines: the range starts after a newline).
 *
 * The file is mapped a window at a time (no copy from the page cache) and each window is unmapped when
 * its lines are read, so the resident memory stays a window, whatever the size of the log. A line that
 * crosses a window's end is read again at the start of the next window. */
static int scan_range(scan *sc, int fd, off_t start, off_t end)
{
    long page = sysconf(_SC_PAGESIZE);
    off_t at = start;
    int skipping = 0;
    while (at < end) {
        off_t base = at - at % page;
        size_t length = (size_t)(end - base < WINDOW ? end - base : WINDOW);
        char *map = mmap(NULL, length, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, base);
        if (map == MAP_FAILED)
            return -2;
        madvise(map, length, MADV_SEQUENTIAL);
        const char *p = map + (at - base), *stop = map + length;
        int last = base + (off_t)length == end;
        for (;;) {
            const char *newline = memchr(p, '\n', stop - p);
            if (!newline)
                break;
            if (skipping)
                skipping = 0;
            else if (take_line(sc, p, newline - p, stop) < 0) {
                munmap(map, length);
                return -1;
            }
            p = newline + 1;
        }
        size_t kept = stop - p;
        if (last) {
            if (kept && !skipping && take_line(sc, p, kept, stop) < 0) {
                munmap(map, length);
                return -1;
            }
            at = end;
        } else if (kept > MAX_LINE) {
            /* a line longer than any Squid writes: count it once and skip to its end */
            if (!skipping && take_line(sc, p, kept, stop) < 0) {
                munmap(map, length);
                return -1;
            }
            skipping = 1;
            at = base + (off_t)length;
        } else {
            at = base + (off_t)(p - map);
        }
        munmap(map, length);
    }
    return 0;
}

typedef struct {
    scan sc;
    int fd;
    off_t start, end;
    char *path;
    int status;
    pthread_t thread;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    scan *sc = &w->sc;
    w->status = -1;
    sc->client = malloc(INET6_ADDRSTRLEN + 1 + 3 * MAX_LINE);
    sc->domain = malloc(3 * MAX_LINE);
    sc->tallies = calloc(sc->ndays + 1, sizeof(tally));
    if (!sc->client || !sc->domain || !sc->tallies || names_init(&sc->clients) < 0 ||
        names_init(&sc->domains) < 0 || groups_init(&sc->g, 1 << 16) < 0)
        return NULL;
    sc->out = fopen(w->path, "wb");
    if (!sc->out) {
        w->status = -3;
        return NULL;
    }
    int status = scan_range(sc, w->fd, w->start, w->end);
    if (status == 0 && drain(sc) < 0)
        status = -1;
    if (status == 0 && groups_flush(sc) < 0)
        status = -3;
    if (fclose(sc->out) != 0 && status == 0)
        status = -3;
    w->status = status;
    return NULL;
}

/* The offset of the first line that starts at or after *offset* (the file's size if none does). */
static off_t line_start(int fd, off_t offset, off_t size)
{
    char buffer[4096];
    if (offset == 0)
        return 0;
    offset--;
    while (offset < size) {
        ssize_t got = pread(fd, buffer, sizeof(buffer), offset);
        if (got <= 0)
            return size;
        char *newline = memchr(buffer, '\n', (size_t)got);
        if (newline)
            return offset + (newline - buffer) + 1;
        offset += got;
    }
    return size;
}

/* Increasing times (the boundaries, the days) as an array of int64 (NULL with *count 0 if there are
 * none); NULL with an exception set if they are not increasing integers. */
static int64_t *read_times(PyObject *given, size_t *count)
{
    *count = 0;
    if (given == Py_None)
        return NULL;
    PyObject *items = PySequence_Fast(given, "boundaries and days must be sequences of integers");
    if (!items)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    int64_t *values = malloc(((size_t)n + 1) * sizeof(int64_t));
    if (!values) {
        Py_DECREF(items);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        values[i] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(items, i));
        if (i && values[i] <= values[i - 1] && !PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "boundaries and days must be increasing");
        if (PyErr_Occurred()) {
            Py_DECREF(items);
            free(values);
            return NULL;
        }
    }
    Py_DECREF(items);
    *count = (size_t)n;
    return values;
}

/* [(requests, bytes low 64 bits, bytes high 64 bits, denied), ...]: the tallies of the days, summed
 * over the workers; the first is before the first of the days. */
static PyObject *days_of(const worker *workers, int threads, size_t ndays)
{
    PyObject *list = PyList_New(0);
    for (size_t d = 0; list && d <= ndays; d++) {
        tally sum = {0, 0, 0, 0};
        for (int k = 0; k < threads; k++) {
            const tally *t = &workers[k].sc.tallies[d];
            sum.requests += t->requests;
            sum.denied += t->denied;
            sum.lo += t->lo;
            sum.hi += t->hi + (sum.lo < t->lo);
        }
        PyObject *item = Py_BuildValue("(LKKL)", (long long)sum.requests, (unsigned long long)sum.lo,
                                       (unsigned long long)sum.hi, (long long)sum.denied);
        if (!item || PyList_Append(list, item) < 0)
            Py_CLEAR(list);
        Py_XDECREF(item);
    }
    return list;
}

/* {reason: [(line, bytes, length, user_at, user_len), ...]}: the first samples of each reason in
 * file order; line numbers count every line of the file from 1. */
static PyObject *samples_of(const worker *workers, int threads)
{
    PyObject *all = PyDict_New();
    for (int r = 0; all && r < R_COUNT; r++) {
        PyObject *list = PyList_New(0);
        int64_t before = 0;
        for (int k = 0; list && k < threads; k++) {
            const scan *sc = &workers[k].sc;
            for (int64_t i = 0; i < sc->reasons[r] && i < SAMPLES && PyList_GET_SIZE(list) < SAMPLES; i++) {
                const sample *s = &sc->samples[r][i];
                PyObject *item = Py_BuildValue("(Ly#nii)", (long long)(before + s->line), s->text,
                                               (Py_ssize_t)s->used, (Py_ssize_t)s->length, s->user_at,
                                               s->user_len);
                if (!item || PyList_Append(list, item) < 0)
                    Py_CLEAR(list);
                Py_XDECREF(item);
                if (!list)
                    break;
            }
            before += sc->physical;
        }
        if (!list || (PyList_GET_SIZE(list) && PyDict_SetItemString(all, REASON_NAMES[r], list) < 0))
            Py_CLEAR(all);
        Py_XDECREF(list);
    }
    return all;
}

static PyObject *squidscan_scan(PyObject *Py_UNUSED(self), PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"log", "groups", "since", "until", "flush_groups", "threads", "boundaries", "days",
                               NULL};
    PyObject *log = NULL, *prefix = NULL, *since = Py_None, *until = Py_None, *given = Py_None, *result = NULL;
    PyObject *given_days = Py_None;
    Py_ssize_t flush_groups = 2000000;
    int threads = 1;
    worker *workers = NULL;
    int fd = -1, status = 0;
    int64_t since_value = 0, until_value = 0, *boundaries = NULL, *days = NULL;
    size_t nboundaries = 0, ndays = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O&|OOniOO", keywords, PyUnicode_FSConverter, &log,
                                     PyUnicode_FSConverter, &prefix, &since, &until, &flush_groups, &threads,
                                     &given, &given_days))
        goto out;
    if (since != Py_None)
        since_value = PyLong_AsLongLong(since);
    if (until != Py_None)
        until_value = PyLong_AsLongLong(until);
    if (PyErr_Occurred())
        goto out;
    boundaries = read_times(given, &nboundaries);
    if (!PyErr_Occurred())
        days = read_times(given_days, &ndays);
    if (PyErr_Occurred())
        goto out;
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    fd = open(PyBytes_AS_STRING(log), O_RDONLY);
    struct stat info;
    if (fd < 0 || fstat(fd, &info) < 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, log);
        goto out;
    }
    off_t size = info.st_size;
    if (size < (off_t)threads * WINDOW)
        threads = 1;
    workers = calloc((size_t)threads, sizeof(worker));
    if (!workers) {
        PyErr_NoMemory();
        goto out;
    }
    size_t prefix_len = (size_t)PyBytes_GET_SIZE(prefix);
    for (int k = 0; k < threads; k++) {
        worker *w = &workers[k];
        w->fd = fd;
        w->sc.flush_groups = flush_groups > 1000 ? (size_t)flush_groups : 1000;
        w->sc.since = since_value;
        w->sc.has_since = since != Py_None;
        w->sc.until = until_value;
        w->sc.has_until = until != Py_None;
        w->sc.boundaries = boundaries;
        w->sc.nboundaries = nboundaries;
        w->sc.days = days;
        w->sc.ndays = ndays;
        w->path = malloc(prefix_len + 16);
        if (!w->path) {
            PyErr_NoMemory();
            goto out;
        }
        snprintf(w->path, prefix_len + 16, "%s-%d.csv", PyBytes_AS_STRING(prefix), k);
    }
    Py_BEGIN_ALLOW_THREADS
    for (int k = 0; k < threads; k++) {
        workers[k].start = k ? workers[k - 1].end : 0;
        workers[k].end = k + 1 < threads ? line_start(fd, size / threads * (k + 1), size) : size;
    }
    int started = 0;
    for (int k = 1; k < threads; k++)
        if (pthread_create(&workers[k].thread, NULL, work, &workers[k]) == 0)
            started = k;
        else
            break;
    if (started == threads - 1) {
        work(&workers[0]);
    } else {
        workers[0].status = -1;
    }
    for (int k = 1; k <= started; k++)
        pthread_join(workers[k].thread, NULL);
    for (int k = started + 1; k < threads; k++)
        workers[k].status = -1;
    Py_END_ALLOW_THREADS
    for (int k = 0; k < threads && !status; k++)
        status = workers[k].status;
    if (status == -1) {
        PyErr_NoMemory();
        goto out;
    } else if (status == -2) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, log);
        goto out;
    } else if (status < 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, prefix);
        goto out;
    }
    int64_t lines = 0, outside = 0;
    int flushes = 0, spills = 0;
    PyObject *reasons = PyDict_New(), *samples = samples_of(workers, threads), *files = PyList_New(0);
    PyObject *tallies = days_of(workers, threads, ndays);
    for (int r = 0; reasons && r < R_COUNT; r++) {
        int64_t count = 0;
        for (int k = 0; k < threads; k++)
            count += workers[k].sc.reasons[r];
        if (!count)
            continue;
        PyObject *number = PyLong_FromLongLong(count);
        if (!number || PyDict_SetItemString(reasons, REASON_NAMES[r], number) < 0)
            Py_CLEAR(reasons);
        Py_XDECREF(number);
    }
    for (int k = 0; k < threads && files; k++) {
        lines += workers[k].sc.lines;
        outside += workers[k].sc.outside;
        flushes += workers[k].sc.flushes;
        spills += workers[k].sc.spills;
        PyObject *path = PyUnicode_DecodeFSDefault(workers[k].path);
        if (!path || PyList_Append(files, path) < 0)
            Py_CLEAR(files);
        Py_XDECREF(path);
    }
    if (reasons && samples && files && tallies)
        result = Py_BuildValue("{s:L,s:L,s:O,s:O,s:O,s:O,s:O}", "lines", (long long)lines, "outside",
                               (long long)outside, "malformed", reasons, "samples", samples, "files", files,
                               "unique", flushes <= 1 && !spills ? Py_True : Py_False, "days", tallies);
    Py_XDECREF(tallies);
    Py_XDECREF(reasons);
    Py_XDECREF(samples);
    Py_XDECREF(files);
out:
    if (workers) {
        for (int k = 0; k < threads; k++) {
            scan *sc = &workers[k].sc;
            names_free(&sc->clients);
            names_free(&sc->domains);
            groups_free(&sc->g);
            free(sc->client);
            free(sc->domain);
            free(sc->tallies);
            free(workers[k].path);
        }
        free(workers);
    }
    free(boundaries);
    free(days);
    if (fd >= 0)
        close(fd);
    Py_XDECREF(log);
    Py_XDECREF(prefix);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", (PyCFunction)(void (*)(void))squidscan_scan, METH_VARARGS | METH_KEYWORDS,
     "scan(log, groups, since=None, until=None, flush_groups=2000000, threads=1, boundaries=None, days=None) "
     "-> dict\n\n"
     "Read the Squid log *log* once, in *threads* parts of whole lines, and write its groups (address, "
     "login, domain, bucket, requests, bytes, denied requests, denied bytes, first, last) as CSV to the "
     "files *groups*-N.csv; the bucket of a request is the number of *boundaries* (increasing times) at "
     "or before it. Return the counts of lines, of lines outside [since, until) and of rejected lines by "
     "reason, the first lines of each reason, the files written, whether every group is in them once "
     "(`unique`: one table flush in all and no byte sum written out early), and `days`: for the counted "
     "lines before the first of *days* (increasing times) and from each of them on, (requests, bytes low "
     "64 bits, bytes high 64 bits, denied requests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_squidscan", "A streaming scanner of Squid native access logs.", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__squidscan(void)
{
    return PyModule_Create(&module);
}

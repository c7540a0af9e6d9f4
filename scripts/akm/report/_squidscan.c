/*
 * akm.report._squidscan: one streaming pass over a Squid access log in the native format.
 *
 * Every line is split, checked and attributed to a group (client address, login, domain); requests,
 * bytes, denied requests and their bytes, and the first and last time are summed per group in a hash
 * table, and the groups
 * are written as CSV for DuckDB, which makes every figure of the report from them
 * (akm.report.squidlog explains the fields and the reasons a line is malformed). The table is
 * flushed to the CSV whenever it holds `flush_groups` groups, so memory stays bounded whatever the
 * log; DuckDB sums the partial groups again.
 *
 * The field rules are the ones the SQL reader of the second, exact pass uses (squidlog._parsed):
 * fields are separated by single spaces, the elapsed time is right-aligned in six columns, so the
 * field after it is the first non-empty one of columns 1..5 (else column 6).
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
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
#define SAMPLE_BYTES 200
#define WINDOW ((off_t)64 << 20)

enum reason {
    R_TOO_FEW, R_TOO_MANY, R_TIME, R_STATUS, R_SIZE, R_ADDRESS, R_URL, R_UNREADABLE, R_COUNT
};
static const char *REASON_NAMES[R_COUNT] = {
    "too-few-fields", "too-many-fields", "bad-time", "bad-status", "bad-size", "bad-address", "bad-url",
    "unreadable",
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

/* One group, keyed by the ids of its client (address and login) and domain; `login` and `denied` are
 * always 0 in the key: a client is the address alone, or the address, a space and the login (neither
 * can hold a space), so one look-up finds both, and the denied requests are summed apart. */
typedef struct {
    uint32_t ip, login, domain, denied;
    int64_t requests, bytes, denied_requests, denied_bytes, first, last;
} cell;

typedef struct {
    cell *cells;
    size_t capacity, count;
} groups;

/* A request waiting for its group: the groups' table is far bigger than the caches, so the cells of a
 * batch of requests are prefetched together and then updated. */
typedef struct {
    uint32_t ip, login, domain, denied;
    int64_t bytes, time;
} pending;

#define BATCH 32

typedef struct {
    names clients, domains;
    groups g;
    pending batch[BATCH];
    int batched;
    FILE *out;
    int64_t lines, outside, reasons[R_COUNT];
    int flushes, non_ascii;
    char *samples[R_COUNT];
    int64_t since, until;
    int has_since, has_until;
    size_t flush_groups;
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

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x87C37B91114253D5ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    return mix(h ^ w);
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

/* The id of value p[0..n), added if it is new; -1 when out of memory. */
static int64_t names_id(names *d, const char *p, size_t n)
{
    uint64_t h = hash_bytes(p, n);
    size_t s = h & (d->capacity - 1);
    for (;;) {
        uint32_t e = d->slots[s];
        if (!e)
            break;
        name *item = &d->items[e - 1];
        if (item->hash == h && item->len == n && memcmp(d->arena + item->at, p, n) == 0)
            return e - 1;
        s = (s + 1) & (d->capacity - 1);
    }
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

static size_t cell_slot(uint32_t ip, uint32_t login, uint32_t domain, uint32_t denied, size_t capacity)
{
    uint64_t h = mix(((uint64_t)ip << 32 | login) ^ mix((uint64_t)domain << 1 | denied));
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
        size_t s = cell_slot(c->ip, c->login, c->domain, c->denied, bigger.capacity);
        while (bigger.cells[s].ip != EMPTY)
            s = (s + 1) & (bigger.capacity - 1);
        bigger.cells[s] = *c;
    }
    bigger.count = t->count;
    groups_free(t);
    *t = bigger;
    return 0;
}

/* The group of these ids, created with zero sums if it is new; NULL when out of memory. */
static cell *groups_find(groups *t, uint32_t ip, uint32_t login, uint32_t domain, uint32_t denied)
{
    if (4 * (t->count + 1) > 3 * t->capacity && groups_grow(t) < 0)
        return NULL;
    size_t s = cell_slot(ip, login, domain, denied, t->capacity);
    for (;;) {
        cell *c = &t->cells[s];
        if (c->ip == EMPTY) {
            *c = (cell){ip, login, domain, denied, 0, 0, 0, 0, INT64_MAX, INT64_MIN};
            t->count++;
            return c;
        }
        if (c->ip == ip && c->login == login && c->domain == domain && c->denied == denied)
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

/* Write every group as a CSV line (address, login, domain, requests, bytes, denied requests, denied
 * bytes, first, last) and
 * start afresh: the values' ids are only valid until here. */
static int groups_flush(scan *sc)
{
    groups *t = &sc->g;
    if (t->count)
        sc->flushes++;
    for (size_t i = 0; i < t->capacity; i++) {
        cell *c = &t->cells[i];
        if (c->ip == EMPTY)
            continue;
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
        fprintf(sc->out, ",%lld,%lld,%lld,%lld,%lld,%lld\n", (long long)c->requests, (long long)c->bytes,
                (long long)c->denied_requests, (long long)c->denied_bytes, (long long)c->first,
                (long long)c->last);
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
        cell *g = groups_find(&sc->g, r->ip, r->login, r->domain, 0);
        if (!g)
            return -1;
        g->requests++;
        g->bytes += r->bytes;
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

static int parse_int(span s, int64_t *value)
{
    size_t i = 0;
    int negative = 0;
    if (s.n && (s.p[0] == '+' || s.p[0] == '-')) {
        negative = s.p[0] == '-';
        i = 1;
    }
    if (i == s.n || s.n - i > 18)
        return 0;
    int64_t v = 0;
    for (; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return 0;
        v = v * 10 + (s.p[i] - '0');
    }
    *value = negative ? -v : v;
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

/* ACTION/NNN: a slash, and the last three characters an integer. */
static int good_status(span s)
{
    if (s.n < 3 || !memchr(s.p, '/', s.n))
        return 0;
    span code = {s.p + s.n - 3, 3};
    int64_t ignored;
    return parse_int(code, &ignored);
}

/* Dotted quad of 1-3 digit groups, or IPv6-like: hex digits, colons and dots with a colon before any
 * dot (the SQL pattern [0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*). */
static int good_address(span s)
{
    int groups = 0, digits = 0, quad = 1;
    for (size_t i = 0; i < s.n && quad; i++) {
        char c = s.p[i];
        if (c >= '0' && c <= '9') {
            if (++digits > 3)
                quad = 0;
        } else if (c == '.' && digits) {
            groups++;
            digits = 0;
        } else {
            quad = 0;
        }
    }
    if (quad && groups == 3 && digits)
        return 1;
    int colon = 0;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        int hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (c == ':')
            colon = 1;
        else if (c == '.' && !colon)
            return 0;
        else if (!hex && c != '.')
            return 0;
    }
    return colon;
}

static int valid_utf8(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (!(w & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        unsigned char c = p[i];
        size_t extra;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            extra = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            extra = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + extra >= n)
            return 0;
        for (size_t k = 1; k <= extra; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += extra + 1;
    }
    return 1;
}

/* Whether p[0..n) has an upper-case ASCII letter or a byte >= 0x80 (eight bytes at a time). */
static int needs_folding(const char *p, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w = 0;
        memcpy(&w, p + i, n - i < 8 ? n - i : 8);
        uint64_t low = w & ~highs;
        uint64_t from_a = low + (0x80 - 'A') * ones, after_z = low + (0x80 - 'Z' - 1) * ones;
        if ((w | (from_a & ~after_z)) & highs)
            return 1;
    }
    return 0;
}

static void append(char *sample, size_t *used, const char *p, size_t n)
{
    if (*used && *used < SAMPLE_BYTES)
        sample[(*used)++] = ' ';
    size_t room = SAMPLE_BYTES - *used;
    n = n < room ? n : room;
    memcpy(sample + *used, p, n);
    *used += n;
}

static void reject(scan *sc, enum reason r, const char *line, size_t n, const span *parts, int count)
{
    sc->reasons[r]++;
    if (sc->samples[r])
        return;
    char *sample = calloc(SAMPLE_BYTES + 1, 1);
    if (!sample)
        return;
    size_t used = 0;
    if (parts) {
        for (int i = 0; i < count; i++)
            if (parts[i].p)
                append(sample, &used, parts[i].p, parts[i].n);
    } else {
        used = n < SAMPLE_BYTES ? n : SAMPLE_BYTES;
        memcpy(sample, line, used);
    }
    sc->samples[r] = sample;
}

/* One line without its newline. Returns -1 only when out of memory or the output cannot be written. */
static int take_line(scan *sc, const char *line, size_t n, const char *limit)
{
    if (n && line[n - 1] == '\r')
        n--;
    if (!n)
        return 0;
    sc->lines++;
    if (n > MAX_LINE) {
        reject(sc, R_UNREADABLE, line, n, NULL, 0);
        return 0;
    }
    span c[MAX_COLUMNS];
    int columns = 0;
    int odd = 0; /* a NUL or a byte >= 0x80 somewhere in the line */
    const char *start = line;
    for (size_t base = 0; base < n; base += 16) {
        uint32_t spaces = 0;
#ifdef __SSE2__
        /* 16 bytes at a time; past the line's end too while that is still inside the mapped window */
        if (line + base + 16 <= limit) {
            __m128i v = _mm_loadu_si128((const __m128i *)(line + base));
            uint32_t inside = base + 16 <= n ? 0xFFFF : (1u << (n - base)) - 1;
            spaces = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(' '))) & inside;
            odd |= (_mm_movemask_epi8(v) | _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128()))) & inside;
        } else
#endif
        {
            size_t stop = base + 16 < n ? base + 16 : n;
            for (size_t i = base; i < stop; i++) {
                unsigned char ch = (unsigned char)line[i];
                spaces |= (uint32_t)(ch == ' ') << (i - base);
                odd |= ch >= 0x80 || ch == 0;
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
    if (odd && (memchr(line, '\0', n) || !valid_utf8((const unsigned char *)line, n))) {
        reject(sc, R_UNREADABLE, line, n, NULL, 0);
        return 0;
    }
    if (columns > MAX_COLUMNS) {
        reject(sc, R_TOO_MANY, line, n, NULL, 0);
        return 0;
    }
    int pad = MAX_PADDING + 1;
    for (int k = 1; k <= MAX_PADDING; k++)
        if (k < columns && c[k].n) {
            pad = k;
            break;
        }
    span none = {NULL, 0};
#define FIELD(offset) (pad + (offset) < columns ? c[pad + (offset)] : none)
    span ip = FIELD(1), st = FIELD(2), size = FIELD(3), method = FIELD(4), url = FIELD(5), user = FIELD(6),
         hier = FIELD(7), extra = FIELD(9);
#undef FIELD
    span sample[4] = {c[0], ip, st, url};
    int64_t ts, bytes;
    span seconds = c[0];
    const char *dot = memchr(seconds.p, '.', seconds.n);
    if (dot)
        seconds.n = dot - seconds.p;
    if (!hier.p) {
        reject(sc, R_TOO_FEW, line, n, sample, 4);
        return 0;
    }
    if (extra.p && extra.n) {
        reject(sc, R_TOO_MANY, line, n, sample, 4);
        return 0;
    }
    if (!parse_int(seconds, &ts)) {
        reject(sc, R_TIME, line, n, sample, 4);
        return 0;
    }
    if (!good_status(st)) {
        reject(sc, R_STATUS, line, n, sample, 4);
        return 0;
    }
    if (!parse_int(size, &bytes) || bytes < 0) {
        reject(sc, R_SIZE, line, n, sample, 4);
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
    span domain = target;
    if (domain.p) {
        const char *at = memrchr(domain.p, '@', domain.n);
        if (at) {
            domain.n -= at + 1 - domain.p;
            domain.p = at + 1;
        }
        const char *colon = memchr(domain.p, ':', domain.n);
        if (colon)
            domain.n = colon - domain.p;
    }
    span login = user;
    int no_login = user.n == 0 || (user.n == 1 && user.p[0] == '-');
    span address_sample[3] = {ip, no_login ? none : login, target};
    if (!good_address(ip)) {
        reject(sc, R_ADDRESS, line, n, address_sample, 3);
        return 0;
    }
    if (!domain.n) {
        reject(sc, R_URL, line, n, address_sample, 3);
        return 0;
    }
    if ((sc->has_since && ts < sc->since) || (sc->has_until && ts >= sc->until)) {
        sc->outside++;
        return 0;
    }
    char lowered[MAX_LINE];
    const char *folded = domain.p;
    if (needs_folding(domain.p, domain.n)) {
        for (size_t i = 0; i < domain.n; i++) {
            char ch = domain.p[i];
            lowered[i] = ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch;
            sc->non_ascii |= (unsigned char)ch >= 0x80;
        }
        folded = lowered;
    }
    char client[2 * MAX_LINE + 1];
    size_t client_len = ip.n;
    memcpy(client, ip.p, ip.n);
    if (!no_login) {
        client[client_len++] = ' ';
        memcpy(client + client_len, login.p, login.n);
        client_len += login.n;
    }
    int64_t ip_id = names_id(&sc->clients, client, client_len), login_id = 0;
    int64_t domain_id = names_id(&sc->domains, folded, domain.n);
    if (ip_id < 0 || login_id < 0 || domain_id < 0)
        return -1;
    pending *r = &sc->batch[sc->batched++];
    *r = (pending){(uint32_t)ip_id + 1, (uint32_t)login_id, (uint32_t)domain_id, contains(st, "DENIED"), bytes, ts};
    __builtin_prefetch(&sc->g.cells[cell_slot(r->ip, r->login, r->domain, 0, sc->g.capacity)], 1);
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
    if (names_init(&sc->clients) < 0 || names_init(&sc->domains) < 0 ||
        groups_init(&sc->g, 1 << 16) < 0)
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

static PyObject *squidscan_scan(PyObject *Py_UNUSED(self), PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"log", "groups", "since", "until", "flush_groups", "threads", NULL};
    PyObject *log = NULL, *prefix = NULL, *since = Py_None, *until = Py_None, *result = NULL;
    Py_ssize_t flush_groups = 2000000;
    int threads = 1;
    worker *workers = NULL;
    int fd = -1, status = 0;
    int64_t since_value = 0, until_value = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O&|OOni", keywords, PyUnicode_FSConverter, &log,
                                     PyUnicode_FSConverter, &prefix, &since, &until, &flush_groups, &threads))
        goto out;
    if (since != Py_None)
        since_value = PyLong_AsLongLong(since);
    if (until != Py_None)
        until_value = PyLong_AsLongLong(until);
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
    workers = calloc((size_t)threads, sizeof(worker));
    if (!workers) {
        PyErr_NoMemory();
        goto out;
    }
    off_t size = info.st_size;
    if (size < (off_t)threads * WINDOW)
        threads = 1;
    size_t prefix_len = (size_t)PyBytes_GET_SIZE(prefix);
    for (int k = 0; k < threads; k++) {
        worker *w = &workers[k];
        w->fd = fd;
        w->sc.flush_groups = flush_groups > 1000 ? (size_t)flush_groups : 1000;
        w->sc.since = since_value;
        w->sc.has_since = since != Py_None;
        w->sc.until = until_value;
        w->sc.has_until = until != Py_None;
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
    int flushes = 0, non_ascii = 0;
    PyObject *reasons = PyDict_New(), *samples = PyDict_New(), *files = PyList_New(0);
    for (int r = 0; reasons && samples && files && r < R_COUNT; r++) {
        int64_t count = 0;
        const char *sample = NULL;
        for (int k = 0; k < threads; k++) {
            count += workers[k].sc.reasons[r];
            if (!sample)
                sample = workers[k].sc.samples[r];
        }
        if (!count)
            continue;
        PyObject *number = PyLong_FromLongLong(count);
        PyObject *text = PyUnicode_DecodeUTF8(sample ? sample : "", sample ? strlen(sample) : 0, "replace");
        int failed = !number || !text || PyDict_SetItemString(reasons, REASON_NAMES[r], number) < 0 ||
                     PyDict_SetItemString(samples, REASON_NAMES[r], text) < 0;
        Py_XDECREF(number);
        Py_XDECREF(text);
        if (failed)
            goto built;
    }
    for (int k = 0; k < threads && files; k++) {
        lines += workers[k].sc.lines;
        outside += workers[k].sc.outside;
        flushes += workers[k].sc.flushes;
        non_ascii |= workers[k].sc.non_ascii;
        PyObject *path = PyUnicode_DecodeFSDefault(workers[k].path);
        if (!path || PyList_Append(files, path) < 0) {
            Py_XDECREF(path);
            goto built;
        }
        Py_DECREF(path);
    }
    if (reasons && samples && files)
        result = Py_BuildValue("{s:L,s:L,s:O,s:O,s:O,s:O}", "lines", (long long)lines, "outside",
                               (long long)outside, "malformed", reasons, "samples", samples, "files", files,
                               "unique", flushes <= 1 && !non_ascii ? Py_True : Py_False);
built:
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
            for (int r = 0; r < R_COUNT; r++)
                free(sc->samples[r]);
            free(workers[k].path);
        }
        free(workers);
    }
    if (fd >= 0)
        close(fd);
    Py_XDECREF(log);
    Py_XDECREF(prefix);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", (PyCFunction)(void (*)(void))squidscan_scan, METH_VARARGS | METH_KEYWORDS,
     "scan(log, groups, since=None, until=None, flush_groups=2000000, threads=1) -> dict\n\n"
     "Read the Squid log *log* once, in *threads* parts of whole lines, and write its groups (address, "
     "login, domain, requests, bytes, denied requests, denied bytes, first, last) as CSV to the files "
     "*groups*-N.csv. Return the "
     "counts of lines, of lines outside [since, until) and of malformed lines by reason, one sample line "
     "per reason, the files written, and whether every group is in them once (`unique`: one table "
     "flush in all, and no domain that DuckDB's lower() could fold further)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_squidscan", "A streaming scanner of Squid native access logs.", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__squidscan(void)
{
    return PyModule_Create(&module);
}

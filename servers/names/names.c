/*
 * The name server: a replica on the first core of every NUMA node, each
 * embedding a replica of the `names` store (servers/store/replica.c), so
 * that the names are on every node and a lookup is answered by the
 * caller's nearest replica from its own table. `names LIFE` (0 at boot, 1
 * when its monitor starts it again). docs/names.md.
 *
 * Reaching it. No name is needed: the monitor of core K answers
 * NAMES_AT(K) with the replica there (its clients' end) and
 * NAMES_PEER_AT(K) with its end for the other replicas (the store's
 * protocol: leader, hello, append, votes); clients connect to the nearest
 * that is up (names_connect, lib/monitor_client.c). The clients' end is
 * registered only once the replica holds the names (it leads, or follows
 * a leader whose whole log it has): until then clients go elsewhere.
 *
 * The table. "n" NAME -> a name (a service's, or a group's: its interface
 * and key); "i" HASH SERVICE -> an instance of a group (HASH: the name's,
 * so a group's instances are one prefix). Each record says which channel
 * it belongs to (owner: the replica's core and domain, and the channel's
 * number there).
 *
 * Reads (lookup, instances, list, stats) are answered from the replica's
 * table as it is: a name seen is committed; one just registered elsewhere
 * may not be seen yet (lookups that may wait, wait). Writes (register,
 * group, join, unregister) are done by the leader: a replica that does not
 * lead forwards them (`forward`, one at a time, in order) and answers its
 * client once the leader committed the write and its own replica applied
 * it, so a client reads its own write. Each write is checked at the
 * leader against its table and made a compare-and-swap, so two racing
 * registrations of one name cannot both succeed. A domain registering
 * again its own service under its name (after its replica ended) takes
 * the name over rather than failing.
 *
 * Lifetimes. A name belongs to the channel it was registered on: when that
 * channel closes, the replica it was on has the leader delete its names.
 * A replica that ends takes nobody's names with it: its clients reconnect
 * to another replica and register again what they keep (which makes the
 * records theirs there); the leader, auditing every second, deletes the
 * records still owned by a replica that ended (another life of it
 * follows, or none is on its core: the core is dead, or not restarted
 * yet). Limits: NAMES_PER_CLIENT per channel, MAX_GROUPS,
 * STORE_KEYS_MAX keys in all, MAX_CLIENTS channels per replica (one more
 * is hung up at once with ERR_TOO_MANY); docs/limits.md.
 */
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <atoll/waitset.h>
#include <if/nameservice_if.h>
#include "../store/kv.h"
#include "../store/replica.h"

/* A client costs about 4 KiB of the replica's own RAM (its channel state);
 * it has 3 MiB (monitor/main.c), of which its image (the store's log the most)
 * takes 0.8 and a full table 0.2. */
#define MAX_CLIENTS 256
#define NAMESERVICE_LIST_TEXT 1500   /* string<1500> in if/nameservice.if */
#define NAMES_PER_CLIENT 16
#define MAX_GROUPS 64
#define DELETES_AT_ONCE 16           /* a channel's names go in rounds of this many writes */
#define FORWARD_GIVE_UP_NS 5000000000ull   /* a client's write waits this long for a leader */

_Static_assert(nameservice_size_max <= URPC_RING_SLOTS(4096) * URPC_PAYLOAD,
               "every name-service message fits in one ring: replies never wait");

enum rec_kind { REC_NAME = 1, REC_GROUP = 2 };

/* Which channel a record belongs to. */
struct owner {
    uint32_t core, domain, chan;   /* the replica's core and domain; the channel's number there */
};

struct name_rec {   /* "n" NAME */
    uint8_t kind;
    char iface[32];
    uint64_t arg;   /* REC_NAME: the service; REC_GROUP: its key */
    struct owner owner;
};

struct inst_rec {   /* "i" HASH SERVICE */
    char name[64];
    char iface[32];
    uint64_t service;
    struct owner owner;
};

enum op_kind { OP_REGISTER = 1, OP_GROUP, OP_JOIN, OP_UNREGISTER, OP_DROP, OP_REAP };

struct client;

/* A write: done at the leader, forwarded to it from elsewhere. */
struct op {
    uint8_t kind;
    char name[64], iface[32];
    uint64_t service;        /* REGISTER, JOIN */
    uint64_t key;            /* GROUP, JOIN: the group's key */
    struct owner owner;      /* the record's (REAP: a dead replica's core and domain) */
    uint32_t caller_core;
    uint64_t caller;
    struct client *c;        /* whom to answer (NULL: nobody) */
    bool forwarded;          /* c is a replica: answer `forward` */
    bool drop_after;         /* c's channel closed meanwhile: then drop its names */
    uint32_t outstanding;    /* writes in flight */
    bool running;            /* in run_op: it sees to the end (writes may apply at once) */
    uint32_t deleted;        /* DROP/REAP: in this round */
    errval_t result;
    uint64_t index;          /* the entry that made it */
    uint64_t since;          /* forwarded: when first queued */
    struct op *next;         /* the forward queue, or the answered-waiting-to-apply list */
};

struct client {
    struct service_chan *sc;
    uint32_t chan;           /* its number on this replica (the owner of its names) */
    uint32_t names;          /* registered (or joined) through this channel */
    bool wrote;              /* it made a record (a name, a group, an instance) */
    struct op *op;           /* its one write in flight */
};

static struct core_info machine;
static uint32_t me, my_domain;
static struct client *clients[MAX_CLIENTS];
static uint32_t nclients, next_chan;
static uint64_t served, accepted, dropped, refused;
static struct waitset ws;
static struct service_acceptor acceptor;
static uint64_t peer_service, client_service;
static uint32_t members[CORE_INFO_MAX_NODES], nmembers;
static int life;
static bool reaping;           /* the leader is deleting an ended replica's records */

static void finish(struct op *o);
static void forward_queue(struct op *o);
static void run_op(struct op *o);

/* -- the table ------------------------------------------------------------------------ */

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static void hex16(char *out, uint64_t v)
{
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = "0123456789abcdef"[v & 15];
}

static errval_t name_key(char key[STORE_KEY_MAX + 1], const char *name)
{
    size_t n = strlen(name);
    if (!n || n + 1 > STORE_KEY_MAX)
        return ERR_INVALID_ARG;
    key[0] = 'n';
    memcpy(key + 1, name, n + 1);
    return kv_check_key(key) ? ERR_INVALID_ARG : ERR_OK;   /* printable, no space */
}

/* "i" HASH: the prefix of a name's instances; with SERVICE, one's key. */
static void inst_prefix(char key[STORE_KEY_MAX + 1], const char *name)
{
    key[0] = 'i';
    hex16(key + 1, fnv(name));
    key[17] = 0;
}

static void inst_key(char key[STORE_KEY_MAX + 1], const char *name, uint64_t service)
{
    inst_prefix(key, name);
    hex16(key + 17, service);
    key[33] = 0;
}

static const struct name_rec *name_of(const struct kv_entry *e)
{
    return e && e->value_len == sizeof(struct name_rec) ? (const struct name_rec *)e->value : 0;
}

static const struct inst_rec *inst_of(const struct kv_entry *e)
{
    return e && e->key[0] == 'i' && e->value_len == sizeof(struct inst_rec) ? (const struct inst_rec *)e->value : 0;
}

static const struct name_rec *find_name(const char *name)
{
    char key[STORE_KEY_MAX + 1];
    return name_key(key, name) ? 0 : name_of(kv_get(replica_table(), key));
}

/* Calls each(record) for every instance of `name`, until it returns false. */
static void each_instance(const char *name, bool (*each)(const struct inst_rec *r, void *arg), void *arg)
{
    char prefix[STORE_KEY_MAX + 1];
    uint32_t count;
    const struct kv *t = replica_table();
    inst_prefix(prefix, name);
    uint32_t first = kv_prefix(t, prefix, &count);
    for (uint32_t i = 0; i < count; i++) {
        const struct inst_rec *r = inst_of(t->e[first + i]);
        if (r && !strcmp(r->name, name) && !each(r, arg))
            return;
    }
}

static uint32_t name_count(void)
{
    const struct kv *t = replica_table();
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        const struct name_rec *r = t->e[i]->key[0] == 'n' ? name_of(t->e[i]) : 0;
        n += inst_of(t->e[i]) != 0 || (r && r->kind == REC_NAME);
    }
    return n;
}

static bool same_owner(const struct owner *a, const struct owner *b)
{
    return a->core == b->core && a->domain == b->domain && a->chan == b->chan;
}

/* -- nearest instance ----------------------------------------------------------------- */

/* How far an instance on core `to` is from a caller on core `from`. */
static uint32_t distance(uint32_t from, uint32_t to)
{
    if (from == to)
        return 0;
    if (from >= machine.ncores || to >= machine.ncores || from >= CORE_INFO_MAX_CORES || to >= CORE_INFO_MAX_CORES)
        return ~0u;
    uint32_t a = machine.core_node[from], b = machine.core_node[to];
    if (a == b)
        return 1;
    if (a >= CORE_INFO_MAX_NODES || b >= CORE_INFO_MAX_NODES)
        return ~0u;
    return 10 + machine.node_distance[a][b];
}

struct nearest { uint32_t core, best, ties, pick; const struct inst_rec *found; };

static bool count_best(const struct inst_rec *r, void *arg)
{
    struct nearest *n = arg;
    uint32_t d = distance(n->core, SERVICE_CORE(r->service));
    if (d < n->best) {
        n->best = d;
        n->ties = 1;
    } else if (d == n->best) {
        n->ties++;
    }
    return true;
}

static bool take_pick(const struct inst_rec *r, void *arg)
{
    struct nearest *n = arg;
    if (distance(n->core, SERVICE_CORE(r->service)) == n->best && n->pick-- == 0) {
        n->found = r;
        return false;
    }
    return true;
}

/* -- answers -------------------------------------------------------------------------- */

static struct client *client_of(struct idl_chan *ch) { return ch->user; }

static errval_t on_lookup(struct idl_chan *ch, const struct nameservice_lookup_call_args *a)
{
    static uint32_t turn;   /* ties are taken in turn (this replica's clients) */
    struct nearest n = { .core = client_of(ch)->sc->peer_core, .best = ~0u };
    each_instance(a->name, count_best, &n);
    if (n.ties) {
        n.pick = turn++ % n.ties;
        each_instance(a->name, take_pick, &n);
        if (n.found)
            return nameservice_lookup_reply_send(ch, ERR_OK, n.found->iface, n.found->service);
    }
    const struct name_rec *r = find_name(a->name);
    if (r && r->kind == REC_NAME)
        return nameservice_lookup_reply_send(ch, ERR_OK, r->iface, r->arg);
    return nameservice_lookup_reply_send(ch, ERR_NOT_FOUND, "", 0);
}

struct lines { char *text; size_t size, len; uint32_t first, total, count; };

/* One line, if it is at or past `first` and fits. */
static void line(struct lines *l, const char *s)
{
    if (l->total++ < l->first)
        return;
    size_t n = strlen(s);
    if (l->len + n >= l->size)
        return;   /* counted in total, not shown: ask again from first + count */
    memcpy(l->text + l->len, s, n + 1);
    l->len += n;
    l->count++;
}

static bool instance_line(const struct inst_rec *r, void *arg)
{
    char s[48];
    snprintf(s, sizeof s, "%u %llu\n", SERVICE_CORE(r->service), (unsigned long long)r->service);
    line(arg, s);
    return true;
}

static errval_t on_instances(struct idl_chan *ch, const struct nameservice_instances_call_args *a)
{
    static char text[1201];
    struct lines l = { .text = text, .size = sizeof text, .first = a->first };
    text[0] = 0;
    each_instance(a->name, instance_line, &l);
    const struct name_rec *r = find_name(a->name);
    if (r && r->kind == REC_NAME) {
        char s[48];
        snprintf(s, sizeof s, "%u %llu\n", SERVICE_CORE(r->arg), (unsigned long long)r->arg);
        line(&l, s);
    }
    return nameservice_instances_reply_send(ch, l.total ? ERR_OK : ERR_NOT_FOUND, l.total, l.count, text);
}

/* Names (a service's, and each instance of a group) from `first` on: as
 * many whole lines as fit one reply, and how many there are. */
static errval_t on_list(struct idl_chan *ch, const struct nameservice_list_call_args *a)
{
    static char text[NAMESERVICE_LIST_TEXT + 1];
    struct lines l = { .text = text, .size = sizeof text, .first = a->first };
    const struct kv *t = replica_table();
    text[0] = 0;
    for (uint32_t i = 0; i < t->n && l.len + 1 < l.size; i++) {
        char s[128];
        const struct inst_rec *in = inst_of(t->e[i]);
        const struct name_rec *r = t->e[i]->key[0] == 'n' ? name_of(t->e[i]) : 0;
        if (in)
            snprintf(s, sizeof s, "%s %s %u\n", in->name, in->iface, SERVICE_CORE(in->service));
        else if (r && r->kind == REC_NAME)
            snprintf(s, sizeof s, "%s %s %u\n", t->e[i]->key + 1, r->iface, SERVICE_CORE(r->arg));
        else
            continue;
        uint32_t before = l.count;
        line(&l, s);
        if (l.total > l.first && l.count == before)
            break;   /* full: the rest from first + count */
    }
    return nameservice_list_reply_send(ch, ERR_OK, name_count(), l.count, text);
}

static errval_t on_stats(struct idl_chan *ch, const struct nameservice_stats_call_args *a)
{
    (void)a;
    struct heap *h = malloc_heap();
    return nameservice_stats_reply_send(ch, nclients, name_count(), accepted, dropped, refused, served,
                                        slot_free_count(), ram_free_bytes(), h->bytes_in_use, h->chunks_in_use);
}

/* The answer to op o's caller, whichever call it was. */
static void answer(struct op *o)
{
    struct client *c = o->c;
    if (!c)
        return;
    struct idl_chan *ch = &c->sc->idl;
    errval_t err = o->forwarded              ? nameservice_forward_reply_send(ch, o->result, o->index)
                   : o->kind == OP_REGISTER  ? nameservice_register_reply_send(ch, o->result)
                   : o->kind == OP_GROUP     ? nameservice_group_reply_send(ch, o->result)
                   : o->kind == OP_JOIN      ? nameservice_join_reply_send(ch, o->result)
                   : o->kind == OP_UNREGISTER ? nameservice_unregister_reply_send(ch, o->result)
                                             : ERR_OK;
    if (!o->forwarded && !o->result && (o->kind == OP_REGISTER || o->kind == OP_JOIN))
        c->names++;
    if (!o->forwarded && !o->result && o->kind != OP_UNREGISTER)
        c->wrote = true;
    if (!o->forwarded && !o->result && o->kind == OP_UNREGISTER && c->names)
        c->names--;
    if (err)
        printf("names: cannot answer a client on core %u: %s\n", c->sc->peer_core, err_name(err));
}

/* -- writes at the leader --------------------------------------------------------------- */

static void op_done(void *arg, errval_t res, uint64_t index);
static void op_complete(struct op *o);

static errval_t write_rec(struct op *o, enum kv_op kop, const char *key, bool present, const void *expect,
                          size_t expect_len, const void *value, size_t value_len)
{
    struct kv_write w = { .op = kop, .key = key, .present = present, .expect = expect, .expect_len = expect_len,
                          .value = value, .value_len = value_len };
    o->outstanding++;
    errval_t err = replica_write(&w, op_done, o);
    if (err)
        o->outstanding--;
    return err;
}

/* Delete up to DELETES_AT_ONCE records that `o` covers (DROP: its
 * channel's; REAP: its core's former lives'), each only if unchanged. */
static errval_t delete_round(struct op *o)
{
    static char keys[DELETES_AT_ONCE][STORE_KEY_MAX + 1];
    static uint8_t values[DELETES_AT_ONCE][STORE_VALUE_MAX];
    static size_t lens[DELETES_AT_ONCE];
    const struct kv *t = replica_table();
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->n && n < DELETES_AT_ONCE; i++) {
        const struct kv_entry *e = t->e[i];
        const struct inst_rec *in = inst_of(e);
        const struct name_rec *r = e->key[0] == 'n' ? name_of(e) : 0;
        const struct owner *w = in ? &in->owner : r ? &r->owner : 0;
        bool mine = w && (o->kind == OP_DROP ? same_owner(w, &o->owner)
                                             : w->core == o->owner.core && w->domain == o->owner.domain);
        if (!mine)
            continue;
        memcpy(keys[n], e->key, e->key_len + 1u);
        memcpy(values[n], e->value, e->value_len);
        lens[n++] = e->value_len;
    }
    /* Copied first: a group of one applies each write at once. */
    o->deleted = 0;
    errval_t err = ERR_OK;
    for (uint32_t i = 0; i < n && !err; i++)
        err = write_rec(o, KV_DEL, keys[i], true, values[i], lens[i], 0, 0);   /* only if unchanged */
    if (n)
        o->deleted = n;
    return err;
}

/* Delete record `key`, only if its value is still `value`. */
static errval_t delete_rec(struct op *o, const char *key, const void *value, size_t len)
{
    return write_rec(o, KV_DEL, key, true, value, len, 0, 0);
}

/* Check o against the leader's table and make its write(s); finish(o)
 * when they are applied (op_done), or at once if there is nothing to
 * write. */
static void run_op(struct op *o)
{
    char key[STORE_KEY_MAX + 1];
    errval_t err = ERR_OK;
    o->result = ERR_OK;
    o->index = 0;
    o->outstanding = 0;
    o->running = true;
    if (o->kind == OP_DROP || o->kind == OP_REAP) {
        err = delete_round(o);
    } else if (!(err = name_key(key, o->name))) {
        const struct kv_entry *e = kv_get(replica_table(), key);
        const struct name_rec *r = name_of(e);
        if (o->kind == OP_REGISTER || o->kind == OP_GROUP) {
            uint8_t kind = o->kind == OP_REGISTER ? REC_NAME : REC_GROUP;
            uint64_t arg = kind == REC_NAME ? o->service : o->key;
            struct name_rec rec = { .kind = kind, .arg = arg, .owner = o->owner };
            snprintf(rec.iface, sizeof rec.iface, "%s", o->iface);
            uint32_t groups = 0;
            const struct kv *t = replica_table();
            for (uint32_t i = 0; kind == REC_GROUP && !r && i < t->n; i++) {
                const struct name_rec *g = t->e[i]->key[0] == 'n' ? name_of(t->e[i]) : 0;
                groups += g && g->kind == REC_GROUP;
            }
            if (r && (r->kind != kind || r->arg != arg))
                err = ERR_NAME_TAKEN;
            else if (r)   /* the same service, or the same group: this channel takes it over */
                err = write_rec(o, KV_CAS, key, true, e->value, e->value_len, &rec, sizeof rec);
            else if (groups >= MAX_GROUPS)
                err = ERR_TOO_MANY;
            else
                err = write_rec(o, KV_CAS, key, false, 0, 0, &rec, sizeof rec);
        } else if (o->kind == OP_JOIN) {
            struct inst_rec rec = { .service = o->service, .owner = o->owner };
            char ikey[STORE_KEY_MAX + 1];
            if (!r || r->kind != REC_GROUP)
                err = ERR_NOT_FOUND;
            else if (r->arg != o->key)
                err = ERR_NOT_PERMITTED;   /* only the instances the starter started */
            if (!err) {
                snprintf(rec.name, sizeof rec.name, "%s", o->name);
                snprintf(rec.iface, sizeof rec.iface, "%s", r->iface);
                inst_key(ikey, o->name, o->service);
                err = write_rec(o, KV_PUT, ikey, false, 0, 0, &rec, sizeof rec);
            }
        } else {   /* OP_UNREGISTER: a name, or an instance, of the caller's channel */
            const struct inst_rec *found = 0;
            const struct kv *t = replica_table();
            char ikey[STORE_KEY_MAX + 1];
            uint32_t count, first;
            inst_prefix(ikey, o->name);
            first = kv_prefix(t, ikey, &count);
            for (uint32_t i = 0; i < count && !found; i++) {
                const struct inst_rec *in = inst_of(t->e[first + i]);
                if (in && !strcmp(in->name, o->name) && same_owner(&in->owner, &o->owner)) {
                    found = in;
                    e = t->e[first + i];
                }
            }
            if (found)
                err = delete_rec(o, e->key, e->value, e->value_len);
            else if (!r || r->kind != REC_NAME)
                err = ERR_NOT_FOUND;
            else if (!same_owner(&r->owner, &o->owner))
                err = ERR_NOT_PERMITTED;   /* only who registered a name may remove it */
            else
                err = delete_rec(o, key, e->value, e->value_len);
        }
    }
    o->running = false;
    if ((err == ERR_NOT_LEADER || err == ERR_NO_LEADER) && !o->outstanding && o->kind != OP_REAP) {
        forward_queue(o);   /* it stepped down: the new leader does it */
        return;
    }
    if (err && !o->result)
        o->result = err;
    if (!o->outstanding)
        op_complete(o);
}

/* One of o's writes was applied (or its outcome is unknown: ERR_NO_LEADER). */
static void op_done(void *arg, errval_t res, uint64_t index)
{
    struct op *o = arg;
    o->outstanding--;
    if (index > o->index)
        o->index = index;
    if (res == ERR_NO_LEADER)
        o->result = ERR_NO_LEADER;
    else if (res && (o->kind != OP_DROP && o->kind != OP_REAP))
        o->result = res == ERR_CAS_FAILED ? ERR_NAME_TAKEN : res;   /* a racing registration won */
    if (!o->outstanding && !o->running)
        op_complete(o);
}

/* Every write of o's is applied. */
static void op_complete(struct op *o)
{
    if (o->result == ERR_NO_LEADER && o->kind != OP_REAP) {   /* every write of it is idempotent: the next leader does it again */
        o->result = ERR_OK;
        forward_queue(o);
        return;
    }
    if ((o->kind == OP_DROP || o->kind == OP_REAP) && o->deleted) {
        run_op(o);   /* the next round, until none is left */
        return;
    }
    finish(o);
}

/* -- forwarding to the leader ------------------------------------------------------------- */

/* Writes waiting for a leader, or at it (the head), in order; and those
 * answered by it, waiting for this replica to apply them. */
static struct {
    struct op *head, *tail;
    struct op *applying;
    struct service_chan ch;
    bool up, waiting;        /* connected; the head is sent and unanswered */
    uint32_t core;           /* the leader connected to */
    uint64_t retry_ns;       /* not before this: the leader said it cannot yet */
} fw;

static void forward_queue(struct op *o)
{
    o->next = 0;
    if (!o->since)
        o->since = now_ns();
    if (fw.tail)
        fw.tail->next = o;
    else
        fw.head = o;
    fw.tail = o;
}

static struct op *forward_pop(void)
{
    struct op *o = fw.head;
    fw.head = o->next;
    if (!fw.head)
        fw.tail = 0;
    o->next = 0;
    fw.waiting = false;
    return o;
}

static void forward_hang_up(void)
{
    if (fw.up)
        service_chan_close(&fw.ch, ERR_OK);
    fw.up = fw.waiting = false;
}

/* Answered by the leader: once this replica applied that far, answer. */
static void answered(struct op *o)
{
    o->next = fw.applying;
    fw.applying = o;
}

static bool forward_poll(struct ws_source *s)
{
    (void)s;
    bool did = false;
    uint64_t now = now_ns();
    for (struct op **p = &fw.applying; *p;) {   /* read your own write */
        struct op *o = *p;
        if (o->index <= replica_applied() || o->result) {
            *p = o->next;
            finish(o);
            did = true;
        } else {
            p = &o->next;
        }
    }
    uint32_t leader;
    bool known = replica_leader(&leader);
    if (fw.up && (!known || leader != fw.core || urpc_peer_closed(&fw.ch.ch)))
        forward_hang_up();   /* the head, if it was sent, is sent again: every write is idempotent */
    while (fw.head && known && leader == me) {   /* this replica leads now */
        struct op *o = forward_pop();
        o->since = 0;
        run_op(o);
        did = true;
    }
    /* A client's write that finds no leader for long is answered so. */
    while (fw.head && fw.head->c && !fw.head->forwarded && !fw.waiting && now - fw.head->since > FORWARD_GIVE_UP_NS &&
           !known) {
        struct op *o = forward_pop();
        o->result = ERR_NO_LEADER;
        finish(o);
        did = true;
    }
    if (!fw.head || !known || leader == me || now < fw.retry_ns)
        return did;
    if (!fw.up) {
        if (service_connect(NAMES_AT(leader), &fw.ch))
            return did;   /* its clients' end is not up yet: later */
        fw.up = true;
        fw.core = leader;
    }
    if (!fw.waiting) {
        struct op *o = fw.head;
        uint8_t buf[nameservice_forward_call_size_max];
        size_t len;
        errval_t err = nameservice_forward_call_encode(buf, sizeof buf, &len, o->kind, o->name, o->iface, o->service,
                                                       o->key, o->owner.core, o->owner.domain, o->owner.chan,
                                                       o->caller_core, o->caller);
        if (!err)
            err = fw.ch.idl.send(&fw.ch.idl, buf, len, URPC_NONBLOCK);
        if (err == ERR_WOULD_BLOCK)
            return did;
        if (err) {
            forward_hang_up();
            return did;
        }
        fw.waiting = true;
        did = true;
    }
    uint8_t buf[nameservice_size_max];
    size_t len = 0;
    struct nameservice_msg m;
    errval_t err = fw.ch.idl.recv(&fw.ch.idl, buf, sizeof buf, &len, URPC_NONBLOCK);
    if (err == ERR_WOULD_BLOCK)
        return did;
    if (err || nameservice_decode(buf, len, &m) || m.type != nameservice_forward_reply) {
        forward_hang_up();
        return true;
    }
    errval_t res = m.u.forward_reply.err;
    if (res == ERR_NOT_LEADER || res == ERR_NO_LEADER) {   /* not yet, or not any more: again soon */
        fw.waiting = false;
        fw.retry_ns = now + 20000000ull;
        if (res == ERR_NOT_LEADER)
            forward_hang_up();
        return true;
    }
    struct op *o = forward_pop();
    o->result = res;
    o->index = m.u.forward_reply.index;
    answered(o);
    return true;
}

/* -- clients ------------------------------------------------------------------------------ */

static void drop_names_of(struct client *c);

/* o is done: answer its caller, then let it go (or, its channel having
 * closed meanwhile, drop that channel's names now). */
static void finish(struct op *o)
{
    answer(o);
    struct client *c = o->c;
    if (c && c->op == o)
        c->op = 0;
    if (o->kind == OP_REAP)
        reaping = false;
    if (o->drop_after) {
        o->drop_after = false;
        o->kind = OP_DROP;
        o->c = 0;
        o->forwarded = false;
        o->result = ERR_OK;
        o->since = 0;
        uint32_t leader;
        if (replica_leader(&leader) && leader == me)
            run_op(o);
        else
            forward_queue(o);
        return;
    }
    free(o);
}

/* A write of client c's: here if this replica leads, else forwarded. */
static errval_t start_op(struct client *c, uint8_t kind, const char *name, const char *iface, uint64_t service,
                         uint64_t key, bool fwd, const struct owner *owner, uint32_t caller_core, uint64_t caller)
{
    struct op *o = calloc(1, sizeof *o);
    if (!o)
        return ERR_NO_MEMORY;
    o->kind = kind;
    snprintf(o->name, sizeof o->name, "%s", name);
    snprintf(o->iface, sizeof o->iface, "%s", iface);
    o->service = service;
    o->key = key;
    o->owner = *owner;
    o->caller_core = caller_core;
    o->caller = caller;
    o->c = c;
    o->forwarded = fwd;
    c->op = o;
    uint32_t leader;
    if (replica_leader(&leader) && leader == me)
        run_op(o);
    else if (fwd)   /* a replica forwarded it to a leader that is no more */
        o->result = ERR_NOT_LEADER, finish(o);
    else
        forward_queue(o);
    return ERR_OK;
}

static struct owner owner_of(struct client *c) { return (struct owner){ me, my_domain, c->chan }; }

static bool own_service(struct client *c, uint64_t service)
{
    return SERVICE_CORE(service) == c->sc->peer_core && SERVICE_DOMAIN(service) == (uint32_t)c->sc->peer;
}

/* A client's write: checked here for what this replica knows (the caller,
 * its channel's quota), then done by the leader; answered later. */
static errval_t client_write(struct idl_chan *ch, uint8_t kind, const char *name, const char *iface, uint64_t service,
                             uint64_t key)
{
    struct client *c = client_of(ch);
    char k[STORE_KEY_MAX + 1];
    errval_t err = ERR_OK;
    if (c->op)
        err = ERR_WOULD_BLOCK;   /* one call at a time: its stub never sends two */
    else if (name_key(k, name))
        err = ERR_INVALID_ARG;
    else if ((kind == OP_REGISTER || kind == OP_JOIN) && !own_service(c, service))
        err = ERR_NOT_PERMITTED;   /* only a service of the caller's own */
    else if (kind == OP_GROUP && !key)
        err = ERR_INVALID_ARG;
    else if ((kind == OP_REGISTER || kind == OP_JOIN) && c->names >= NAMES_PER_CLIENT)
        err = ERR_QUOTA;
    if (!err) {
        struct owner w = owner_of(c);
        err = start_op(c, kind, name, iface, service, key, false, &w, c->sc->peer_core, c->sc->peer);
    }
    if (!err)
        return ERR_OK;
    struct op now = { .kind = kind, .c = c, .result = err };
    answer(&now);
    return ERR_OK;
}

static errval_t on_register(struct idl_chan *ch, const struct nameservice_register_call_args *a)
{
    return client_write(ch, OP_REGISTER, a->name, a->iface, a->service, 0);
}

static errval_t on_group(struct idl_chan *ch, const struct nameservice_group_call_args *a)
{
    return client_write(ch, OP_GROUP, a->name, a->iface, 0, a->key);
}

static errval_t on_join(struct idl_chan *ch, const struct nameservice_join_call_args *a)
{
    return client_write(ch, OP_JOIN, a->name, "", a->service, a->key);
}

static errval_t on_unregister(struct idl_chan *ch, const struct nameservice_unregister_call_args *a)
{
    return client_write(ch, OP_UNREGISTER, a->name, "", 0, 0);
}

static bool is_member(uint32_t core)
{
    for (uint32_t i = 0; i < nmembers; i++)
        if (members[i] == core)
            return true;
    return false;
}

/* Another replica's client's write, at the leader. Only from a replica
 * that follows it (its domain on that core is one of its followers'). */
static errval_t on_forward(struct idl_chan *ch, const struct nameservice_forward_call_args *a)
{
    struct client *c = client_of(ch);
    uint32_t leader;
    errval_t err = ERR_OK;
    if (c->op)
        err = ERR_WOULD_BLOCK;
    else if (!replica_leader(&leader) || leader != me)
        err = ERR_NOT_LEADER;
    else if (!is_member(c->sc->peer_core) || a->owner_core != c->sc->peer_core)
        err = ERR_NOT_PERMITTED;
    else if (!replica_is_peer(c->sc->peer_core, c->sc->peer))
        err = ERR_NO_LEADER;   /* its hello is on its way, or it is being caught up: again soon */
    else if (a->op < OP_REGISTER || a->op > OP_DROP)
        err = ERR_INVALID_ARG;
    if (!err) {
        struct owner w = { a->owner_core, a->owner_domain, a->owner_chan };
        err = start_op(c, a->op, a->name, a->iface, a->service, a->key, true, &w, a->caller_core, a->caller);
    }
    return err ? nameservice_forward_reply_send(ch, err, 0) : ERR_OK;
}

static const struct nameservice_handlers handlers = {
    .register_call = on_register,
    .lookup_call = on_lookup,
    .unregister_call = on_unregister,
    .list_call = on_list,
    .stats_call = on_stats,
    .group_call = on_group,
    .join_call = on_join,
    .instances_call = on_instances,
    .forward_call = on_forward,
};

/* Replies never wait: a client with a full reply ring has stopped taking
 * its replies (one call at a time never fills it), and waiting for it
 * would stall every other client. It is dropped instead. */
static errval_t reply_send(struct idl_chan *ch, const void *msg, size_t len, unsigned flags)
{
    (void)flags;
    errval_t err = urpc_send(&((struct service_chan *)ch->state)->ch, msg, len, URPC_NONBLOCK);
    return err == ERR_WOULD_BLOCK ? ERR_TIMEOUT : err;
}

/* Its channel closed: the leader deletes the names it registered, after
 * its write in flight (if any) is done. */
static void drop_names_of(struct client *c)
{
    struct owner w = owner_of(c);
    if (c->op) {
        c->op->c = 0;
        c->op->drop_after = !c->op->forwarded;
        return;
    }
    if (!c->wrote)
        return;   /* nothing of its (a channel that only read, or a replica forwarding) */
    struct op *o = calloc(1, sizeof *o);
    if (!o) {
        printf("names: no memory to drop the names of a client on core %u\n", c->sc->peer_core);
        return;
    }
    o->kind = OP_DROP;
    o->owner = w;
    uint32_t leader;
    if (replica_leader(&leader) && leader == me)
        run_op(o);
    else
        forward_queue(o);
}

/* A client goes: its names, its channel, its memory. */
static void drop(struct client *c, errval_t why)
{
    drop_names_of(c);
    if (why != ERR_CHAN_CLOSED) {
        printf("names: client on core %u: %s\n", c->sc->peer_core, err_name(why));
        printf("@atoll {\"event\":\"names_drop\",\"client_core\":%u,\"client\":%llu,\"error\":\"%s\"}\n",
               c->sc->peer_core, (unsigned long long)c->sc->peer, err_name(why));
    }
    service_chan_close(c->sc, why == ERR_CHAN_CLOSED ? ERR_OK : why);
    free(c->sc);
    for (uint32_t i = 0; i < nclients; i++)
        if (clients[i] == c) {
            clients[i] = clients[--nclients];
            clients[nclients] = 0;
            break;
        }
    free(c);
    dropped++;
}

/* One request of one client; a client whose channel is gone is dropped. */
static bool serve_client(struct ws_source *s)
{
    struct client *c = s->arg;
    errval_t err = nameservice_serve_one(&c->sc->idl, &handlers, URPC_NONBLOCK);
    if (err == ERR_WOULD_BLOCK)
        return false;
    if (!err)
        served++;
    else if (err == ERR_MSG_UNKNOWN || err == ERR_MSG_MALFORMED || err == ERR_MSG_TOO_LONG)
        printf("names: client on core %u: %s\n", c->sc->peer_core, err_name(err));   /* the channel is fine */
    else
        drop(c, err);   /* hung up, broken, or takes no replies */
    return true;
}

static void client_accepted(struct service_chan *sc)
{
    struct client *c = nclients < MAX_CLIENTS ? calloc(1, sizeof *c) : 0;
    if (!c) {   /* full (or out of memory): the client hears why at once */
        service_chan_close(sc, nclients < MAX_CLIENTS ? ERR_NO_MEMORY : ERR_TOO_MANY);
        free(sc);
        refused++;
        return;
    }
    c->sc = sc;
    c->chan = ++next_chan;
    sc->idl.send = reply_send;
    sc->idl.user = c;
    service_chan_source(sc, serve_client, c);
    waitset_add(&ws, &sc->src);
    clients[nclients++] = c;
    accepted++;
}

/* A channel for the replica (from another replica) or for the name server. */
static void accepted_one(struct service_acceptor *a, struct service_chan *sc)
{
    (void)a;
    if ((uint16_t)sc->service == (uint16_t)peer_service)   /* the monitor says which by its number */
        replica_accepted(sc);
    else
        client_accepted(sc);
}

/* -- the replica ---------------------------------------------------------------------------- */

/* The other replicas: the monitor of each member core knows its own. */
static errval_t peers(const char *group, bool (*each)(uint32_t core, uint64_t service, void *arg), void *arg)
{
    (void)group;
    for (uint32_t i = 0; i < nmembers; i++)
        if (!each(members[i], NAMES_PEER_AT(members[i]), arg))
            break;
    return ERR_OK;
}

/* It holds the names (it leads, or has its leader's whole log): clients
 * may come. */
static void holds(bool now, uint64_t index)
{
    (void)index;
    if (!now || client_service)
        return;
    errval_t err = service_register_self(&client_service);
    if (err) {
        printf("names: cannot take clients: %s\n", err_name(err));
        return;
    }
    printf("@atoll {\"event\":\"names_up\",\"core\":%u,\"replicas\":%u,\"life\":%d,\"names\":%u}\n", me, nmembers,
           life, name_count());
}

/* -- names of replicas that ended ------------------------------------------------------------ */

/* Does the replica (core, domain), which took the channels of some records,
 * still live? Yes if it is this one or follows this leader; no if another
 * life of it follows (a core runs one replica at a time: its monitor's
 * names_id), or none is there any more (its core is dead, or its monitor
 * has not started the next yet). Else (one is there, not following yet)
 * not known: asked again at the next audit. */
static bool replica_gone(uint32_t core, uint32_t domain)
{
    if (core == me)
        return domain != my_domain;
    if (replica_is_peer(core, domain))
        return false;
    if (replica_has_peer_on(core))
        return true;   /* a newer life follows: the old one is gone */
    struct service_chan ch;
    errval_t err = service_connect(NAMES_PEER_AT(core), &ch);
    if (!err)
        service_chan_close(&ch, ERR_OK);
    return err == ERR_NOT_FOUND || err == ERR_CORE_DOWN;
}

/* Every AUDIT_NS, at the leader: the records whose replica (the one their
 * channel was on) ended are deleted (a REAP, one replica's at a time).
 * Its clients that live on have reconnected to another replica and
 * registered again what they keep, which changed those records' owner. */
#define AUDIT_NS 1000000000ull

static void audit(struct ws_timer *t)
{
    waitset_timer_arm(&ws, t, now_ns() + AUDIT_NS);
    uint32_t leader;
    if (reaping || !replica_leader(&leader) || leader != me)
        return;
    const struct kv *tb = replica_table();
    struct owner checked[8];
    uint32_t nchecked = 0;
    for (uint32_t i = 0; i < tb->n; i++) {
        const struct inst_rec *in = inst_of(tb->e[i]);
        const struct name_rec *r = tb->e[i]->key[0] == 'n' ? name_of(tb->e[i]) : 0;
        const struct owner *w = in ? &in->owner : r ? &r->owner : 0;
        bool seen = !w;
        for (uint32_t k = 0; k < nchecked && !seen; k++)
            seen = checked[k].core == w->core && checked[k].domain == w->domain;
        if (seen)
            continue;
        if (nchecked < 8)
            checked[nchecked++] = *w;
        if (!replica_gone(w->core, w->domain))
            continue;
        struct op *o = calloc(1, sizeof *o);
        if (!o)
            return;
        o->kind = OP_REAP;
        o->owner = (struct owner){ w->core, w->domain, 0 };
        reaping = true;
        printf("@atoll {\"event\":\"names_reap\",\"core\":%u,\"replica_core\":%u,\"replica\":%u}\n", me,
               w->core, w->domain);
        run_op(o);
        return;
    }
}

int main(int argc, char **argv)
{
    static struct ws_source forwarder = { .poll = forward_poll, .name = "names forward" };
    static char cores[CORE_INFO_MAX_NODES * 4 + 1];
    life = argc > 1 && argv[1][0] == '1';
    me = startup()->core_id;
    sys_core_info(&machine);
    nmembers = names_cores(&machine, members, CORE_INFO_MAX_NODES);
    if (!is_member(me)) {   /* no topology: the boot core alone */
        members[0] = me;
        nmembers = 1;
    }
    size_t len = 0;
    for (uint32_t i = 0; i < nmembers; i++)
        len += (size_t)snprintf(cores + len, sizeof cores - len, i ? ",%u" : "%u", members[i]);
    struct replica_config config = { .name = "names", .events = "names", .cores = cores, .life = life, .peers = peers, .holds = holds };
    errval_t err = replica_init(&config);
    if (!err)
        err = service_register_self(&peer_service);
    if (err) {
        printf("names: cannot become a service: %s\n", err_name(err));
        return 1;
    }
    my_domain = SERVICE_DOMAIN(peer_service);
    waitset_init(&ws);
    service_acceptor_init(&acceptor, accepted_one, 0);
    waitset_add(&ws, &acceptor.src);
    waitset_add(&ws, &forwarder);
    replica_attach(&ws, peer_service);
    static struct ws_timer auditor = { .fire = audit };
    waitset_timer_arm(&ws, &auditor, now_ns() + AUDIT_NS);
    waitset_run(&ws);
    return 0;
}

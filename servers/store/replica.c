/*
 * A replica of the store (docs/store.md): `store serve NAME KEY CORES`.
 *
 * The replicas are the instances of one group, one on each core of CORES
 * (the placement's cores, "$cores" in the manifest). At boot the one on the
 * first core leads term 1; after that, whoever won the latest election
 * (below). The leader sequences every write into an operation log,
 * sends each entry to every follower, and commits an entry once a majority
 * of the replicas (itself included) hold it; every replica applies
 * committed entries in index order (kv.h), so all hold the same table at
 * the same index. A follower opens one channel to the leader and says
 * `hello`; the leader answers with its table (state transfer: snap_begin,
 * snap_kv..., snap_end) and the uncommitted tail of its log, then streams
 * entries as they come. A follower that dies and is started again
 * (`svc restart NAME CORE`) catches up the same way.
 *
 * Writes go to the leader (a follower answers ERR_NOT_LEADER; `leader`
 * says where it is); the leader answers a write when it is committed and
 * applied. Reads are served by the replica a client calls: `fresh` reads
 * are linearizable by read index (a follower asks the leader for its
 * commit index, once per batch of reads, and answers when it has applied
 * that far); other reads see the replica's table as it is.
 *
 * No replica waits for another's room: the follower's acks are cumulative
 * and a read-index request covers every read before it, so both are
 * retried from the `flush` source when the channel is full; the leader
 * keeps for each follower the next entry to send and sends what fits from
 * the `pump` source, read-index answers too. (It waits only for its
 * clients, who wait for its answer, and while it sends a joining follower
 * its snapshot.)
 *
 * Elections (Raft's rules, with the candidate of each term fixed in
 * advance as in Viewstamped Replication; docs/store.md says why). Every
 * entry carries the term of the leader that made it. When a follower's
 * channel to the leader closes and the leader answers no more, the
 * followers wait for the candidate of the next term, members[term % n],
 * and move on to the term after if it does not win in ELECT_WAIT_NS. A
 * candidate asks every replica for its vote (vote_call, never waiting for
 * an answer); a replica grants it only if it has caught up in its present
 * life (a restarted replica has forgotten what it held), the term is above
 * any it knows, and the candidate's last entry (term, index) is at least
 * its own: so a majority of votes includes one that holds every committed
 * entry, and the winner holds it too. The new leader appends an entry of
 * its own term (op 0, changing nothing), commits nothing of an earlier
 * term but by committing that one, and answers fresh reads only from then
 * on; the followers join it as at boot (hello, state transfer). A replica
 * started again (the old leader too) follows whoever leads.
 *
 * models/store.pml models this protocol with three replicas, a follower's
 * crash and restart, and the leader's crash, an election and its restart;
 * the constants it shares with this file are checked by tools/check-models
 * (tools/atoll_models.py).
 */
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <atoll/recover.h>
#include <atoll/waitset.h>
#include <if/nameservice_if.h>
#include <if/store_if.h>
#include "kv.h"
#include "replica.h"
#include "store.h"

/* Every core of the largest machine (255) may have a client writing to the
 * leader at once (the store benchmark does), besides the followers. */
#define MAX_CLIENTS 320
#define CHANS_PER_DOMAIN 8    /* one domain cannot take every slot */
#define MAX_MEMBERS 64
/* Log entries a replica keeps beyond what it applied. The leader appends
 * only while fewer than LOG_CAP are uncommitted, and tells followers of
 * every commit before the next append, so a follower never holds more. */
#define LOG_CAP 512
_Static_assert(MAX_CLIENTS < LOG_CAP, "each client's one write in flight always fits the log");
#define WATCHES_PER_CHAN 4
#define NOTES_MAX 32      /* changes waiting for room on a watcher's channel */
#define KV_NOP 0          /* a new leader's first entry: changes nothing */
#define TICK_NS 20000000ull            /* without a leader: look for one this often */
#define ELECT_WAIT_NS 400000000ull     /* a term's candidate has this long to win */
#define ASK_TIMEOUT_NS 200000000ull    /* another replica answers `leader` within this */

enum pending { P_NONE, P_WRITE, P_READ_INDEX, P_READ_APPLY };

struct client {
    struct service_chan *ch;
    uint32_t slot;
    bool peer;             /* a follower's channel (at the leader) */
    bool gone;             /* hung up: closed at its next poll */
    uint32_t peer_core;
    uint64_t acked;        /* peer: the highest index it holds */
    uint64_t next;         /* peer: the next entry to send it */
    uint64_t commit_sent;  /* peer: the commit index it was told */
    uint64_t ri_tag;       /* peer: its latest read-index request, to answer */
    bool ri_due;
    enum pending pending;  /* a client's one call in flight */
    uint64_t wait_index;   /* P_WRITE: its entry; P_READ_APPLY: the index to reach */
    uint64_t ri_after;     /* P_READ_INDEX: needs a read-index request numbered above this */
    char key[STORE_KEY_MAX + 1];
    /* Watches: keys, the version last told, changes waiting for room. */
    char watch[WATCHES_PER_CHAN][STORE_KEY_MAX + 1];
    uint64_t watch_ver[WATCHES_PER_CHAN];
    bool watch_gone[WATCHES_PER_CHAN];   /* the key is absent as last told */
    uint32_t nwatch;
    struct note { uint64_t version; uint8_t w; bool deleted; } notes[NOTES_MAX];
    uint32_t note_head, note_n;
};

struct entry {
    uint64_t index;
    uint64_t term;           /* of the leader that made it */
    uint8_t op;
    bool present;
    uint16_t expect_len, value_len;
    char key[STORE_KEY_MAX + 1];
    uint8_t expect[STORE_VALUE_MAX], value[STORE_VALUE_MAX];
    struct client *origin;   /* leader: whom to answer (NULL: gone) */
    /* leader: a write of the program's own (replica_write): told its result */
    void (*done)(void *arg, errval_t res, uint64_t index);
    void *done_arg;
};

static const char *name;
static struct replica_config cfg;
static uint32_t me, members[MAX_MEMBERS], nmembers, majority;
static bool leading;
static uint64_t term;          /* the highest term this replica knows (led, followed or voted in) */
static uint64_t term_start;    /* leading: the index of its first entry (commit only from there) */
static bool caught_up;         /* it holds a leader's whole log, got in this life: it may vote */
static bool first_life;        /* never started before ($life 0), and no snapshot replaced a log it held */
static bool reached;           /* a leader's snapshot began in this life */
static struct kv table;
static struct entry logring[LOG_CAP];
static uint64_t applied, commit, last;   /* applied <= commit; log holds (applied, last] */
static uint64_t applied_term;            /* the term of entry `applied` */
static struct client *clients[MAX_CLIENTS];
static uint32_t nclients;
static uint64_t ops;
static struct waitset *ws;   /* the program's loop (replica_attach) */
static uint64_t my_service;

/* The follower's side: its channel to the leader. */
static struct {
    struct service_chan ch;
    bool up;               /* connected and said hello */
    uint64_t service;      /* the leader's service id */
    uint32_t core;         /* the leader's core */
    bool snapping;         /* between snap_begin and snap_end */
    uint64_t upto;         /* the leader's last entry when it sent the snapshot */
    uint64_t ack_sent;     /* the highest index acknowledged */
    uint64_t ri_next, ri_sent;   /* read-index requests: next number, last sent */
    bool ri_wanted;
} up;

static struct entry *at(uint64_t index) { return &logring[index % LOG_CAP]; }
static uint64_t last_term(void) { return last > applied ? at(last)->term : applied_term; }

static struct kv_write write_of(const struct entry *e)
{
    return (struct kv_write){ .op = e->op, .key = e->key, .present = e->present, .expect = e->expect,
                              .expect_len = e->expect_len, .value = e->value, .value_len = e->value_len };
}

/* -- reads ------------------------------------------------------------------------------ */

static errval_t reply_get(struct client *c, const char *key)
{
    const struct kv_entry *e = kv_get(&table, key);
    ops++;
    return e ? store_get_reply_send(&c->ch->idl, ERR_OK, e->value, e->value_len, e->version)
             : store_get_reply_send(&c->ch->idl, ERR_NOT_FOUND, (const uint8_t *)"", 0, 0);
}

/* Reads waiting for this replica to apply far enough. */
static void serve_waiting_reads(void)
{
    for (uint32_t i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = clients[i];
        if (c && c->pending == P_READ_APPLY && c->wait_index <= applied && !up.snapping) {
            c->pending = P_NONE;
            if (reply_get(c, c->key))
                c->gone = true;
        }
    }
}

/* -- watches ----------------------------------------------------------------------------- */

/* Send c's waiting changes, without waiting for room (a watcher that does
 * not read only makes its own queue grow). True if it sent any. */
static bool deliver(struct client *c)
{
    uint8_t buf[store_changed_size_max];
    size_t len;
    bool did = false;
    while (c->note_n && !c->gone) {
        const struct note *n = &c->notes[c->note_head];
        errval_t err = store_changed_encode(buf, sizeof buf, &len, c->watch[n->w], n->version, n->deleted);
        if (!err)
            err = c->ch->idl.send(&c->ch->idl, buf, len, URPC_NONBLOCK);
        if (err == ERR_WOULD_BLOCK)
            break;
        if (err)
            c->gone = true;
        c->note_head = (c->note_head + 1) % NOTES_MAX;
        c->note_n--;
        did = true;
    }
    return did;
}

/* Key `key` was changed by log entry `version` (deleted: it is gone): tell
 * its watchers, once per change. A watcher whose queue is full is hung up. */
static void notify(const char *key, uint64_t version, bool deleted)
{
    for (uint32_t i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = clients[i];
        for (uint32_t w = 0; c && !c->gone && w < c->nwatch; w++) {
            if (strcmp(c->watch[w], key) || c->watch_ver[w] == version)
                continue;
            c->watch_ver[w] = version;
            c->watch_gone[w] = deleted;
            if (c->note_n == NOTES_MAX) {
                c->gone = true;
                break;
            }
            uint32_t at_ = (c->note_head + c->note_n++) % NOTES_MAX;
            c->notes[at_].version = version;
            c->notes[at_].w = (uint8_t)w;
            c->notes[at_].deleted = deleted;
            deliver(c);
        }
    }
}

/* After a state transfer: every watched key whose version moved, once. */
static void notify_all_watched(void)
{
    for (uint32_t i = 0; i < MAX_CLIENTS; i++)
        for (uint32_t w = 0; clients[i] && w < clients[i]->nwatch; w++) {
            const struct kv_entry *e = kv_get(&table, clients[i]->watch[w]);
            if (e || !clients[i]->watch_gone[w])   /* absent as told: no change */
                notify(clients[i]->watch[w], e ? e->version : applied, !e);
        }
}

/* -- applying the log --------------------------------------------------------------------- */

static void apply_committed(void)
{
    while (applied < commit && applied < last) {
        struct entry *e = at(applied + 1);
        struct kv_write w = write_of(e);
        errval_t res = e->op == KV_NOP ? ERR_OK : kv_apply(&table, e->index, &w);
        applied++;
        applied_term = e->term;
        ops++;
        if (!res && e->op != KV_NOP)
            notify(e->key, e->index, e->op == KV_DEL);
        struct client *c = e->origin;
        e->origin = NULL;
        if (e->done) {
            void (*done)(void *, errval_t, uint64_t) = e->done;
            e->done = NULL;
            done(e->done_arg, res, e->index);
        }
        if (c && c->pending == P_WRITE && c->wait_index == e->index) {
            c->pending = P_NONE;
            errval_t err = e->op == KV_PUT ? store_put_reply_send(&c->ch->idl, res, e->index)
                           : e->op == KV_DEL ? store_del_reply_send(&c->ch->idl, res, e->index)
                                             : store_cas_reply_send(&c->ch->idl, res, e->index);
            if (err)
                c->gone = true;
        }
    }
    serve_waiting_reads();
}

/* -- the leader ------------------------------------------------------------------------- */

/* May the leader answer a fresh read from its table? Once it committed an
 * entry of its own term, and while a majority of the replicas are still
 * with it: a follower that votes for another hangs up on it first, so a
 * leader deposed behind its back sees that before its successor can have
 * acknowledged any write (docs/store.md). */
static bool may_answer_reads(void)
{
    uint32_t with = 1;
    for (uint32_t i = 0; i < MAX_CLIENTS; i++)
        if (clients[i] && clients[i]->peer && !clients[i]->gone && !urpc_peer_closed(&clients[i]->ch->ch))
            with++;
    return leading && commit >= term_start && with >= majority;
}

/* Send follower p what it lacks, without ever waiting for room: the
 * entries from p->next, then the commit index. A follower that does not
 * drain its channel only falls behind (and is dropped when the log moves
 * past what it lacks: it joins again with a snapshot); the leader never
 * stops for it. True if it sent anything. */
static bool pump(struct client *p)
{
    uint8_t buf[store_append_size_max];
    size_t len;
    bool did = false;
    errval_t err = ERR_OK;
    while (!err && p->next <= last) {
        const struct entry *e = at(p->next);
        if (e->index != p->next) {   /* overwritten: it joins again (leader_write drops it first) */
            p->gone = true;
            return did;
        }
        err = store_append_encode(buf, sizeof buf, &len, e->index, e->term, commit, e->op, e->key, e->present,
                                  e->expect, e->expect_len, e->value, e->value_len);
        if (!err && !(err = p->ch->idl.send(&p->ch->idl, buf, len, URPC_NONBLOCK))) {
            p->next++;
            p->commit_sent = commit;
            did = true;
        }
    }
    if (!err && p->commit_sent < commit && !store_commit_encode(buf, sizeof buf, &len, commit) &&
        !(err = p->ch->idl.send(&p->ch->idl, buf, len, URPC_NONBLOCK))) {
        p->commit_sent = commit;
        did = true;
    }
    /* Read index: the commit index now, which is at least what it was when
     * the request came (a later request covers the earlier ones); only once
     * this leader has committed in its term (before, its commit index may
     * lag the last leader's) and while a majority is still with it. */
    if (!err && p->ri_due && may_answer_reads() && !store_readindex_reply_encode(buf, sizeof buf, &len, p->ri_tag, commit) &&
        !(err = p->ch->idl.send(&p->ch->idl, buf, len, URPC_NONBLOCK))) {
        p->ri_due = false;
        did = true;
    }
    if (err && err != ERR_WOULD_BLOCK)
        p->gone = true;
    return did;
}

static bool pump_all(struct ws_source *s)
{
    (void)s;
    bool did = false;
    for (uint32_t i = 0; i < MAX_CLIENTS; i++)
        if (clients[i] && clients[i]->peer && !clients[i]->gone)
            did |= pump(clients[i]);
    return did;
}

/* What waits for room: entries for followers, changes for watchers. */
static bool outbox(struct ws_source *s)
{
    bool did = leading && pump_all(s);
    for (uint32_t i = 0; i < MAX_CLIENTS; i++)
        if (clients[i] && clients[i]->note_n && !clients[i]->gone)
            did |= deliver(clients[i]);
    return did;
}

/* The highest index a majority holds: the leader holds `last`. */
static void advance_commit(void)
{
    uint64_t held[MAX_MEMBERS + 1];
    uint32_t n = 0;
    held[n++] = last;
    for (uint32_t i = 0; i < MAX_CLIENTS && n < MAX_MEMBERS; i++)
        if (clients[i] && clients[i]->peer && !clients[i]->gone)
            held[n++] = clients[i]->acked;
    if (n < majority)
        return;
    for (uint32_t i = 1; i < n; i++)   /* descending; a handful of replicas */
        for (uint32_t j = i; j > 0 && held[j - 1] < held[j]; j--) {
            uint64_t t = held[j];
            held[j] = held[j - 1];
            held[j - 1] = t;
        }
    uint64_t c = held[majority - 1];
    if (c <= commit || c < term_start)
        return;   /* an earlier term's entries commit only with one of this term (Raft, 5.4.2) */
    commit = c;
    apply_committed();
    pump_all(NULL);   /* the followers learn the commit index */
}

/* Sequence write `w` as the next entry (the leader's). */
static errval_t append_write(const struct kv_write *w, struct entry **out)
{
    errval_t err = kv_check_write(w);
    if (err)
        return err;
    if (last - applied >= LOG_CAP)
        return ERR_WOULD_BLOCK;   /* only right after an election (an old term's tail): MAX_CLIENTS < LOG_CAP */
    struct entry *e = at(last + 1);
    *e = (struct entry){ .index = last + 1, .term = term, .op = (uint8_t)w->op, .present = w->present,
                         .expect_len = (uint16_t)w->expect_len, .value_len = (uint16_t)w->value_len };
    memcpy(e->key, w->key, strlen(w->key) + 1);
    if (w->expect_len)
        memcpy(e->expect, w->expect, w->expect_len);
    if (w->value_len)
        memcpy(e->value, w->value, w->value_len);
    last++;
    *out = e;
    return ERR_OK;
}

/* Send the new entry to the followers; commit it at once if alone. */
static void replicate(void)
{
    for (uint32_t i = 0; i < MAX_CLIENTS; i++) {
        struct client *p = clients[i];
        if (p && p->peer && !p->gone && p->next + LOG_CAP <= last)
            p->gone = true;   /* what it lacks is overwritten: it joins again */
        else if (p && p->peer && !p->gone)
            pump(p);
    }
    advance_commit();   /* a single replica commits at once */
}

static errval_t leader_write(struct client *c, const struct kv_write *w)
{
    struct entry *e;
    errval_t err = append_write(w, &e);
    if (err)
        return err;
    e->origin = c;
    c->pending = P_WRITE;
    c->wait_index = e->index;
    replicate();
    return ERR_OK;
}

errval_t replica_write(const struct kv_write *w, void (*done)(void *arg, errval_t res, uint64_t index), void *arg)
{
    struct entry *e;
    errval_t err = leading ? append_write(w, &e) : ERR_NOT_LEADER;
    if (err)
        return err;
    e->done = done;
    e->done_arg = arg;
    replicate();
    return ERR_OK;
}

void replica_forget(void *arg)
{
    for (uint64_t i = applied + 1; i <= last; i++)
        if (at(i)->done && at(i)->done_arg == arg)
            at(i)->done = NULL;
}

/* A follower (re)joins: its state is ours at `applied`, then the tail. */
static errval_t on_hello(struct idl_chan *ch, const struct store_hello_args *a)
{
    struct client *c = ch->user;
    if (!leading || !c || c->peer)
        return ERR_MSG_UNKNOWN;
    if (a->term > term)
        return ERR_MSG_MALFORMED;   /* it knows a later term than this leader's: not ours */
    for (uint32_t i = 0; i < MAX_CLIENTS; i++)   /* a restarted follower's old channel */
        if (clients[i] && clients[i] != c && clients[i]->peer && clients[i]->peer_core == a->core)
            clients[i]->gone = true;
    c->peer = true;
    c->peer_core = a->core;
    c->acked = 0;
    errval_t err = store_snap_begin_send(ch, applied, term);
    for (uint32_t i = 0; !err && i < table.n; i++)
        err = store_snap_kv_send(ch, table.e[i]->key, table.e[i]->value, table.e[i]->value_len,
                                 table.e[i]->version);
    if (!err)
        err = store_snap_end_send(ch, applied, applied_term, last);
    c->next = applied + 1;   /* then the tail after the snapshot, and on */
    c->commit_sent = applied;
    if (!err)
        pump(c);
    printf("@atoll {\"event\":\"%s_peer\",\"core\":%u,\"peer_core\":%u,\"keys\":%u,\"index\":%llu}\n", cfg.events, me,
           a->core, table.n, (unsigned long long)applied);
    return err;
}

static errval_t on_ack(struct idl_chan *ch, const struct store_ack_args *a)
{
    struct client *c = ch->user;
    if (!leading || !c || !c->peer || a->index > last)
        return ERR_MSG_MALFORMED;
    if (a->index > c->acked)
        c->acked = a->index;
    advance_commit();
    return ERR_OK;
}

static errval_t on_readindex_call(struct idl_chan *ch, const struct store_readindex_call_args *a)
{
    struct client *c = ch->user;
    if (!leading || !c || !c->peer)
        return ERR_MSG_UNKNOWN;
    c->ri_tag = a->tag;
    c->ri_due = true;
    pump(c);
    return ERR_OK;
}

/* -- the follower ------------------------------------------------------------------------ */

/* What the restart service is told (heartbeat_recovered): this replica
 * holds the state and takes part, leading or following a leader whose
 * whole log it has. So a restarted replica is back only once caught up
 * (docs/restart.md), and the fault campaign hits the store only while
 * every replica is (docs/faults.md): a follower that lost its leader, or
 * is fetching a new leader's snapshot after an election, says it does
 * not, although it keeps its vote (caught_up). */
static bool told_holds;

static void tell_holds(void)
{
    bool h = leading || (caught_up && up.up && !up.snapping);
    if (h != told_holds && cfg.holds)
        cfg.holds(h, last);
    told_holds = h;
}


static errval_t on_append(struct idl_chan *ch, const struct store_append_args *a)
{
    (void)ch;
    if (leading || up.snapping)
        return ERR_MSG_UNKNOWN;
    if (a->index <= last)
        return ERR_OK;   /* held already */
    struct kv_write w = { .op = a->op, .key = a->key, .present = a->present, .expect = a->expect,
                          .expect_len = a->expect_len, .value = a->value, .value_len = a->value_len };
    if (a->index != last + 1 || a->index - applied > LOG_CAP || a->term > term ||
        (a->op != KV_NOP && kv_check_write(&w)))
        return ERR_MSG_MALFORMED;   /* a gap or a bad entry: hang up and rejoin */
    struct entry *e = at(a->index);
    *e = (struct entry){ .index = a->index, .term = a->term, .op = a->op, .present = a->present, .expect_len = (uint16_t)a->expect_len,
                         .value_len = (uint16_t)a->value_len };
    memcpy(e->key, a->key, strlen(a->key) + 1);
    if (a->expect_len)
        memcpy(e->expect, a->expect, a->expect_len);
    if (a->value_len)
        memcpy(e->value, a->value, a->value_len);
    last = a->index;
    if (last >= up.upto)
        caught_up = true;
    tell_holds();
    if (a->commit > commit)
        commit = a->commit;
    apply_committed();
    return ERR_OK;
}

static errval_t on_commit(struct idl_chan *ch, const struct store_commit_args *a)
{
    (void)ch;
    if (leading)
        return ERR_MSG_UNKNOWN;
    if (a->commit > commit)
        commit = a->commit;
    apply_committed();
    return ERR_OK;
}

static errval_t on_snap_begin(struct idl_chan *ch, const struct store_snap_begin_args *a)
{
    (void)ch;
    if (leading || a->term < term)
        return ERR_MSG_UNKNOWN;   /* a leader of a term since ended */
    term = a->term;
    kv_clear(&table);
    caught_up = false;   /* until the snapshot ends, it holds nothing */
    if (last > 0)
        first_life = false;   /* what it held is replaced, perhaps by less: may_vote */
    reached = true;
    tell_holds();
    up.snapping = true;
    return ERR_OK;
}

static errval_t on_snap_kv(struct idl_chan *ch, const struct store_snap_kv_args *a)
{
    (void)ch;
    if (leading || !up.snapping || kv_check_key(a->key) || a->value_len > STORE_VALUE_MAX)
        return ERR_MSG_MALFORMED;
    return kv_set(&table, a->key, a->value, a->value_len, a->version);
}

static errval_t on_snap_end(struct idl_chan *ch, const struct store_snap_end_args *a)
{
    (void)ch;
    if (leading || !up.snapping)
        return ERR_MSG_UNKNOWN;
    up.snapping = false;
    applied = commit = last = a->index;
    applied_term = a->term;
    /* The snapshot replaced its log with a prefix that may be shorter than
     * what it held (the leader's commit index may lag): it votes again only
     * once it holds the leader's whole log as it was (its entries follow). */
    up.upto = a->upto;
    caught_up = last >= up.upto;
    tell_holds();
    up.ack_sent = 0;
    notify_all_watched();
    printf("@atoll {\"event\":\"%s_caught_up\",\"core\":%u,\"keys\":%u,\"index\":%llu,\"term\":%llu,"
           "\"leader\":%u}\n", cfg.events, me, table.n, (unsigned long long)a->index, (unsigned long long)term, up.core);
    serve_waiting_reads();
    return ERR_OK;
}

static errval_t on_readindex_reply(struct idl_chan *ch, const struct store_readindex_reply_args *a)
{
    (void)ch;
    if (leading || a->tag > up.ri_sent)
        return ERR_MSG_MALFORMED;
    for (uint32_t i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = clients[i];
        if (c && c->pending == P_READ_INDEX && c->ri_after < a->tag) {
            c->pending = P_READ_APPLY;
            c->wait_index = a->commit;
        }
    }
    serve_waiting_reads();
    return ERR_OK;
}

/* Acks and read-index requests, without blocking: the leader may be
 * blocked sending to us, so we must go on draining. True if it sent. */
static bool flush(struct ws_source *s)
{
    (void)s;
    if (!up.up || up.snapping)
        return false;
    uint8_t buf[32];
    size_t len;
    bool did = false;
    if (up.ack_sent < last && !store_ack_encode(buf, sizeof buf, &len, last) &&
        !up.ch.idl.send(&up.ch.idl, buf, len, URPC_NONBLOCK)) {
        up.ack_sent = last;
        did = true;
    }
    if (up.ri_wanted && !store_readindex_call_encode(buf, sizeof buf, &len, up.ri_next + 1) &&
        !up.ch.idl.send(&up.ch.idl, buf, len, URPC_NONBLOCK)) {
        up.ri_sent = ++up.ri_next;
        up.ri_wanted = false;
        did = true;
    }
    return did;
}

/* -- calls from clients ----------------------------------------------------------------- */

static errval_t on_get(struct idl_chan *ch, const struct store_get_call_args *a)
{
    struct client *c = ch->user;
    if (!c)
        return ERR_MSG_UNKNOWN;   /* a call on the leader's channel */
    errval_t err = kv_check_key(a->key);
    if (err)
        return store_get_reply_send(ch, err, (const uint8_t *)"", 0, 0);
    if (!a->fresh || may_answer_reads())
        return reply_get(c, a->key);
    if (leading && commit < term_start) {   /* a new leader: once its first entry is committed */
        memcpy(c->key, a->key, strlen(a->key) + 1);
        c->pending = P_READ_APPLY;
        c->wait_index = term_start;
        return ERR_OK;
    }
    if (leading || !up.up)   /* a leader a majority has left (deposed, or about to be) */
        return store_get_reply_send(ch, ERR_NO_LEADER, (const uint8_t *)"", 0, 0);
    memcpy(c->key, a->key, strlen(a->key) + 1);
    c->pending = P_READ_INDEX;
    c->ri_after = up.ri_next;   /* a request sent from now on covers it */
    up.ri_wanted = true;
    flush(NULL);
    return ERR_OK;
}

static errval_t write_call(struct client *c, const struct kv_write *w, errval_t *now)
{
    if (!c)
        return ERR_MSG_UNKNOWN;   /* a call on the leader's channel */
    *now = leading ? leader_write(c, w) : ERR_NOT_LEADER;
    return ERR_OK;
}

static errval_t on_put(struct idl_chan *ch, const struct store_put_call_args *a)
{
    struct kv_write w = { .op = KV_PUT, .key = a->key, .value = a->value, .value_len = a->value_len };
    errval_t now, err = write_call(ch->user, &w, &now);
    return err ? err : now ? store_put_reply_send(ch, now, 0) : ERR_OK;
}

static errval_t on_del(struct idl_chan *ch, const struct store_del_call_args *a)
{
    struct kv_write w = { .op = KV_DEL, .key = a->key };
    errval_t now, err = write_call(ch->user, &w, &now);
    return err ? err : now ? store_del_reply_send(ch, now, 0) : ERR_OK;
}

static errval_t on_cas(struct idl_chan *ch, const struct store_cas_call_args *a)
{
    struct kv_write w = { .op = KV_CAS, .key = a->key, .present = a->present, .expect = a->expect,
                          .expect_len = a->expect_len, .value = a->value, .value_len = a->value_len };
    errval_t now, err = write_call(ch->user, &w, &now);
    return err ? err : now ? store_cas_reply_send(ch, now, 0) : ERR_OK;
}

static errval_t on_list(struct idl_chan *ch, const struct store_list_call_args *a)
{
    static char text[1501];
    size_t len = 0;
    uint32_t total = 0, count = 0;
    text[0] = 0;
    if (a->prefix[0] && kv_check_key(a->prefix))
        return store_list_reply_send(ch, ERR_STORE_KEY, 0, 0, "");
    uint32_t first = kv_prefix(&table, a->prefix, &total);
    for (uint32_t i = a->first; i < total; i++) {
        const struct kv_entry *e = table.e[first + i];
        if (len + e->key_len + 1 >= sizeof text)
            break;
        memcpy(text + len, e->key, e->key_len);
        len += e->key_len;
        text[len++] = '\n';
        text[len] = 0;
        count++;
    }
    ops++;
    return store_list_reply_send(ch, ERR_OK, total, count, text);
}

static errval_t on_leader(struct idl_chan *ch, const struct store_leader_call_args *a)
{
    (void)a;
    if (leading)
        return store_leader_reply_send(ch, ERR_OK, me, my_service, term);
    return store_leader_reply_send(ch, up.up ? ERR_OK : ERR_NO_LEADER, up.up ? up.core : 0, up.up ? up.service : 0,
                                   term);
}

static errval_t on_watch(struct idl_chan *ch, const struct store_watch_call_args *a)
{
    struct client *c = ch->user;
    if (!c)
        return ERR_MSG_UNKNOWN;
    errval_t err = kv_check_key(a->key);
    if (!err && c->nwatch == WATCHES_PER_CHAN)
        err = ERR_QUOTA;
    const struct kv_entry *e = err ? NULL : kv_get(&table, a->key);
    if (!err) {
        memcpy(c->watch[c->nwatch], a->key, strlen(a->key) + 1);
        c->watch_gone[c->nwatch] = !e;
        c->watch_ver[c->nwatch++] = e ? e->version : 0;
    }
    return store_watch_reply_send(ch, err, e ? e->version : 0);
}

static errval_t on_stats(struct idl_chan *ch, const struct store_stats_call_args *a)
{
    (void)a;
    uint32_t peers = 0, n = 0;
    for (uint32_t i = 0; i < MAX_CLIENTS; i++)
        if (clients[i])
            clients[i]->peer ? peers++ : n++;
    return store_stats_reply_send(ch, me, leading, table.n, applied, commit, peers, n, ops, term);
}

/* -- elections: the voter's side --------------------------------------------------------------- */

static void lost_leader(void);
static void step_down(void);
static void end_campaign(void);
static void tick(struct ws_timer *t);
static struct ws_timer ticker = { .fire = tick };
static uint64_t try_term;    /* without a leader: the term whose candidate it waits for, */
static uint64_t try_since;   /* since when */
static uint32_t hint_core;   /* who may lead now (it voted for it, or it led); ask it first */
static bool has_hint;

/* May it vote, or stand? A vote counts only from a log that holds every
 * entry this replica ever acknowledged: one caught up in this life (it
 * holds a leader's whole log, beyond any ack of a former life), or one in
 * its first life (nothing was forgotten) whose log no snapshot has replaced
 * while it held entries (a snapshot may be shorter than what it replaced;
 * a replica holding nothing acknowledged nothing). So the boot leader's
 * followers can elect a successor even if it dies before a majority caught
 * up. One that no leader reached yet holds nothing and votes, but stands
 * only once a leader's snapshot began (else at boot it could stand before
 * the first member came up): if the boot leader dies before any follower's
 * snapshot began, the group waits for its core to be started again (the
 * restart service does so), which then leads term 1 afresh: no replica
 * holds anything. */
static bool may_vote(void) { return caught_up || first_life; }
static bool may_stand(void) { return caught_up || (first_life && reached); }

/* Is a log ending with (t, index) at least as up to date as ours? (Raft, 5.4.1) */
static bool up_to_date(uint64_t t, uint64_t index)
{
    uint64_t mine = last_term();
    return t > mine || (t == mine && index >= last);
}

/* A candidate asks for our vote in term a->term. A later term than any we
 * know ends what we had: a leader steps down, a follower hangs up on its
 * leader (before it answers, so that leader sees a majority leave before
 * its successor can acknowledge a write: may_answer_reads). The vote is
 * granted only by a replica that caught up in this life, to a candidate
 * whose log is at least as up to date as its own. */
static errval_t on_vote_call(struct idl_chan *ch, const struct store_vote_call_args *a)
{
    struct client *c = ch->user;
    if (!c || c->peer)
        return ERR_MSG_UNKNOWN;
    bool granted = false;
    if (a->term > term) {
        term = a->term;
        if (leading)
            step_down();
        if (up.up)
            lost_leader();
        end_campaign();
        granted = may_vote() && up_to_date(a->last_term, a->last_index);
        if (granted) {
            hint_core = a->core;
            has_hint = true;
        }
        try_term = term + 1;   /* if it does not win, the next term's candidate */
        try_since = now_ns();
        if (!ticker.armed)
            waitset_timer_arm(ws, &ticker, now_ns() + TICK_NS);
    }
    printf("@atoll {\"event\":\"%s_vote\",\"core\":%u,\"term\":%llu,\"candidate\":%u,\"granted\":%s}\n", cfg.events, me,
           (unsigned long long)a->term, a->core, granted ? "true" : "false");
    return store_vote_reply_send(ch, term, granted);
}

static const struct store_handlers handlers = {
    .get_call = on_get, .put_call = on_put, .del_call = on_del, .cas_call = on_cas, .list_call = on_list,
    .leader_call = on_leader, .stats_call = on_stats, .watch_call = on_watch, .hello = on_hello, .ack = on_ack,
    .readindex_call = on_readindex_call, .append = on_append, .commit = on_commit, .snap_begin = on_snap_begin,
    .snap_kv = on_snap_kv, .snap_end = on_snap_end, .readindex_reply = on_readindex_reply,
    .vote_call = on_vote_call,
};

static void drop_client(struct client *c)
{
    for (uint64_t i = applied + 1; i <= last; i++)
        if (at(i)->origin == c)
            at(i)->origin = NULL;
    clients[c->slot] = NULL;
    nclients--;
    bool was_peer = c->peer;
    if (was_peer)
        printf("@atoll {\"event\":\"%s_peer_lost\",\"core\":%u,\"peer_core\":%u}\n", cfg.events, me, c->peer_core);
    service_chan_close(c->ch, ERR_OK);
    free(c->ch);
    free(c);
}

static bool serve_client(struct ws_source *s)
{
    struct client *c = s->arg;
    if (c->gone) {
        drop_client(c);
        return true;
    }
    errval_t err = store_serve_one(&c->ch->idl, &handlers, URPC_NONBLOCK);
    if (err == ERR_WOULD_BLOCK)
        return false;
    /* A call that does not decode gets no answer (the client's own stub
     * would not have sent it); a peer that sends one is hung up. */
    if (err && (c->peer || (err != ERR_MSG_UNKNOWN && err != ERR_MSG_MALFORMED)))
        c->gone = true;
    if (c->gone)
        drop_client(c);
    return true;
}

static void accepted(struct service_acceptor *a, struct service_chan *sc)
{
    (void)a;
    uint32_t same = 0;
    for (uint32_t i = 0; i < MAX_CLIENTS; i++)
        if (clients[i] && clients[i]->ch->peer_core == sc->peer_core && clients[i]->ch->peer == sc->peer)
            same++;
    struct client *c = nclients < MAX_CLIENTS && same < CHANS_PER_DOMAIN ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        service_chan_close(sc, same >= CHANS_PER_DOMAIN ? ERR_QUOTA : ERR_TOO_MANY);
        free(sc);
        return;
    }
    c->ch = sc;
    for (c->slot = 0; clients[c->slot]; c->slot++)
        ;
    clients[c->slot] = c;
    nclients++;
    c->ch->idl.user = c;
    service_chan_source(c->ch, serve_client, c);
    waitset_add(ws, &c->ch->src);
}

/* -- the follower's channel to the leader -------------------------------------------------- */

/* Its channel to the leader closed (the leader ended, hung up on it, or it
 * hung up itself to vote in a later term): fresh reads cannot be answered
 * until it follows a leader again; the ticker looks for one, or elects. */
static void lost_leader(void)
{
    if (up.ch.src.ws)
        waitset_remove(&up.ch.src);
    service_chan_close(&up.ch, ERR_OK);
    up.up = up.snapping = false;
    hint_core = up.core;   /* if it still leads, it is found again at once */
    has_hint = true;
    try_term = term + 1;
    try_since = now_ns();
    printf("@atoll {\"event\":\"%s_leader_lost\",\"core\":%u,\"leader\":%u,\"term\":%llu}\n", cfg.events, me, up.core,
           (unsigned long long)term);
    tell_holds();
    for (uint32_t i = 0; i < MAX_CLIENTS; i++) {   /* fresh reads cannot be answered */
        struct client *c = clients[i];
        if (c && (c->pending == P_READ_INDEX || c->pending == P_READ_APPLY)) {
            c->pending = P_NONE;
            if (store_get_reply_send(&c->ch->idl, ERR_NO_LEADER, (const uint8_t *)"", 0, 0))
                c->gone = true;
        }
    }
    waitset_timer_arm(ws, &ticker, now_ns() + TICK_NS);
}

static bool serve_leader(struct ws_source *s)
{
    (void)s;
    errval_t err = store_serve_one(&up.ch.idl, &handlers, URPC_NONBLOCK);
    if (err == ERR_WOULD_BLOCK)
        return false;
    if (err)
        lost_leader();
    return true;
}

/* Asking the other replicas who leads (a blocking call each, bounded by
 * ASK_TIMEOUT_NS: two replicas asking each other at once wait that long). */
struct seek {
    bool only_hint;
    uint64_t service, term;   /* a leader found (0: none) and its term */
    uint32_t core;
    uint64_t seen;            /* the highest term any replica answered with */
};

static bool ask_leader(uint32_t core, uint64_t service, void *arg)
{
    struct seek *k = arg;
    struct service_chan ch;
    if (core == me || (k->only_hint && core != hint_core) || service_connect(service, &ch))
        return true;
    ch.ch.timeout_ns = ASK_TIMEOUT_NS;
    errval_t rerr = ERR_OK;
    uint32_t lcore = 0;
    uint64_t lservice = 0, lterm = 0;
    if (!store_leader_rpc(&ch.idl, &rerr, &lcore, &lservice, &lterm)) {
        if (lterm > k->seen)
            k->seen = lterm;
        /* Only a replica that says it leads itself: another's word may be
         * old. (The name server's replicas are reached by a well-known id
         * of their core, not by the id they registered.) */
        if (!rerr && lcore == core && (lservice == service || NAMES_WELL_KNOWN(service)) && lterm >= term) {
            k->service = service;
            k->core = core;
            k->term = lterm;
        }
    }
    service_chan_close(&ch, ERR_OK);
    return !k->service;
}

/* Connect to the leader found and say hello; its snapshot follows. */
static void follow(const struct seek *k)
{
    if (service_connect(k->service, &up.ch))
        return;
    up.service = k->service;
    up.core = k->core;
    up.ch.idl.user = NULL;
    up.ack_sent = 0;
    up.ri_wanted = false;
    up.ri_sent = up.ri_next;
    if (store_hello_send(&up.ch.idl, me, term)) {
        service_chan_close(&up.ch, ERR_OK);
        return;
    }
    up.up = true;
    up.snapping = true;   /* until the snapshot ends */
    service_chan_source(&up.ch, serve_leader, NULL);
    waitset_add(ws, &up.ch.src);
}

/* -- elections: the candidate's side ----------------------------------------------------------- */

/* A candidate's channels to the others, each carrying one vote_call and
 * its reply. It never waits on them: the `ballot` source polls them. */
static struct {
    bool on;
    uint64_t term, deadline;
    uint32_t granted;   /* itself included */
    uint32_t n;
    struct service_chan ch[MAX_MEMBERS];
    bool open[MAX_MEMBERS];
} ballot;

static void end_campaign(void)
{
    for (uint32_t i = 0; i < ballot.n; i++)
        if (ballot.open[i])
            service_chan_close(&ballot.ch[i], ERR_OK);
    ballot.n = 0;
    ballot.on = false;
}

/* Won: lead `term`. Its first entry, of its own term and changing nothing,
 * commits (by a majority of acks) every entry before it that the last
 * leader may have committed; fresh reads wait for it. The followers find
 * it (their ticker) and join it as at boot. */
static void become_leader(void)
{
    end_campaign();
    leading = true;
    tell_holds();
    struct entry *e = at(last + 1);
    *e = (struct entry){ .index = last + 1, .term = term, .op = KV_NOP };
    last++;
    term_start = last;
    printf("@atoll {\"event\":\"%s_elected\",\"name\":\"%s\",\"core\":%u,\"term\":%llu,\"index\":%llu,"
           "\"commit\":%llu,\"votes\":%u}\n", cfg.events, name, me, (unsigned long long)term, (unsigned long long)last,
           (unsigned long long)commit, ballot.granted);
    waitset_timer_cancel(&ticker);
    advance_commit();   /* a single replica commits at once */
}

static bool ask_vote(uint32_t core, uint64_t service, void *arg)
{
    (void)arg;
    uint8_t buf[store_vote_call_size_max];
    size_t len;
    struct service_chan *ch = &ballot.ch[ballot.n];
    if (core == me || ballot.n == MAX_MEMBERS || service_connect(service, ch))
        return true;
    if (store_vote_call_encode(buf, sizeof buf, &len, ballot.term, me, last_term(), last) ||
        ch->idl.send(&ch->idl, buf, len, URPC_NONBLOCK)) {
        service_chan_close(ch, ERR_OK);
        return true;
    }
    ballot.open[ballot.n++] = true;
    return true;
}

/* Stand in term t: vote for itself and ask every other live replica. */
static void campaign(uint64_t t)
{
    if (last - applied >= LOG_CAP)
        return;   /* no room for its first entry (a follower holds at most LOG_CAP - 1 more: never) */
    term = t;
    ballot.on = true;
    ballot.term = t;
    ballot.granted = 1;
    ballot.n = 0;
    ballot.deadline = now_ns() + ELECT_WAIT_NS;
    printf("@atoll {\"event\":\"%s_campaign\",\"core\":%u,\"term\":%llu,\"last_term\":%llu,\"last\":%llu}\n", cfg.events,
           me, (unsigned long long)t, (unsigned long long)last_term(), (unsigned long long)last);
    cfg.peers(name, ask_vote, NULL);
    if (ballot.granted >= majority)
        become_leader();
}

/* The candidate's channels: count the votes as they come. */
static bool count_votes(struct ws_source *s)
{
    (void)s;
    uint8_t buf[store_size_max];
    bool did = false;
    for (uint32_t i = 0; ballot.on && i < ballot.n; i++) {
        size_t len = 0;
        struct store_msg m;
        if (!ballot.open[i])
            continue;
        errval_t err = ballot.ch[i].idl.recv(&ballot.ch[i].idl, buf, sizeof buf, &len, URPC_NONBLOCK);
        if (err == ERR_WOULD_BLOCK)
            continue;
        did = true;
        service_chan_close(&ballot.ch[i], ERR_OK);
        ballot.open[i] = false;
        if (err || store_decode(buf, len, &m) || m.type != store_vote_reply)
            continue;
        if (m.u.vote_reply.term > ballot.term) {   /* a later term is under way: not ours */
            term = m.u.vote_reply.term;
            end_campaign();
        } else if (m.u.vote_reply.granted && m.u.vote_reply.term == ballot.term && ++ballot.granted >= majority) {
            become_leader();
        }
    }
    return did;
}

/* Without a leader, every TICK_NS: look for one (the hint at once, every
 * replica every fifth tick); if none answers and this replica may vote,
 * stand when it is the candidate of the term it waits for, or move on to
 * the next term when that term's candidate has had ELECT_WAIT_NS. */
static void tick(struct ws_timer *t)
{
    static uint32_t ticks;
    if (leading)
        return;
    uint64_t now = now_ns();
    if (ballot.on && now > ballot.deadline) {
        end_campaign();   /* lost (too few votes in time): the next term's candidate */
        try_term = term + 1;
        try_since = now;
    }
    if (!up.up && !ballot.on) {
        struct seek k = { .only_hint = has_hint && ticks++ % 5 != 0 };
        cfg.peers(name, ask_leader, &k);
        if (k.service) {
            follow(&k);
        } else if (may_stand()) {
            if (try_term <= term) {
                try_term = term + 1;
                try_since = now;
            }
            if (members[try_term % nmembers] == me)
                campaign(try_term);
            else if (now - try_since > ELECT_WAIT_NS) {
                try_term++;
                try_since = now;
            }
        }
    }
    if (!leading)
        waitset_timer_arm(ws, t, now_ns() + TICK_NS);
}

/* A leader that learns of a later term (a candidate asked for its vote):
 * it leads no more. Followers are hung up (they look for the new leader);
 * a client whose write is uncommitted is hung up too (the write may yet
 * commit under the new leader, or not: its outcome is unknown). Its log
 * stays: it may vote with it, and a new leader's snapshot replaces it. */
static void step_down(void)
{
    leading = false;
    for (uint64_t i = applied + 1; i <= last; i++) {
        struct entry *e = at(i);
        e->origin = NULL;
        if (e->done) {   /* its outcome is unknown, as a client's is */
            void (*done)(void *, errval_t, uint64_t) = e->done;
            e->done = NULL;
            done(e->done_arg, ERR_NO_LEADER, 0);
        }
    }
    for (uint32_t i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = clients[i];
        if (c && (c->peer || c->pending == P_WRITE))
            c->gone = true;
        else if (c && c->pending == P_READ_APPLY) {
            c->pending = P_NONE;
            if (store_get_reply_send(&c->ch->idl, ERR_NO_LEADER, (const uint8_t *)"", 0, 0))
                c->gone = true;
        }
    }
    has_hint = false;
    printf("@atoll {\"event\":\"%s_stepped_down\",\"core\":%u,\"term\":%llu}\n", cfg.events, me, (unsigned long long)term);
    tell_holds();
    waitset_timer_arm(ws, &ticker, now_ns() + TICK_NS);
}

/* "0,4" or "0-7,9": the members, in core order. */
static errval_t parse_members(const char *s)
{
    nmembers = 0;
    while (*s) {
        uint32_t a = 0, b;
        if (*s < '0' || *s > '9')
            return ERR_INVALID_ARG;
        while (*s >= '0' && *s <= '9')
            a = a * 10 + (uint32_t)(*s++ - '0');
        b = a;
        if (*s == '-') {
            s++;
            b = 0;
            while (*s >= '0' && *s <= '9')
                b = b * 10 + (uint32_t)(*s++ - '0');
        }
        if (b < a || (nmembers && a <= members[nmembers - 1]))
            return ERR_INVALID_ARG;
        for (uint32_t c = a; c <= b; c++) {
            if (nmembers == MAX_MEMBERS)
                return ERR_TOO_MANY;
            members[nmembers++] = c;
        }
        if (*s == ',')
            s++;
        else if (*s)
            return ERR_INVALID_ARG;
    }
    return nmembers ? ERR_OK : ERR_INVALID_ARG;
}

errval_t replica_init(const struct replica_config *config)
{
    cfg = *config;
    if (!cfg.peers)
        cfg.peers = group_instances;
    if (!cfg.events)
        cfg.events = "store";
    name = cfg.name;
    me = startup()->core_id;
    errval_t err = parse_members(cfg.cores);
    if (err)
        return printf("store: bad member list '%s': %s\n", cfg.cores, err_name(err)), err;
    bool member = false;
    for (uint32_t i = 0; i < nmembers; i++)
        member |= members[i] == me;
    if (!member)
        return printf("store: core %u is not one of %s\n", me, cfg.cores), ERR_INVALID_ARG;
    majority = nmembers / 2 + 1;
    int life = cfg.life;
    first_life = life == 0;   /* unknown (-1): as if started before, the safe side */
    kv_init(&table);
    /* Boot or a new life? Before it is registered (so no replica can be
     * waiting for it), ask the others: if any knows a term, the group has
     * been running and this replica has lost what it held; it follows
     * whoever leads (and, until it caught up, neither votes nor stands).
     * Else this is the boot, and the first member leads term 1. */
    struct seek k = { 0 };
    cfg.peers(name, ask_leader, &k);
    term = k.seen;
    leading = members[0] == me && k.seen == 0;
    if (leading) {
        term = 1;
        caught_up = true;   /* an empty log at boot is the whole log */
    }
    hint_core = k.service ? k.core : members[0];
    has_hint = true;
    return ERR_OK;
}

void replica_attach(struct waitset *loop, uint64_t service)
{
    static struct ws_source flusher = { .poll = flush, .name = "store flush" };
    static struct ws_source pumper = { .poll = outbox, .name = "store outbox" };
    static struct ws_source voter = { .poll = count_votes, .name = "store ballot" };
    ws = loop;
    my_service = service;
    printf("@atoll {\"event\":\"%s_replica\",\"name\":\"%s\",\"core\":%u,\"leader\":%s,\"members\":%u,"
           "\"majority\":%u,\"term\":%llu,\"first_life\":%s}\n", cfg.events, name, me, leading ? "true" : "false", nmembers,
           majority, (unsigned long long)term, first_life ? "true" : "false");
    waitset_add(ws, &pumper);
    waitset_add(ws, &flusher);
    waitset_add(ws, &voter);
    tell_holds();
    if (!leading)
        waitset_timer_arm(ws, &ticker, now_ns());
}

void replica_accepted(struct service_chan *sc) { accepted(NULL, sc); }

const struct kv *replica_table(void) { return &table; }
uint64_t replica_applied(void) { return applied; }

bool replica_leader(uint32_t *core)
{
    if (leading)
        *core = me;
    else if (up.up && !up.snapping)
        *core = up.core;
    return leading || (up.up && !up.snapping);
}

bool replica_has_peer_on(uint32_t core)
{
    for (uint32_t i = 0; leading && i < MAX_CLIENTS; i++)
        if (clients[i] && clients[i]->peer && !clients[i]->gone && clients[i]->peer_core == core)
            return true;
    return false;
}

bool replica_is_peer(uint32_t core, uint64_t domain)
{
    for (uint32_t i = 0; leading && i < MAX_CLIENTS; i++)
        if (clients[i] && clients[i]->peer && !clients[i]->gone && clients[i]->peer_core == core &&
            clients[i]->ch->peer == domain)
            return true;
    return false;
}

/* The store program's replica: a group of the manifest's, found and
 * joined through the name server, beating to the restart service. */
static void holds_to_restart_service(bool holds, uint64_t index) { heartbeat_recovered(holds, index); }

static void store_accepted(struct service_acceptor *a, struct service_chan *sc)
{
    (void)a;
    accepted(NULL, sc);
}

int replica_main(const char *group, uint64_t key, const char *cores, int life)
{
    static struct service_acceptor acceptor;
    static struct waitset loop;
    struct replica_config config = { .name = group, .cores = cores, .life = life,
                                     .holds = key ? holds_to_restart_service : NULL };
    errval_t err = replica_init(&config);
    if (err)
        return 2;
    uint64_t service = 0;
    err = service_register_self(&service);
    waitset_init(&loop);
    /* Beats to the restart service (docs/restart.md), started by it: a
     * group key. From the start: a join that waits for its group (after a
     * restart of the name server) is not a hang. It says when it holds
     * its state (tell_holds()). */
    errval_t hb = key ? heartbeat_start(&loop) : ERR_OK;
    if (hb)
        printf("store: no heartbeats: %s\n", err_name(hb));
    /* Kept: joined again after a restart of the name server. */
    if (!err)
        err = names_keep_join(name, key, service);
    if (err)
        return printf("store: cannot serve %s: %s\n", name, err_name(err)), 1;
    replica_attach(&loop, service);
    service_acceptor_init(&acceptor, store_accepted, 0);
    waitset_add(&loop, &acceptor.src);
    names_watch(&loop);
    waitset_run(&loop);
    return 0;
}

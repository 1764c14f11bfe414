/*
 * Capabilities between cores. A capability never crosses as itself: the
 * sending monitor describes it (type, rights, physical range) and the
 * receiving monitor has its own CPU driver make a new root capability from
 * the description with its Kernel capability (SYS_CAP_CREATE).
 *
 * The rules (capops.c builds ownership, revoke and retype on them):
 * - Only memory and Notify capabilities cross (cap_crosses): RAM, Frames,
 *   DevFrames, the page-table types, Notify. CNodes, dispatchers,
 *   endpoints and the Kernel capability live in the sending core's kernel
 *   memory and mean nothing elsewhere: ERR_CAP_NOT_TRANSFERABLE.
 * - The receiving CPU driver accepts memory only inside user RAM (device
 *   memory only outside every RAM range), and re-creates it FOREIGN: it
 *   destroys nothing when deleted, and retyping it needs the owner core's
 *   agreement (capops.c). The monitors, which alone hold Kernel
 *   capabilities, are trusted to describe only capabilities they hold.
 * - Every export and import is recorded (core, type, base, size) in a ring
 *   for `describe`; forged descriptions are refused and counted.
 */
#include "monitor.h"

#define LOG_SIZE 64

struct transfer {
    uint32_t peer;
    uint32_t type;
    uint64_t base, bytes;
    bool exported;
};
static struct transfer log_ring[LOG_SIZE];
static uint64_t exported, imported, refused;

static void record(uint32_t peer, const struct cap_wire *w, bool out)
{
    struct transfer *t = &log_ring[(exported + imported) % LOG_SIZE];
    *t = (struct transfer){ peer, w->type, w->base, w->bytes, out };
    if (out)
        exported++;
    else
        imported++;
}

static uint32_t peer_of(struct idl_chan *ch)
{
    return ch && ch->state ? ((struct link *)ch->state)->peer : ~0u;
}

errval_t cap_export(struct idl_chan *ch, uint64_t slot, struct cap_wire *out)
{
    struct cap_identity id;
    errval_t err = sys_cap_identify(slot, &id);
    if (err)
        return err;
    if (!cap_crosses(id.type)) {
        refused++;
        return ERR_CAP_NOT_TRANSFERABLE;
    }
    *out = (struct cap_wire){ .type = id.type, .rights = id.rights, .base = id.base, .bytes = id.bytes };
    record(peer_of(ch), out, true);
    return ERR_OK;
}

errval_t cap_import(struct idl_chan *ch, const struct cap_wire *in, uint64_t *slot)
{
    struct cap_identity id = { .type = in->type, .rights = in->rights, .base = in->base, .bytes = in->bytes,
                               .badge = in->badge };
    capslot_t s;
    errval_t err = slot_alloc(&s);
    if (err)
        return err;
    err = sys_cap_create(SLOT_KERNEL, &id, s);
    if (err) {
        slot_free(s);
        refused++;
        return err;
    }
    record(peer_of(ch), in, false);
    *slot = s;
    return ERR_OK;
}

size_t captransfer_describe(char *out, size_t size)
{
    return (size_t)snprintf(out, size, "capabilities: %llu sent to other cores, %llu received, %llu refused\n",
                            (unsigned long long)exported, (unsigned long long)imported,
                            (unsigned long long)refused);
}

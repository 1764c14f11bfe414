/* A group's instances from the name server (store.h: group_instances). */
#include <atoll/lib.h>
#include <atoll/recover.h>
#include <if/nameservice_if.h>
#include "store.h"

errval_t group_instances(const char *name,
                         bool (*each)(uint32_t core, uint64_t service, void *arg), void *arg)
{
    static uint8_t buf[nameservice_size_max];
    static char copy[1201];   /* `each` may call the name server again */
    uint32_t first = 0, total = 0, count = 0;
    do {
        const char *text;
        errval_t rerr = ERR_OK;
        struct idl_chan *ns = names_idl();
        errval_t err = !ns ? ERR_CHAN_CLOSED : nameservice_instances_rpc(ns, name, first, &rerr, &total, &count, &text, buf, sizeof buf);
        if (err || rerr)
            return err ? err : rerr;
        snprintf(copy, sizeof copy, "%s", text);
        for (const char *p = copy; *p;) {   /* "core service" lines */
            uint64_t core = 0, service = 0;
            while (*p >= '0' && *p <= '9')
                core = core * 10 + (uint64_t)(*p++ - '0');
            if (*p == ' ')
                p++;
            while (*p >= '0' && *p <= '9')
                service = service * 10 + (uint64_t)(*p++ - '0');
            while (*p && *p != '\n')
                p++;
            if (*p)
                p++;
            if (!each((uint32_t)core, service, arg))
                return ERR_OK;
        }
        first += count;
    } while (count && first < total);
    return ERR_OK;
}

/* Counter arrays (counts.h). */
#include "counts.h"

#include <stdlib.h>
#include <string.h>

int cm_counts_init(struct cm_counts *c, unsigned n)
{
    memset(c, 0, sizeof *c);
    if (n == 0 || n > CM_MAX_CPUS)
        return -1;
    c->n = n;
    c->xfer = calloc((size_t)n * n, sizeof(uint64_t));
    c->inval = calloc((size_t)n * n, sizeof(uint64_t));
    c->insns = calloc(n, sizeof(uint64_t));
    c->ipis = calloc(n, sizeof(uint64_t));
    c->reads = calloc(n, sizeof(uint64_t));
    c->writes = calloc(n, sizeof(uint64_t));
    if (!c->xfer || !c->inval || !c->insns || !c->ipis || !c->reads || !c->writes) {
        cm_counts_free(c);
        return -1;
    }
    return 0;
}

void cm_counts_free(struct cm_counts *c)
{
    free(c->xfer);
    free(c->inval);
    free(c->insns);
    free(c->ipis);
    free(c->reads);
    free(c->writes);
    memset(c, 0, sizeof *c);
}

void cm_counts_copy(struct cm_counts *dst, const struct cm_counts *src)
{
    size_t n = src->n, pairs = n * n * sizeof(uint64_t), per = n * sizeof(uint64_t);
    memcpy(dst->xfer, src->xfer, pairs);
    memcpy(dst->inval, src->inval, pairs);
    memcpy(dst->insns, src->insns, per);
    memcpy(dst->ipis, src->ipis, per);
    memcpy(dst->reads, src->reads, per);
    memcpy(dst->writes, src->writes, per);
}

/* The parts of a parsed manifest the task engine reads, in one place. */
#ifndef COLLECTOR_MANIFEST_VIEW_H
#define COLLECTOR_MANIFEST_VIEW_H

#include <stdio.h>

#include "fresco/manifest.h"

static inline const char *mv_name(const fr_manifest *m)
{
    return m->name;
}
static inline int64_t mv_deadline_ms(const fr_manifest *m)
{
    return m->deadline_ms > 0 ? m->deadline_ms : FR_MANIFEST_DEFAULT_DEADLINE_MS;
}
static inline int64_t mv_max_failures(const fr_manifest *m)
{
    return m->max_failures;
}
static inline int64_t mv_interval_ms(const fr_manifest *m)
{
    return m->schedule.interval_ms;
}
static inline bool mv_is_cron(const fr_manifest *m)
{
    return m->schedule.type == FR_SCHED_CRON;
}
static inline int64_t mv_cron_next(const fr_manifest *m, int64_t after_ns)
{
    int64_t n = fr_cron_next(&m->schedule.cron, after_ns);
    return n < 0 ? INT64_MAX : n;
}
static inline bool mv_has_start(const fr_manifest *m)
{
    return m->schedule.has_start;
}
static inline int64_t mv_start_ns(const fr_manifest *m)
{
    return m->schedule.start_ns;
}
static inline bool mv_has_stop(const fr_manifest *m)
{
    return m->schedule.has_stop;
}
static inline int64_t mv_stop_ns(const fr_manifest *m)
{
    return m->schedule.stop_ns;
}
static inline uint64_t mv_count(const fr_manifest *m)
{
    return m->schedule.count > 0 ? (uint64_t)m->schedule.count : 0;
}
static inline int mv_validate_now(const fr_manifest *m, int64_t now_ns, fr_error *err)
{
    return fr_manifest_validate(m, now_ns, err);
}
static inline bool mv_has_downstream(const fr_manifest *m)
{
    return m->collect.nprocess > 0 || m->collect.npublish > 0;
}

static inline void mv_where(const fr_manifest *m, fr_mf_pos pos, const char *path, char *buf,
                            size_t cap)
{
    if (m->source != NULL && pos.line > 0) {
        snprintf(buf, cap, "%s:%u:%u", m->source, pos.line, pos.col);
    } else {
        snprintf(buf, cap, "%s", path);
    }
}

static inline size_t mv_metric_count(const fr_manifest *m)
{
    return m->collect.metrics.n;
}
static inline const char *mv_metric(const fr_manifest *m, size_t i)
{
    return m->collect.metrics.v[i].key;
}
static inline void mv_metric_where(const fr_manifest *m, size_t i, char *buf, size_t cap)
{
    mv_where(m, m->collect.metrics.v[i].pos, "workflow.collect.metrics", buf, cap);
}

static inline size_t mv_config_count(const fr_manifest *m)
{
    return m->collect.config.n;
}
static inline const char *mv_config_prefix(const fr_manifest *m, size_t s)
{
    return m->collect.config.v[s].key;
}
static inline size_t mv_config_nkeys(const fr_manifest *m, size_t s)
{
    const fr_mf_value *v = &m->collect.config.v[s].value;
    return v->type == FR_MF_MAP ? v->map.n : 0;
}
static inline const char *mv_config_key(const fr_manifest *m, size_t s, size_t k)
{
    return m->collect.config.v[s].value.map.v[k].key;
}
static inline const char *mv_config_value(const fr_manifest *m, size_t s, size_t k)
{
    const char *t = m->collect.config.v[s].value.map.v[k].value.text;
    return t != NULL ? t : "";
}
static inline void mv_config_where(const fr_manifest *m, size_t s, size_t k, char *buf, size_t cap)
{
    mv_where(m, m->collect.config.v[s].value.map.v[k].pos, "workflow.collect.config", buf, cap);
}

static inline size_t mv_tags_count(const fr_manifest *m)
{
    return m->collect.tags.n;
}
static inline const char *mv_tags_prefix(const fr_manifest *m, size_t s)
{
    return m->collect.tags.v[s].key;
}
static inline size_t mv_tags_nkeys(const fr_manifest *m, size_t s)
{
    const fr_mf_value *v = &m->collect.tags.v[s].value;
    return v->type == FR_MF_MAP ? v->map.n : 0;
}
static inline const char *mv_tags_key(const fr_manifest *m, size_t s, size_t k)
{
    return m->collect.tags.v[s].value.map.v[k].key;
}
static inline const char *mv_tags_value(const fr_manifest *m, size_t s, size_t k)
{
    const char *t = m->collect.tags.v[s].value.map.v[k].value.text;
    return t != NULL ? t : "";
}

#endif

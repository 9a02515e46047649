/* chorus plugin ABI, version 1: what a shared library exports so that chorus can load its
 * aggregation rules and fairness metrics. The Rust declarations in plugins/api/src/abi.rs are
 * the same types; plugins/api/README.md documents the calling rules and the versioning rule.
 *
 * A library exports two functions:
 *   uint32_t chorus_plugin_abi_version(void);           read first; must equal CHORUS_ABI_VERSION
 *   const ChorusPlugin *chorus_plugin_descriptor(void); static, never freed
 *
 * Strings are NUL-terminated UTF-8. Whoever allocates frees: the host owns every buffer it
 * passes in; the plugin owns every string it returns (state_json, error) and frees it when
 * the host calls free_string. Plugins are trusted native code running inside chorus. */
#ifndef CHORUS_PLUGIN_H
#define CHORUS_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CHORUS_ABI_VERSION 1u

/* Status codes. */
#define CHORUS_OK 0        /* success */
#define CHORUS_ERROR 1     /* the rule or metric refused; *error says why */
#define CHORUS_BAD_STATE 2 /* the state JSON is not one this rule can read; *error says why */
#define CHORUS_PANIC 3     /* the plugin failed internally; *error holds the message */

/* The inputs of one aggregate call; host-owned, valid for the call only. */
typedef struct ChorusAggregateCall {
  const double *rewards; /* groups x rollouts, row-major (row g = group g), all finite */
  size_t len;            /* groups * rollouts */
  size_t groups;
  size_t rollouts;
  uint32_t round;         /* training round, from 1 */
  const char *state_json; /* what this rule returned last round; "null" before the first */
} ChorusAggregateCall;

/* Where aggregate writes. The buffers are host-owned; the strings are plugin-owned. */
typedef struct ChorusAggregateOut {
  double *rewards;         /* room for `rollouts` aggregated rewards */
  size_t rewards_capacity;
  size_t rewards_written;  /* set to how many rewards were produced (must be rollouts) */
  double *weights;         /* room for `groups` per-group weights summing to 1 */
  size_t weights_capacity;
  size_t weights_written;  /* set to how many weights were produced (must be groups) */
  char *state_json;        /* the new state as JSON, or NULL for null */
  char *error;             /* the message of a non-OK status */
} ChorusAggregateOut;

typedef struct ChorusRule {
  const char *name;          /* what pipelines write in `rule:`; letters, digits, _ */
  const char *version;
  const char *description;   /* one line */
  const char *params_schema; /* JSON Schema of the params without `rule` */
  /* Builds an instance from params (a JSON object) and the groups' public population
   * shares (`groups` values summing to 1). */
  int32_t (*create)(const char *params_json, const double *populations, size_t groups,
                    void **instance, char **error);
  /* One round. Never called on one instance from two threads at once. */
  int32_t (*aggregate)(const void *instance, const ChorusAggregateCall *call,
                       ChorusAggregateOut *out);
  void (*destroy)(void *instance);
} ChorusRule;

typedef struct ChorusMetric {
  const char *name;
  const char *version;
  const char *description;
  const char *params_schema;
  int32_t higher_is_fairer; /* 1: larger is fairer (Jain); 0: larger is less fair (Gini) */
  int32_t (*create)(const char *params_json, void **instance, char **error);
  /* The metric of `len` per-group scores, each finite; writes *value. */
  int32_t (*compute)(const void *instance, const double *scores, size_t len, double *value,
                     char **error);
  void (*destroy)(void *instance);
} ChorusMetric;

typedef struct ChorusPlugin {
  uint32_t abi_version; /* equal to chorus_plugin_abi_version() */
  const char *name;     /* the library's name and version, recorded in run manifests */
  const char *version;
  const ChorusRule *rules;
  size_t rule_count;
  const ChorusMetric *metrics;
  size_t metric_count;
  void (*free_string)(char *s); /* frees a string this library returned */
} ChorusPlugin;

uint32_t chorus_plugin_abi_version(void);
const ChorusPlugin *chorus_plugin_descriptor(void);

#ifdef __cplusplus
}
#endif

#endif /* CHORUS_PLUGIN_H */

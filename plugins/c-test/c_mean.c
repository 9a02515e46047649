/* A chorus plugin written in C against plugins/api/include/chorus_plugin.h, compiled by the
 * tests of chorus-core (core/src/plugin) to load a real foreign library. One rule, c_mean:
 * each rollout's reward is the equal-weight mean of the groups' rewards, weights 1/G.
 *
 * Variants, chosen with -D when the tests compile it:
 *   CHORUS_TEST_ABI=<n>           what chorus_plugin_abi_version returns (default: the header's)
 *   CHORUS_TEST_RULE_NAME="\"x\"" the rule's name (a clash with a built-in, an invalid name)
 *   CHORUS_TEST_FAULT=FAULT_...   break one promise of the ABI (list below)
 *   CHORUS_TEST_STATEFUL          the rule keeps {"rounds": n} as its state
 *   CHORUS_TEST_METRIC            also offer the metric c_range (max - min of the scores)
 * chorus_test_live() counts the instances alive, so a test can see that the host destroys them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus_plugin.h"

#define FAULT_NONE 0
#define FAULT_NAN 1        /* a NaN reward (rule) or value (metric) */
#define FAULT_SHORT 2      /* one reward fewer than rollouts */
#define FAULT_WEIGHTS 3    /* weights of 1 each, summing to G */
#define FAULT_ERROR 4      /* CHORUS_ERROR from aggregate and compute */
#define FAULT_PANIC 5      /* CHORUS_PANIC from aggregate and compute */
#define FAULT_STATE 6      /* a returned state that is not JSON */
#define FAULT_NULL_FN 7    /* a NULL aggregate function in the descriptor */
#define FAULT_SCHEMA 8     /* a params schema that is JSON but not a JSON Schema */
#define FAULT_DUPLICATE 9  /* the rule offered twice under one name */
#define FAULT_NO_DESCRIPTOR 10 /* chorus_plugin_descriptor returns NULL */

#ifndef CHORUS_TEST_ABI
#define CHORUS_TEST_ABI CHORUS_ABI_VERSION
#endif
#ifndef CHORUS_TEST_RULE_NAME
#define CHORUS_TEST_RULE_NAME "c_mean"
#endif
#ifndef CHORUS_TEST_FAULT
#define CHORUS_TEST_FAULT FAULT_NONE
#endif

static int live = 0;

int chorus_test_live(void) { return live; }

static char *copy(const char *text) {
  size_t n = strlen(text) + 1;
  char *s = malloc(n);
  if (s) memcpy(s, text, n);
  return s;
}

static void free_string(char *s) { free(s); }

/* Both create functions: params must be exactly {} (the host serialises an empty object so). */
static int32_t make(const char *params_json, void **instance, char **error) {
  if (strcmp(params_json, "{}") != 0) {
    const char *fmt = "c_mean takes no params, got %s";
    size_t n = strlen(fmt) + strlen(params_json);
    *error = malloc(n);
    if (*error) snprintf(*error, n, fmt, params_json);
    return CHORUS_ERROR;
  }
  *instance = malloc(1);
  live++;
  return CHORUS_OK;
}

static int32_t mean_create(const char *params_json, const double *populations, size_t groups,
                           void **instance, char **error) {
  (void)populations;
  (void)groups;
  return make(params_json, instance, error);
}

static void destroy(void *instance) {
  free(instance);
  live--;
}

static int32_t mean_aggregate(const void *instance, const ChorusAggregateCall *call,
                              ChorusAggregateOut *out) {
  size_t groups = call->groups, rollouts = call->rollouts;
  (void)instance;
  if (out->rewards_capacity < rollouts || out->weights_capacity < groups) {
    out->error = copy("the host's output buffers are too small");
    return CHORUS_ERROR;
  }
#ifdef CHORUS_TEST_STATEFUL
  unsigned rounds = 0;
  if (strcmp(call->state_json, "null") != 0 &&
      sscanf(call->state_json, "{\"rounds\":%u}", &rounds) != 1) {
    out->error = copy("expected null or {\"rounds\": n}");
    return CHORUS_BAD_STATE;
  }
  char state[64];
  snprintf(state, sizeof state, "{\"rounds\":%u}", rounds + 1);
  out->state_json = copy(state);
#endif
  for (size_t r = 0; r < rollouts; r++) {
    double sum = 0.0;
    for (size_t g = 0; g < groups; g++) sum += call->rewards[g * rollouts + r];
    out->rewards[r] = sum / (double)groups;
  }
  for (size_t g = 0; g < groups; g++) out->weights[g] = 1.0 / (double)groups;
  out->rewards_written = rollouts;
  out->weights_written = groups;
#if CHORUS_TEST_FAULT == FAULT_NAN
  out->rewards[rollouts - 1] = 0.0 / 0.0;
#elif CHORUS_TEST_FAULT == FAULT_SHORT
  out->rewards_written = rollouts - 1;
#elif CHORUS_TEST_FAULT == FAULT_WEIGHTS
  for (size_t g = 0; g < groups; g++) out->weights[g] = 1.0;
#elif CHORUS_TEST_FAULT == FAULT_ERROR
  out->error = copy("refused on purpose");
  return CHORUS_ERROR;
#elif CHORUS_TEST_FAULT == FAULT_PANIC
  out->error = copy("boom");
  return CHORUS_PANIC;
#elif CHORUS_TEST_FAULT == FAULT_STATE
  out->state_json = copy("{not json");
#endif
  return CHORUS_OK;
}

#ifdef CHORUS_TEST_METRIC
static int32_t range_create(const char *params_json, void **instance, char **error) {
  return make(params_json, instance, error);
}

static int32_t range_compute(const void *instance, const double *scores, size_t len,
                             double *value, char **error) {
  double lo = scores[0], hi = scores[0];
  (void)instance;
  (void)error;
  for (size_t i = 1; i < len; i++) {
    if (scores[i] < lo) lo = scores[i];
    if (scores[i] > hi) hi = scores[i];
  }
  *value = hi - lo;
#if CHORUS_TEST_FAULT == FAULT_NAN
  *value = 0.0 / 0.0;
#elif CHORUS_TEST_FAULT == FAULT_ERROR
  *error = copy("refused on purpose");
  return CHORUS_ERROR;
#elif CHORUS_TEST_FAULT == FAULT_PANIC
  *error = copy("boom");
  return CHORUS_PANIC;
#endif
  return CHORUS_OK;
}

static const ChorusMetric metrics[] = {{
    .name = "c_range",
    .version = "0.1.0",
    .description = "max - min of the per-group scores (C test plugin)",
    .params_schema = "{\"type\":\"object\",\"additionalProperties\":false}",
    .higher_is_fairer = 0,
    .create = range_create,
    .compute = range_compute,
    .destroy = destroy,
}};
#define METRICS metrics
#define METRIC_COUNT 1
#else
#define METRICS NULL
#define METRIC_COUNT 0
#endif

#if CHORUS_TEST_FAULT == FAULT_SCHEMA
#define SCHEMA "{\"type\":5}"
#else
#define SCHEMA "{\"type\":\"object\",\"additionalProperties\":false}"
#endif

#if CHORUS_TEST_FAULT == FAULT_NULL_FN
#define AGGREGATE NULL
#else
#define AGGREGATE mean_aggregate
#endif

#define RULE                                                                  \
  {                                                                           \
    .name = CHORUS_TEST_RULE_NAME, .version = "0.1.0",                        \
    .description = "equal-weight mean of the groups' rewards (C test plugin)", \
    .params_schema = SCHEMA, .create = mean_create, .aggregate = AGGREGATE,   \
    .destroy = destroy,                                                       \
  }

#if CHORUS_TEST_FAULT == FAULT_DUPLICATE
static const ChorusRule rules[] = {RULE, RULE};
#else
static const ChorusRule rules[] = {RULE};
#endif

static const ChorusPlugin plugin = {
    .abi_version = CHORUS_ABI_VERSION,
    .name = "c-test",
    .version = "0.1.0",
    .rules = rules,
    .rule_count = sizeof rules / sizeof rules[0],
    .metrics = METRICS,
    .metric_count = METRIC_COUNT,
    .free_string = free_string,
};

uint32_t chorus_plugin_abi_version(void) { return CHORUS_TEST_ABI; }

const ChorusPlugin *chorus_plugin_descriptor(void) {
#if CHORUS_TEST_FAULT == FAULT_NO_DESCRIPTOR
  return NULL;
#else
  return &plugin;
#endif
}

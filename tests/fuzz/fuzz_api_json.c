/* SPDX-License-Identifier: MIT */
/* fuzz_api_json.c: the JSON request bodies of /api on hostile bytes: Jansson's parser as
 * read_json uses it (an object, no duplicate keys), then http__share_request (POST /api/shares)
 * with the default and a tiny expiry limit, and the member lookups of the login, user, token
 * and share-opening bodies. Checked against http_internal.h: an accepted share request names a
 * valid study UID, at most ACCESS_MAX_SERIES valid series, an expiry in the future within the
 * limit, max_opens 0..1000000 and a PIN that is a string or absent; a refused one says why. */
#include "http_internal.h"

#include <jansson.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024) {
        return 0;
    }
    json_error_t je;
    json_t *b = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    if (!b) {
        return 0;
    }
    if (json_is_object(b)) {
        static const char *const keys[] = {"username", "password", "role", "name",
                                           "scope",    "token",    "pin",  "study"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            const char *v = http__jstr(b, keys[i]);
            CHECK(!v || strlen(v) <= size);
        }
        static const double limits[] = {30 * 24.0, 0.001};
        for (int k = 0; k < 2; k++) {
            access_share sh;
            memset(&sh, 0, sizeof sh);
            const char *pin = NULL;
            char msg[200];
            time_t before = time(NULL);
            if (http__share_request(b, limits[k], &sh, &pin, msg, sizeof msg) == 0) {
                CHECK(dcm_uid_valid(sh.study, strlen(sh.study)));
                CHECK(sh.n_series >= 0 && sh.n_series <= ACCESS_MAX_SERIES);
                for (int i = 0; i < sh.n_series; i++) {
                    CHECK(dcm_uid_valid(sh.series[i], strlen(sh.series[i])));
                }
                CHECK(sh.expires > before);
                CHECK((double)(sh.expires - before) <= limits[k] * 3600.0 + 2);
                CHECK(sh.max_opens >= 0 && sh.max_opens <= 1000000);
                CHECK(sh.download == 0 || sh.download == 1);
                CHECK(!pin || json_is_string(json_object_get(b, "pin")));
            } else {
                CHECK(msg[0] != '\0');
            }
        }
    }
    json_decref(b);
    return 0;
}

/* The CHECK macro of the C test programs: counts passes and failures and
 * prints each failure with the library's last error message. */
#ifndef ITK_CHECK_H
#define ITK_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            passed++;                                                                \
        } else {                                                                     \
            failed++;                                                                \
            char msg_[512];                                                          \
            itk_last_error_message(msg_, sizeof msg_);                               \
            fprintf(stderr, "FAIL %s:%d: %s (last error: %s)\n", __FILE__, __LINE__, \
                    #cond, msg_);                                                    \
        }                                                                            \
    } while (0)

#endif

/* CONCATENATION: interleaves the inputs' rows; inputs share the output's quantization. The output may
 * overlap an input (the arena plan puts it below by at least the distance concatenation.py works out),
 * so a row may be moved onto bytes of itself: memmove. */
#include <stdint.h>
#include <string.h>

#ifndef TK_CONCATENATION_DECLARATIONS /* gathered into tinykd_params.h */
#define TK_CONCATENATION_DECLARATIONS

/* CONCATENATION of inputs with the output's quantization: `outer` blocks of each input's row. */
typedef struct {
    int count, outer;
    const int *row_bytes; /* one per input */
} tk_concatenation_params;

void tk_concatenation(const tk_concatenation_params *p, const int8_t *const *inputs, int8_t *output);

#endif /* TK_CONCATENATION_DECLARATIONS */

#include "tinykd_runtime.h"

void tk_concatenation(const tk_concatenation_params *p, const int8_t *const *inputs, int8_t *output)
{
    int o, i;
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->count; ++i) {
            memmove(output, inputs[i] + o * p->row_bytes[i], (size_t)p->row_bytes[i]);
            output += p->row_bytes[i];
        }
    }
}

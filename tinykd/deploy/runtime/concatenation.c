/* CONCATENATION: interleaves the inputs' rows; inputs share the output's quantization. */
#include <string.h>

#include "tinykd_runtime.h"

void tk_concatenation(const tk_concatenation_params *p, const int8_t *const *inputs, int8_t *output)
{
    int o, i;
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->count; ++i) {
            memcpy(output, inputs[i] + o * p->row_bytes[i], (size_t)p->row_bytes[i]);
            output += p->row_bytes[i];
        }
    }
}
